"""LangChain messages → the wire ``Message`` clients see."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from chatplane.events import Message

_ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


def message_to_wire(message: BaseMessage) -> Message:
    meta = message.response_metadata or {}
    created = meta.get("created_at")
    status = meta.get("status")
    tool_calls: list[dict[str, Any]] = []
    tool_call_id = None
    if isinstance(message, AIMessage):
        tool_calls = [{"id": c.get("id"), "name": c["name"], "args": c["args"]} for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        tool_call_id = message.tool_call_id
        status = status or (message.status if message.status != "success" else None)
    return Message(
        id=message.id,
        role=_ROLES.get(message.type, "assistant"),
        content=message.text,
        name=message.name,
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        created_at=float(created) if isinstance(created, int | float) else None,
        status=status,
    )
