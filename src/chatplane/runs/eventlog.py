"""Each run's events, kept for replay: a subscriber asks for everything after id N and then follows live.

This is the in-process log (one worker). The interface is what a cross-process log (Redis streams) implements too.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from chatplane.events import PAUSE_EVENTS, TERMINAL_EVENTS, EventType, RunEvent
from chatplane.runs.events import SILENCE_S, Silence


class _RunLog:
    __slots__ = ("events", "changed", "closed")

    def __init__(self) -> None:
        self.events: list[RunEvent] = []
        self.changed = asyncio.Condition()
        self.closed = False


class MemoryEventLog:
    """Events of the most recent ``max_runs`` runs, in memory."""

    def __init__(self, max_runs: int = 2000) -> None:
        self._logs: OrderedDict[str, _RunLog] = OrderedDict()
        self._max_runs = max_runs

    def _log(self, run_id: str, create: bool = False) -> _RunLog | None:
        log = self._logs.get(run_id)
        if log is None and create:
            log = self._logs[run_id] = _RunLog()
            if len(self._logs) > self._max_runs:
                # Forget the oldest finished runs; a live run's log is never dropped.
                # Oldest first, and the oldest are nearly always finished: this stops after the first few.
                excess = len(self._logs) - self._max_runs
                stale: list[str] = []
                for old_id, old in self._logs.items():
                    if old.closed:
                        stale.append(old_id)
                        if len(stale) == excess:
                            break
                for old_id in stale:
                    del self._logs[old_id]
        return log

    async def append(self, run_id: str, type: EventType, data: dict[str, Any] | None = None) -> RunEvent:
        log = self._log(run_id, create=True)
        assert log is not None
        event = RunEvent(id=len(log.events) + 1, type=type, run_id=run_id, data=data or {})
        await self.put(event)
        return event

    async def put(self, event: RunEvent) -> bool:
        """Add an event numbered elsewhere (a shared log's copy in this process); False, and nothing added, unless
        its id is the next one here."""
        log = self._log(event.run_id, create=True)
        assert log is not None
        if event.id != len(log.events) + 1:
            return False
        async with log.changed:
            log.events.append(event)
            log.closed = event.type in TERMINAL_EVENTS
            log.changed.notify_all()
        return True

    def known(self, run_id: str) -> bool:
        return run_id in self._logs

    async def kept(self, run_id: str) -> bool:
        return run_id in self._logs

    def open(self, run_id: str, *, here: bool = False) -> None:
        """Register a run accepted here, so subscribers wait for its first event (``here``: it starts here too)."""
        self._log(run_id, create=True)

    def has_events(self, run_id: str) -> bool:
        log = self._logs.get(run_id)
        return log is not None and bool(log.events)

    async def subscribe(
        self,
        run_id: str,
        after: int = 0,
        *,
        through_pauses: bool = False,
        silence: Silence | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Events with id > ``after``, then live ones, until the run ends (or pauses for a human, unless
        ``through_pauses``). Past the end of a run that has ended: its last event again, at once — a client that
        re-attaches there learns that the run is over instead of waiting for events that will never come. After
        ``SILENCE_S`` without an event, ``silence`` is asked for the run's outcome: an event it gives ends this."""
        log = self._log(run_id, create=True)
        assert log is not None
        position = after
        while True:
            async with log.changed:
                if log.closed and position >= len(log.events):
                    position = len(log.events) - 1
                while position >= len(log.events):
                    if silence is None:
                        await log.changed.wait()
                        continue
                    try:
                        async with asyncio.timeout(SILENCE_S):
                            await log.changed.wait()
                    except TimeoutError:
                        if (outcome := await silence()) is not None:
                            yield outcome
                            return
                batch = log.events[position:]
            for event in batch:
                position = event.id
                yield event
                if event.type in TERMINAL_EVENTS:
                    return
            if not through_pauses and batch[-1].type in PAUSE_EVENTS and position == len(log.events):
                return
