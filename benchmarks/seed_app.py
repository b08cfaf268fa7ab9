"""The reference app: the seed's design (``/work/shared/seed/production-agent.md``), copied faithfully, flaws included.

It is what chatplane is measured against, so it keeps the seed's choices on purpose: the graph and the model are
built at import time, ``ChatOpenAI.invoke`` (blocking) runs inside ``async def`` endpoints, so one slow model call
stalls every user; one checkpointer connection shared by everyone; errors come back as a bare 500 with the
exception's text. Do not fix it — its numbers are the baseline.

The only departures: storage is chosen by ``SEED_STORAGE`` (``memory`` (default), ``sqlite:///path.db``,
``postgresql://...``) instead of a ``use_postgres`` flag with a placeholder URL, and the savers are opened the way
the current LangGraph API needs (the seed passed ``PostgresSaver.from_conn_string(...)``, a context manager, as if
it were a saver). The model is ``SEED_MODEL`` (default ``gpt-4o``) at ``OPENAI_BASE_URL`` (the mock)::

    SEED_STORAGE=sqlite:///seed.db OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 OPENAI_API_KEY=x \\
        uvicorn benchmarks.seed_app:app --port 8001
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from fastapi import FastAPI, HTTPException
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel


class AgentState(TypedDict):
    messages: Annotated[Sequence[BaseMessage], add_messages]
    user_id: str
    session_id: str


def open_checkpointer(storage: str) -> BaseCheckpointSaver[Any]:
    """The seed's sync savers, one connection for the whole process."""
    if storage.startswith(("postgresql://", "postgres://")):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        # What PostgresSaver.from_conn_string(storage) opens, kept open for the life of the process.
        conn = Connection.connect(storage, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        postgres = PostgresSaver(conn)
        postgres.setup()
        return postgres
    if storage.startswith("sqlite:///"):
        from langgraph.checkpoint.sqlite import SqliteSaver

        sqlite = SqliteSaver(sqlite3.connect(storage.removeprefix("sqlite:///"), check_same_thread=False))
        sqlite.setup()
        return sqlite
    return MemorySaver()


class ProductionAgent:
    """生产级 Agent"""

    def __init__(self, model: str = "gpt-4o", storage: str = "memory"):
        self.llm = ChatOpenAI(model=model, temperature=0)
        self.app = self._build_graph(storage)

    def _build_graph(self, storage: str) -> Any:
        def agent_node(state: AgentState) -> dict[str, Any]:
            response = self.llm.invoke(state["messages"])
            return {"messages": [response]}

        builder = StateGraph(AgentState)
        builder.add_node("agent", agent_node)
        builder.add_edge(START, "agent")
        builder.add_edge("agent", END)

        # 选择持久化方案
        checkpointer = open_checkpointer(storage)

        return builder.compile(checkpointer=checkpointer)

    def chat(self, user_id: str, message: str, session_id: str | None = None) -> str:
        """单轮对话"""
        if session_id is None:
            session_id = f"session-{user_id}"

        config = {"configurable": {"thread_id": session_id}}

        result = self.app.invoke(
            {"messages": [HumanMessage(content=message)], "user_id": user_id, "session_id": session_id},
            config=config,
        )

        return str(result["messages"][-1].content)

    def get_history(self, session_id: str) -> list[BaseMessage]:
        """获取对话历史"""
        config = {"configurable": {"thread_id": session_id}}
        state = self.app.get_state(config)
        if state:
            return list(state.values.get("messages", []))
        return []

    def reset_session(self, session_id: str) -> None:
        """重置会话"""
        # 删除对应的 checkpoint
        checkpointer = self.app.checkpointer
        if hasattr(checkpointer, "delete_thread"):
            checkpointer.delete_thread(session_id)


app = FastAPI(title="Agent API")
agent = ProductionAgent(os.environ.get("SEED_MODEL", "gpt-4o"), os.environ.get("SEED_STORAGE", "memory"))


class ChatRequest(BaseModel):
    user_id: str
    message: str
    session_id: str | None = None


class ChatResponse(BaseModel):
    response: str


@app.post("/chat", response_model=ChatResponse)
async def chat(request: ChatRequest) -> ChatResponse:
    """聊天接口"""
    try:
        response = agent.chat(user_id=request.user_id, message=request.message, session_id=request.session_id)
        return ChatResponse(response=response)
    except Exception as e:
        raise HTTPException(status_code=500, detail=str(e)) from e


@app.post("/reset")
async def reset_session(session_id: str) -> dict[str, str]:
    """重置会话"""
    agent.reset_session(session_id)
    return {"message": "Session reset"}


@app.get("/history/{session_id}")
async def get_history(session_id: str) -> dict[str, list[Any]]:
    """获取对话历史"""
    messages = agent.get_history(session_id)
    return {"messages": [m.content for m in messages]}
