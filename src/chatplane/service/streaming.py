"""Run events on the wire: SSE frames (``id`` = event id, ``event`` = type, ``data`` = the event as JSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent

from chatplane.events import RunEvent


def sse_frame(event: RunEvent) -> ServerSentEvent:
    """An event read from a run's record (id 0, outside the run's numbering) has no SSE id: a client's
    ``Last-Event-ID`` stays the last id it really received."""
    return ServerSentEvent(event.model_dump_json(), event=event.type, id=str(event.id) if event.id else None)


def parse_last_event_id(value: str | None) -> int:
    """``Last-Event-ID`` → the id to replay after (0 = from the start); garbage counts as 0."""
    if value and value.strip().isdigit():
        return int(value.strip())
    return 0


def run_event_stream(events: AsyncIterator[RunEvent], ping_s: float) -> EventSourceResponse:
    """A run's ``events`` (``RunService.events``) as SSE, with heartbeat comments while the run is silent.

    A disconnecting client stops only this stream, never the run.
    """

    async def frames() -> AsyncIterator[ServerSentEvent]:
        async for event in events:
            yield sse_frame(event)

    return EventSourceResponse(frames(), ping=ping_s)
