"""A graph that keeps notes in the long-term store, through LangGraph's runtime: an async node with
``runtime.store``, a synchronous one with ``get_store()``. chatplane gives each run its owner's store."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.config import get_store
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime


class NotesState(TypedDict, total=False):
    key: str
    text: str
    seen: list[str]
    count: int


async def remember(state: NotesState, runtime: Runtime) -> dict[str, Any]:
    store = runtime.store
    assert store is not None
    await store.aput(("notes",), state["key"], {"text": state["text"]})
    found = await store.asearch(("notes",), limit=100)
    return {"seen": sorted(item.key for item in found)}


def count(state: NotesState) -> dict[str, Any]:
    return {"count": len(get_store().search(("notes",), limit=100))}


notes = (
    StateGraph(NotesState)
    .add_node("remember", remember)
    .add_node("count", count)
    .add_edge(START, "remember")
    .add_edge("remember", "count")
    .compile()
)
