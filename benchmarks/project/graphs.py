"""A team's own messages graph, as a benchmark serves it beside the built-in chat agent: one node that calls an
OpenAI-compatible model (the benchmark's mock server, through ``OPENAI_BASE_URL``) with the thread's messages."""

from __future__ import annotations

import os
from typing import Any

from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph

_model = ChatOpenAI(model=os.environ.get("BENCH_USER_MODEL", "mock"), streaming=True)


async def answer(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await _model.ainvoke(state["messages"])]}


graph = StateGraph(MessagesState).add_node("answer", answer).add_edge(START, "answer").compile()
