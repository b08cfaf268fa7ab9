"""LangGraph's ``messages`` stream parts (``[message, metadata]``, chunk by chunk) → the thread protocol's
``messages`` data: ``message-start``, ``content-block-start`` / ``-delta`` / ``-finish`` for each block (text, tool
calls), ``message-finish`` — what ``langchain_core``'s ``ChatModelStream`` (the SDK's ``thread.messages``) reads.

A streamed message ends at its chunk marked ``chunk_position: "last"``; one whose model never marks it ends when
another message starts in the same namespace, or when the run pauses or ends (``finish_all``). A whole message
(not a chunk: a node's return value) is sent start to finish at once. Tool messages are left out: the ``tools``
channel carries their results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Data = dict[str, Any]
_ROLES = {"ai": "ai", "AIMessageChunk": "ai", "human": "human", "HumanMessageChunk": "human", "system": "system"}


@dataclass
class _Open:
    """A message under way: its namespace, the wire index of each block, the text so far."""

    namespace: tuple[str, ...]
    text_index: int | None = None
    text: str = ""
    tool_index: dict[Any, int] = field(default_factory=dict)
    tool_args: dict[Any, str] = field(default_factory=dict)
    blocks: int = 0
    usage: dict[str, Any] | None = None


class MessageTranslator:
    """One run's ``messages`` parts → ``(namespace, data)`` pairs of the protocol's ``messages`` channel."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._open: dict[str, _Open] = {}

    def part(self, namespace: list[str], data: Any) -> list[tuple[list[str], Data]]:
        if not isinstance(data, list) or len(data) != 2 or not isinstance(data[0], dict):
            return []
        wire, metadata = data
        kind = str(wire.get("type", ""))
        role = _ROLES.get(kind)
        message_id = str(wire.get("id") or "")
        if role is None or not message_id:
            return []
        ns = tuple(namespace)
        out: list[tuple[list[str], Data]] = []
        if message_id not in self._open:
            out += [item for other, o in list(self._open.items()) if o.namespace == ns for item in self.finish(other)]
            self._open[message_id] = _Open(ns)
            start: Data = {"event": "message-start", "role": role, "id": message_id, "metadata": self._meta(metadata)}
            out.append((list(ns), start))
        out += [(list(ns), d) for d in self._content(self._open[message_id], wire, whole=not kind.endswith("Chunk"))]
        if wire.get("usage_metadata"):
            self._open[message_id].usage = dict(wire["usage_metadata"])
        if not kind.endswith("Chunk") or wire.get("chunk_position") == "last":
            out += self.finish(message_id)
        return out

    def _meta(self, metadata: Any) -> Data:
        meta: Data = {"run_id": self.run_id}
        if isinstance(metadata, dict):
            meta.update({k: v for k, v in metadata.items() if k.startswith("langgraph_") and isinstance(v, str)})
        return meta

    def _content(self, state: _Open, wire: Data, *, whole: bool) -> list[Data]:
        out: list[Data] = []
        text = _text(wire.get("content"))
        if text:
            if state.text_index is None:
                state.text_index = state.blocks
                state.blocks += 1
                out.append(_block_start(state.text_index, {"type": "text", "text": ""}))
            state.text += text
            out.append(
                {
                    "event": "content-block-delta",
                    "index": state.text_index,
                    "delta": {"type": "text-delta", "text": text},
                }
            )
        calls = wire.get("tool_calls") if whole else wire.get("tool_call_chunks")
        for position, call in enumerate(calls or ()):
            out += self._tool_piece(state, call, position, whole=whole)
        return out

    def _tool_piece(self, state: _Open, call: Data, position: int, *, whole: bool) -> list[Data]:
        key = call.get("id") if whole else call.get("index", position)
        args = call.get("args")
        piece = json.dumps(args) if whole else str(args or "")
        if key not in state.tool_index:
            state.tool_index[key] = state.blocks
            state.blocks += 1
            state.tool_args[key] = piece
            block = {"type": "tool_call_chunk", "id": call.get("id"), "name": call.get("name"), "args": piece}
            return [_block_start(state.tool_index[key], block)]
        state.tool_args[key] += piece
        fields = {"type": "tool_call_chunk", "args": state.tool_args[key]}
        return [
            {
                "event": "content-block-delta",
                "index": state.tool_index[key],
                "delta": {"type": "block-delta", "fields": fields},
            }
        ]

    def finish(self, message_id: str) -> list[tuple[list[str], Data]]:
        """End the message: its text block, then the message."""
        state = self._open.pop(message_id, None)
        if state is None:
            return []
        ns = list(state.namespace)
        out: list[tuple[list[str], Data]] = []
        if state.text_index is not None:
            block = {"type": "text", "text": state.text}
            out.append((ns, {"event": "content-block-finish", "index": state.text_index, "content": block}))
        end: Data = {"event": "message-finish"}
        if state.usage:
            end["usage"] = {
                k: state.usage[k] for k in ("input_tokens", "output_tokens", "total_tokens") if k in state.usage
            }
        out.append((ns, end))
        return out

    def fail(self, message_id: str, reason: str) -> list[tuple[list[str], Data]]:
        """The model attempt that streamed ``message_id`` failed (chatplane's ``retract``): an ``error``."""
        state = self._open.pop(message_id, None)
        if state is None:
            return []
        return [(list(state.namespace), {"event": "error", "message": reason})]

    def finish_all(self) -> list[tuple[list[str], Data]]:
        return [item for message_id in list(self._open) for item in self.finish(message_id)]


def _block_start(index: int, content: Data) -> Data:
    return {"event": "content-block-start", "index": index, "content": content}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(b.get("text", ""))
            if isinstance(b, dict) and b.get("type") == "text"
            else b
            if isinstance(b, str)
            else ""
            for b in content
        )
    return ""
