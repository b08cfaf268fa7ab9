"""Small builders shared by the agent tests."""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from chatplane.config import Settings

_ids = itertools.count(1)


def call(name: str, args: dict[str, Any] | None = None, *, id: str | None = None) -> AIMessage:
    """A scripted model reply that calls one tool."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args or {}, "id": id or f"call_{next(_ids)}"}])


def calls(*pairs: tuple[str, dict[str, Any]]) -> AIMessage:
    """A scripted model reply that calls several tools at once."""
    return AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": f"call_{next(_ids)}"} for n, a in pairs])


def run_config(thread_id: str, settings: Settings) -> RunnableConfig:
    """What a caller passes: the thread, and LangGraph's recursion limit from the settings."""
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": settings.recursion_limit}


def tool_results(messages: list[AnyMessage]) -> list[tuple[str | None, str, str]]:
    return [(m.name, m.text, m.status) for m in messages if isinstance(m, ToolMessage)]


def assert_every_tool_call_answered(messages: list[AnyMessage]) -> None:
    """What providers require of a conversation: each tool call has its result, right after its message."""
    for i, message in enumerate(messages):
        if isinstance(message, AIMessage) and message.tool_calls:
            following: list[str] = []
            for later in messages[i + 1 :]:
                if not isinstance(later, ToolMessage):
                    break
                following.append(later.tool_call_id)
            assert sorted(following) == sorted(c["id"] for c in message.tool_calls), message
