"""The graph ``langgraph dev`` serves in ``benchmarks.api_paths``: a chat agent on the mock model, as close to
chatplane's built-in ``chat`` agent as LangChain's own pieces make it (``create_agent``, no tools).

The model is LangChain's ``ChatOpenAI`` pointed at the mock by ``OPENAI_BASE_URL`` (set by the benchmark)."""

from langchain.agents import create_agent
from langchain_openai import ChatOpenAI

graph = create_agent(ChatOpenAI(model="mock", streaming=False), tools=[], system_prompt="You are a helpful assistant.")
