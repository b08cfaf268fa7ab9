"""Run events on the wire: SSE frames (``id`` = event id, ``event`` = type, ``data`` = the event as JSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent

from chatplane.agent import ProductionAgent
from chatplane.events import EventType, RunEvent
from chatplane.runs import Run

_SYNTHETIC: dict[str, EventType] = {
    "succeeded": "run_completed",
    "failed": "run_failed",
    "cancelled": "run_cancelled",
}


def sse_frame(event: RunEvent) -> ServerSentEvent:
    return ServerSentEvent(event.model_dump_json(), event=event.type, id=str(event.id))


def parse_last_event_id(value: str | None) -> int:
    """``Last-Event-ID`` → the id to replay after (0 = from the start); garbage counts as 0."""
    if value and value.strip().isdigit():
        return int(value.strip())
    return 0


def run_event_stream(agent: ProductionAgent, run: Run, after: int, ping_s: float) -> EventSourceResponse:
    """The run's events after ``after``, live until it ends or pauses; heartbeat comments while it is silent.

    A disconnecting client stops only this stream, never the run.
    """

    async def frames() -> AsyncIterator[ServerSentEvent]:
        if not agent.runs.events.known(run.run_id) and run.finished:
            # The run ended before this process started (or its log expired): its outcome is in the record.
            data: dict[str, Any] = {"status": run.status}
            if run.error_code:
                data["error"] = {"code": run.error_code}
            kind = _SYNTHETIC[run.status]
            yield sse_frame(RunEvent(id=after + 1, type=kind, run_id=run.run_id, data=data))
            return
        async for event in agent.runs.subscribe(run.run_id, after):
            yield sse_frame(event)

    return EventSourceResponse(frames(), ping=ping_s)
