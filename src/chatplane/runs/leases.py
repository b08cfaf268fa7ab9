"""Who runs what, across processes: claims, leases, the next run of a thread, and recovery of lost runs.

A process *claims* a run (``running``, its worker id, a lease) and renews the lease every ``lease / 5`` seconds
for the runs it executes; the same heartbeat picks up cancel requests made through other processes. When a run
ends, its process claims the thread's next pending run. A reaper in every process recovers runs whose lease ran
out (their process died, or handed them back on shutdown): it resumes them from their last checkpoint, or fails
them with ``worker_lost`` (``CHATPLANE_RUN_RECOVERY``, ``CHATPLANE_RUN_MAX_RECOVERIES``); it also starts pending
runs left without a runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from chatplane.config import Settings
from chatplane.errors import WorkerLostError
from chatplane.failures import as_chatplane_error
from chatplane.runs.execution import Executor, graph_input
from chatplane.runs.liveness import WorkerLiveness
from chatplane.storage.runs import Run, RunStore
from chatplane.storage.threads import ThreadStore

log = logging.getLogger("chatplane.runs")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leases:
    """This process's claims on runs, and the background jobs that keep them (heartbeat) and recover others'."""

    def __init__(
        self,
        *,
        runs: RunStore,
        threads: ThreadStore,
        settings: Settings,
        executor: Executor,
        postgres_url: str | None = None,
    ) -> None:
        """``postgres_url``: the database is PostgreSQL — a dead worker is noticed by its session ending
        (``chatplane.runs.liveness``), before its leases run out."""
        self.runs = runs
        self.threads = threads
        self.settings = settings
        self.executor = executor
        self.worker = worker_id()
        self.closing = False
        self._recovering: set[str] = set()  # runs recovery took over here and is deciding about (not launched yet)
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._reaper_task: asyncio.Task[None] | None = None
        self._wakes: set[asyncio.Task[None]] = set()  # delayed runs' wake-ups (``wake_at``)
        self.liveness = (
            WorkerLiveness(postgres_url, self.worker, trust_after_s=settings.run_lease_s) if postgres_url else None
        )

    def lease(self) -> float:
        return time.time() + self.settings.run_lease_s

    def claim_for(self) -> tuple[str, float]:
        """(worker, lease end) for a run claimed now."""
        return self.worker, self.lease()

    # --- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the heartbeat (leases, cancel requests) and the reaper (recovery)."""
        lease = self.settings.run_lease_s
        self._heartbeat_task = asyncio.create_task(self._every(lease / 5, self._heartbeat), name="runs-heartbeat")
        # With PostgreSQL a dead worker is noticed by its session (``_notice_dead_workers``): the reaper looks as
        # often as the heartbeat beats; otherwise leases are what tell, and every half lease is enough.
        every = lease / 5 if self.liveness is not None else lease / 2
        self._reaper_task = asyncio.create_task(self._every(every, self._reap), name="runs-reaper")
        wakes = asyncio.create_task(self._wake_delayed(), name="runs-delayed")
        self._wakes.add(wakes)
        wakes.add_done_callback(self._wakes.discard)

    async def aclose(self, grace_s: float | None = None) -> None:
        """Stop: let running runs finish for ``grace_s`` (default: none), then hand the rest back to the queue."""
        self.closing = True
        # The reaper stops now; the heartbeat only once the runs are finished or handed back: the grace may outlast
        # a lease, and another process must not take over a run that is still executing here.
        if self._reaper_task is not None:
            self._reaper_task.cancel()
        for wake in list(self._wakes):
            wake.cancel()
        pending = [t for t in self.executor.tasks.values() if not t.done()]
        if pending and grace_s:
            log.info("waiting up to %.0f s for %d run(s) to finish", grace_s, len(pending))
            await asyncio.wait(pending, timeout=grace_s)
        remaining = self.executor.executing()
        if remaining:
            await self.executor.hand_back(remaining)
            with contextlib.suppress(Exception):
                await self.runs.release(remaining, self.worker)
            log.info("handed %d run(s) back to the queue", len(remaining))
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        background = [t for t in (self._heartbeat_task, self._reaper_task) if t is not None]
        await asyncio.gather(*background, return_exceptions=True)
        if self.liveness is not None:
            await self.liveness.aclose()

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception as exc:
                as_chatplane_error(exc, f"worker {self.worker} ({job.__name__})")

    # --- the next run of a thread ---------------------------------------------------------------------------------
    async def after_run(self, run: Run, next_up: list[Run] | None) -> None:
        """Once a run's task is done with it: start the thread's next run (``next_up``: its active runs, read as
        the outcome was recorded); if the outcome could not be recorded, mark the thread active now, then (unless
        the run paused) read and start its next run — the read comes after the touch (``TurnStore.finish``)."""
        try:
            if next_up is not None:
                await self.start_next(next_up)
                return
            await self.threads.touch(run.thread_id)
            if run.status != "waiting" and run.thread_id:
                await self.start_next(await RunStore.active_for_thread(self.runs.db, run.thread_id))
        except Exception as exc:
            as_chatplane_error(exc, f"run {run.run_id} (after it ended)")

    async def start_next(self, active: list[Run]) -> None:
        """Claim and start the first of a thread's ``active`` runs, if it is pending."""
        if self.closing:
            return
        run = await self._claim_first(self.runs.db, active)
        if run is not None:
            self.executor.launch(run, graph_input(run))

    async def continue_thread(self, thread_id: str) -> None:
        """Claim and start the thread's next pending run, if the thread is idle (under the thread's lock)."""
        if self.closing or not thread_id:
            return
        async with self.runs.db.transaction() as tx:
            await ThreadStore.lock(tx, thread_id)
            run = await self._claim_first(tx, await RunStore.active_for_thread(tx, thread_id))
        if run is not None:
            self.executor.launch(run, graph_input(run))

    async def _claim_first(self, db: object, active: list[Run]) -> Run | None:
        """The first of ``active`` that is due, claimed for this worker — if none of them is running or waiting,
        and nobody else claimed it first. A delayed run not due yet lets the runs after it go first."""
        if any(r.status != "pending" for r in active):
            return None
        now = time.time()
        run = next((r for r in active if r.due(now)), None)
        if run is None:
            return None
        return run if await RunStore.claim(db, run, self.worker, self.lease()) else None  # type: ignore[arg-type]

    # --- delayed runs ---------------------------------------------------------------------------------------------
    def wake_at(self, thread_id: str, when: float) -> None:
        """Look at ``thread_id`` again at ``when`` (a delayed run's time) and start its next run if it is idle."""
        if self.closing:
            return
        task = asyncio.get_running_loop().create_task(self._wake(thread_id, when), name="runs-delayed")
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    async def _wake(self, thread_id: str, when: float) -> None:
        await asyncio.sleep(max(when - time.time(), 0) + 0.01)  # just after it: the claim compares with the clock
        try:
            await self.continue_thread(thread_id)
        except Exception as exc:  # the reaper starts it instead
            as_chatplane_error(exc, f"thread {thread_id} (a delayed run)")

    async def _wake_delayed(self) -> None:
        """At start: a wake-up for every delayed run stored (made before a restart, or by another process)."""
        try:
            for thread_id, when in await self.runs.delayed():
                self.wake_at(thread_id, when)
        except Exception as exc:  # the reaper starts them instead
            as_chatplane_error(exc, f"worker {self.worker} (delayed runs)")

    # --- background jobs ------------------------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        executing = self.executor.executing() + list(self._recovering)
        if not executing:
            return
        for run_id, roll_back in await self.runs.heartbeat(self.worker, self.lease(), executing):
            # Again if something in between swallowed an earlier cancel; not once it has reached the run.
            self.executor.cancel_here(run_id, unless_stopping=True, roll_back=roll_back)

    async def _notice_dead_workers(self) -> None:
        """End the leases of the runs of workers whose database session is gone and who missed two renewals."""
        if self.liveness is None:
            return
        dead = await self.liveness.dead(await self.runs.running_workers())
        if dead:
            lease = self.settings.run_lease_s
            ended = await self.runs.end_leases(dead, time.time() + lease * 0.6)
            if ended:
                log.warning("worker(s) %s gone (their sessions ended): %d run(s) to recover", ", ".join(dead), ended)

    async def _reap(self) -> None:
        """Recover runs whose worker is gone — all of a round's at once: each waits on the database, and the users
        of a dead worker's runs all wait for theirs — and start pending runs nobody will start."""
        await self._notice_dead_workers()
        await asyncio.gather(*(self._recover(run) for run in await self.runs.expired(time.time())))
        for thread_id in await self.runs.stranded_threads():
            await self.continue_thread(thread_id)

    async def _recover(self, run: Run) -> None:
        """Take ``run`` over for this worker, unless another process got it first, and resume or fail it."""
        # A run handed back at a graceful shutdown (no worker) was not lost: it is not counted.
        lost = run.worker is not None
        try:
            if not await self.runs.take_over(run, self.worker, self.lease(), lost=lost):
                return  # another process got it first
            self._recovering.add(run.run_id)  # its lease renewed meanwhile (a slow database)
            try:
                await self._take_over(run, lost)
            finally:
                self._recovering.discard(run.run_id)
        except Exception as exc:  # one run's failure must not stop the others' recovery; its lease lapses again
            as_chatplane_error(exc, f"run {run.run_id} (recovery)")

    async def _take_over(self, run: Run, lost: bool) -> None:
        """Resume ``run``, which recovery took over here — or fail it (``worker_lost``) if so configured, or if its
        worker was ``lost`` more times than a run may be resumed."""
        given_up = lost and run.recoveries >= self.settings.run_max_recoveries
        if self.settings.run_recovery == "resume" and not given_up:
            log.warning("run %s: its worker is gone; resuming it from the last checkpoint", run.run_id)
            self.executor.launch(run, await self.executor.resume_input(run), fresh=False)
            return
        why = f"lost its worker {run.recoveries + 1} times" if given_up else "failed as configured"
        log.warning("run %s: worker_lost (%s)", run.run_id, why)
        await self.executor.keep_message(run)
        await self.runs.finish(run, "failed", run.usage, WorkerLostError.code)
        error = {"code": WorkerLostError.code, "message": WorkerLostError.default_message}
        await self.executor.after_finish(run, "run_failed", {"status": "failed", "error": error})
        await self.continue_thread(run.thread_id)
