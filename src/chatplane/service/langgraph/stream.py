"""chatplane's run events → LangGraph's stream parts, as ``langgraph-api`` sends them over SSE.

A run asked for LangGraph stream modes emits one event per part of each (``values``, ``updates``, ``messages`` …,
``{"namespace", "data"}``, see ``chatplane.events``); here they become LangGraph's parts: ``metadata`` first
(``{"run_id", "attempt"}``), then each part named by its mode — ``mode|ns1|ns2`` for a subgraph's — with:

* ``messages-tuple`` → ``messages`` parts ``[chunk, metadata]``, as LangGraph streams them;
* ``messages`` → ``messages/metadata`` (``{message_id: {"metadata"}}``, once per message), then
  ``messages/partial`` (the message so far) or ``messages/complete`` (a whole message), LangGraph's older form;
* a failed run → ``error`` (``{"error", "message"}``); an interrupt ends the stream after the ``values`` /
  ``updates`` parts that carry ``__interrupt__`` (LangGraph's own).

Part ids: ``N`` for the first part made of event ``N``, ``N.k`` for its next ones; ``metadata`` has the id of the
event the stream starts after (0, or a resumed run's ``run_resumed``). A client
that reconnects with ``Last-Event-ID`` gets every part after it exactly once: the run's events are translated again
from the first (what ``messages`` accumulates depends on them) and what it already had is skipped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message, messages_from_dict
from sse_starlette import EventSourceResponse, ServerSentEvent

from chatplane.core.runs import RunService
from chatplane.errors import InvalidInputError
from chatplane.events import PAUSE_EVENTS, STREAM_MODES, RunEvent
from chatplane.runs.jsonable import to_jsonable
from chatplane.storage.runs import Run

LANGGRAPH_MODES = (
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
    "events",
)
"""The stream modes a run may ask for here. LangGraph's ``tools`` and ``lifecycle`` are refused on these routes, as
langgraph-api refuses them (a 422): it emits them only on its v2 event streaming endpoints (the thread-scoped
protocol), whose events they are."""
_V2_ONLY = ("tools", "lifecycle")

Part = tuple[str, str, Any]
"""``(id, event, data)``."""


def stream_modes(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """The LangGraph modes asked for (default ``values``), or a 422 naming one chatplane does not stream."""
    modes = [value] if isinstance(value, str) else list(value or ["values"])
    for mode in modes:
        if mode in _V2_ONLY:
            raise InvalidInputError(
                f"`stream_mode` {mode!r} is only supported on the v2 event streaming endpoints, as on LangGraph's "
                "own server."
            )
        if mode not in LANGGRAPH_MODES:
            raise InvalidInputError(
                f"`stream_mode` {mode!r} is not supported; chatplane streams {', '.join(LANGGRAPH_MODES)}."
            )
    return tuple(dict.fromkeys(modes))


def chatplane_modes(modes: Sequence[str]) -> tuple[str, ...]:
    """What the run itself streams for ``modes`` (both message modes come from LangGraph's ``messages``)."""
    wanted = ["messages" if m == "messages-tuple" else m for m in modes]
    return tuple(m for m in dict.fromkeys(wanted) if m in STREAM_MODES)


def parse_cursor(last_event_id: str | None) -> tuple[int, int] | None:
    """``Last-Event-ID`` → ``(event id, part index)`` to resume after; None (or garbage): from the start."""
    if not last_event_id:
        return None
    head, _, tail = last_event_id.strip().partition(".")
    if not head.isdigit() or (tail and not tail.isdigit()):
        return None
    return int(head), int(tail or 0)


@dataclass
class PartTranslator:
    """One run's events → parts. ``modes``: what the client asked for (LangGraph's names)."""

    modes: Sequence[str]
    run_id: str
    _messages: dict[str, BaseMessage] = field(default_factory=dict)

    def metadata(self, after: int = 0) -> Part:
        """The first part; its id is where the stream starts (``after``), so a client that reconnects right after
        it gets nothing from before."""
        return str(after), "metadata", {"run_id": self.run_id, "attempt": 1}

    def parts(self, event: RunEvent) -> list[Part]:
        """The parts ``event`` gives (none for chatplane's own events), with their ids."""
        named = self._named(event)
        return [(str(event.id) if k == 0 else f"{event.id}.{k}", name, data) for k, (name, data) in enumerate(named)]

    def _named(self, event: RunEvent) -> list[tuple[str, Any]]:
        if event.type == "run_failed":
            error = event.data.get("error") or {}
            return [("error", {"error": error.get("code", "error"), "message": error.get("message", "")})]
        if event.type not in STREAM_MODES:
            return []
        suffix = "".join(f"|{ns}" for ns in event.data.get("namespace") or ())
        data = event.data.get("data")
        if event.type != "messages":
            return [(event.type + suffix, data)] if event.type in self.modes else []
        out: list[tuple[str, Any]] = []
        if "messages-tuple" in self.modes:
            out.append(("messages" + suffix, data))
        if "messages" in self.modes:
            out += [(name + suffix, value) for name, value in self._message_parts(data)]
        return out

    def _message_parts(self, data: Any) -> list[tuple[str, Any]]:
        """LangGraph's older ``messages`` form: the message so far, accumulated chunk by chunk."""
        if not isinstance(data, list) or len(data) != 2 or not isinstance(data[0], dict):
            return []
        wire, metadata = data
        kind = str(wire.get("type", ""))
        message = messages_from_dict([{"type": kind, "data": {k: v for k, v in wire.items() if k != "type"}}])[0]
        out: list[tuple[str, Any]] = []
        key = message.id or ""
        if key in self._messages:
            previous = self._messages[key]
            if isinstance(previous, BaseMessageChunk) and isinstance(message, BaseMessageChunk):
                message = previous + message
            self._messages[key] = message
        else:
            self._messages[key] = message
            out.append(("messages/metadata", {key: {"metadata": metadata}}))
        whole = self._messages[key]
        if isinstance(whole, BaseMessageChunk):
            whole = message_chunk_to_message(whole)
        name = "messages/partial" if isinstance(message, BaseMessageChunk) else "messages/complete"
        out.append((name, [to_jsonable(whole)]))
        return out


async def lg_parts(
    events: AsyncIterator[RunEvent], translator: PartTranslator, cursor: tuple[int, int] | None, after: int = 0
) -> AsyncIterator[Part]:
    """The parts of ``events`` (a run's, after event ``after``): ``metadata`` first unless the client resumes
    from ``cursor`` (its ``Last-Event-ID``), when the parts up to it are skipped."""
    if cursor is None:
        yield translator.metadata(after)
    async for event in events:
        for index, part in enumerate(translator.parts(event)):
            if cursor is None or (event.id, index) > cursor:
                yield part


def sse_response(parts: AsyncIterator[Part], ping_s: float, headers: dict[str, str]) -> EventSourceResponse:
    """``parts`` as SSE (``id``, ``event``, ``data``), with heartbeat comments while the run is silent."""

    async def frames() -> AsyncIterator[ServerSentEvent]:
        async for part_id, name, data in parts:
            yield ServerSentEvent(json.dumps(data, separators=(",", ":")), event=name, id=part_id)

    return EventSourceResponse(frames(), ping=ping_s, headers=headers)


async def follow(runs: RunService, run: Run, after: int = 0) -> AsyncIterator[RunEvent]:
    """The run's events after ``after`` until it ends or waits for a human — across the pauses it was resumed from
    since (a chatplane run goes on after ``Command(resume=...)``; LangGraph's would be a new run)."""
    while True:
        last: RunEvent | None = None
        async for event in runs.events(run, after):
            last = event
            yield event
        if last is None or last.type not in PAUSE_EVENTS:
            return
        run = await runs.get(run.run_id)
        if run.status == "waiting":
            return
        after = last.id
