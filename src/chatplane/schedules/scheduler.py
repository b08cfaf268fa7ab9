"""The job that runs due schedules: in every process, every ``schedule_poll_s``, claim the due ones
(``ScheduleStore.claim_due``: exactly one process gets each), start each one's tick, settle it.

A tick's run is started by ``start_tick`` (``chatplane.core.schedules``) after ``admit`` — the owner's limits
(token budget, runs at once), as for a run a client starts. A tick that cannot start (a limit, a deleted thread or
assistant) is not retried: its reason is kept on the schedule (``last_error``) and the schedule moves on.

The next tick is the first one after *now*, not after the tick just run: after every process was down for a while,
a schedule runs once on return, not once for each tick it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from chatplane.config import Settings
from chatplane.errors import ChatplaneError, DependencyError
from chatplane.failures import as_chatplane_error
from chatplane.schedules.expression import next_tick
from chatplane.storage.schedules import Schedule, ScheduleStore

log = logging.getLogger("chatplane.schedules")

StartTick = Callable[[Schedule, float], Awaitable[str]]
Admit = Callable[[str], Awaitable[None]]


class Scheduler:
    def __init__(
        self, store: ScheduleStore, settings: Settings, worker: str, start_tick: StartTick, admit: Admit | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker = worker
        self.start_tick = start_tick
        self.admit = admit
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="schedules")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception as exc:
                as_chatplane_error(exc, f"schedules ({self.worker})")
            await asyncio.sleep(self.settings.schedule_poll_s)

    async def run_due(self) -> int:
        """Start the tick of every schedule due now that this process claims; how many."""
        now = time.time()
        claimed = await self.store.claim_due(now, self.worker, now + self.settings.run_lease_s)
        for schedule in claimed:
            await self._run(schedule)
        return len(claimed)

    async def _run(self, schedule: Schedule) -> None:
        tick = schedule.next_run_at
        assert tick is not None
        run_id, error = None, None
        try:
            if self.admit is not None:
                await self.admit(schedule.owner)
            run_id = await self.start_tick(schedule, tick)
        except DependencyError as exc:  # the database or the like: the claim lapses, and the tick is tried again
            log.warning("schedule %s: tick not started yet (%s)", schedule.schedule_id, exc.code)
            return
        except ChatplaneError as exc:
            error = exc.code
            log.info("schedule %s: tick not run (%s)", schedule.schedule_id, exc.code)
        except Exception as exc:
            error = as_chatplane_error(exc, f"schedule {schedule.schedule_id}").code
        following = next_tick(schedule.schedule, schedule.timezone, max(time.time(), tick))
        if following is not None and schedule.end_time is not None and following > schedule.end_time:
            following = None
        await self.store.settle(schedule, self.worker, next_run_at=following, run_id=run_id, error=error)
