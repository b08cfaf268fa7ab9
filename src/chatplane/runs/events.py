"""Following a run: its events from any id, then live, until it ends or pauses — wherever it runs.

A run's events are in its event log: in memory for one process (``MemoryEventLog``), in Redis for several
(``RedisEventLog``). A run this process cannot see in either (another process runs it without Redis, or it ended
before this process started, or its log expired) is followed through its record in the runs table instead: its
outcome comes as one event with id 0 — outside the run's numbering, since the ids its events had are gone, and sent
without an SSE id, so that a client's ``Last-Event-ID`` stays the last id it really received.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from chatplane.errors import error_from_code
from chatplane.events import EventType, RunEvent
from chatplane.storage.runs import RunStore

OUTSIDE_THE_LOG = 0
"""The id of an event read from a run's record rather than its log (``RunFollower``)."""

SILENCE_S = 5.0
"""How long a follower waits for a run's next event before it reads the run's record (``Silence``)."""

Silence = Callable[[], Awaitable[RunEvent | None]]
"""What a log's subscriber does after ``SILENCE_S`` without an event: the run's outcome from its record, if it has
ended (the log may never get its last event: the process died between recording the outcome and logging it), else
None, and the subscriber goes on waiting."""


class EventLogUnavailable(Exception):
    """The log cannot be read now (Redis unreachable): the follower reads the run's record instead."""


class EventLog(Protocol):
    def known(self, run_id: str) -> bool:
        """Whether the run's events are, or will be, in this log (False: another process runs it, without Redis)."""
        ...

    async def kept(self, run_id: str) -> bool:
        """Whether this log holds events of the run now (False: none yet, or forgotten, or expired)."""
        ...

    def open(self, run_id: str, *, here: bool = False) -> None: ...
    async def append(self, run_id: str, type: EventType, data: dict[str, Any] | None = None) -> RunEvent: ...
    def subscribe(
        self, run_id: str, after: int = 0, *, through_pauses: bool = False, silence: Silence | None = None
    ) -> AsyncIterator[RunEvent]:
        """The run's events after ``after``, then live ones, until it ends (or pauses); after ``SILENCE_S`` without
        an event, ``silence`` may end it with the run's recorded outcome. Raises ``EventLogUnavailable``."""
        ...


class RunFollower:
    """Subscriptions to runs' events, from ``log`` or, for a run it does not know, from ``runs``."""

    def __init__(self, log: EventLog, runs: RunStore) -> None:
        self.log = log
        self.runs = runs

    def subscribe(self, run_id: str, after: int = 0, *, through_pauses: bool = False) -> AsyncIterator[RunEvent]:
        """The run's events after ``after``, then live ones, until it ends (or pauses for a human). Past the end of
        a finished run: its last event again (or its outcome, from its record), at once."""
        return self._follow(run_id, after, through_pauses)

    async def _follow(self, run_id: str, after: int, through_pauses: bool) -> AsyncIterator[RunEvent]:
        if not await self.log.kept(run_id):
            # Nothing in the log: the run has not started yet, or runs elsewhere, or its log is gone.
            run = await self.runs.find(run_id)
            if run is None or run.finished or not self.log.known(run_id):
                async for event in self._poll_outcome(run_id, through_pauses):
                    yield event
                return

        async def silence() -> RunEvent | None:
            return await self._recorded_outcome(run_id, through_pauses)

        try:
            async for event in self.log.subscribe(run_id, after, through_pauses=through_pauses, silence=silence):
                yield event
        except EventLogUnavailable:
            async for event in self._poll_outcome(run_id, through_pauses):
                yield event

    async def _poll_outcome(self, run_id: str, through_pauses: bool) -> AsyncIterator[RunEvent]:
        """The outcome of a run whose events this process cannot see, from the runs table."""
        while True:  # the record is in the database, which tells no one when it changes: polled
            if (event := await self._recorded_outcome(run_id, through_pauses)) is not None:
                yield event
                return
            await asyncio.sleep(0.5)

    async def _recorded_outcome(self, run_id: str, through_pauses: bool) -> RunEvent | None:
        """The run's outcome as its record tells it — its end, or (unless ``through_pauses``) its pause — as one
        event outside the log's numbering; None while it is still under way."""
        run = await self.runs.find(run_id)
        if run is None or run.finished:
            status = run.status if run is not None else "failed"
            kind: EventType = {"succeeded": "run_completed", "cancelled": "run_cancelled"}.get(status, "run_failed")  # type: ignore[assignment]
            data: dict[str, Any] = {"status": status}
            if run is not None and run.error_code:
                data["error"] = {"code": run.error_code, "message": error_from_code(run.error_code).message}
            return RunEvent(id=OUTSIDE_THE_LOG, type=kind, run_id=run_id, data=data)
        if run.status == "waiting" and not through_pauses:
            return RunEvent(id=OUTSIDE_THE_LOG, type="interrupt", run_id=run_id, data={"requests": []})
        return None

    async def outcome(self, run_id: str) -> tuple[RunEvent | None, dict[str, Any] | None]:
        """Wait until the run finishes or pauses: its last event, and its answer (the newest complete assistant
        message without tool calls, as a wire ``Message`` dict) if it gave one."""
        last: RunEvent | None = None
        answer: dict[str, Any] | None = None
        async for event in self.subscribe(run_id, 0):
            last = event
            if event.type == "message":
                message = event.data["message"]
                if message["role"] == "assistant" and not message["tool_calls"] and message["content"]:
                    answer = message
        return last, answer
