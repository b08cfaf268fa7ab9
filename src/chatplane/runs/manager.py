"""Runs in the background, one at a time per thread, in any number of processes, with a policy for messages that
arrive meanwhile.

The runs table is the queue and the source of truth. A run is accepted as a row (``pending``) inside a transaction
that locks its thread, so the double-texting decision is atomic across processes:

* ``reject`` — 409 ``thread_busy`` while the thread has a pending, running or waiting run; nothing is stored.
* ``enqueue`` — accepted now, run after the ones before it (creation order).
* ``interrupt`` — accepted now; the active run is cancelled (its partial answer kept) and the queue moves on.

A process *claims* a run (``running``, its worker id, a lease) and executes it in a task detached from the request,
renewing the lease every second or so; the same heartbeat picks up cancel requests made through other processes.
When a run ends, its process claims the thread's next pending run. A reaper in every process recovers runs whose
lease ran out (their process died or handed them back on shutdown): it resumes them from their last checkpoint, or
fails them with ``worker_lost`` (``CHATPLANE_RUN_RECOVERY``); it also starts pending runs left without a runner.

Clients follow a run through its event log — in memory for one process, in Redis for several — replaying from any
event id, then live. Cancelling cancels the run's task and with it the model's HTTP stream; what the model had
produced is kept in the thread, marked ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from chatplane.config import Settings
from chatplane.db import HeldWrites, flushed_by_next_commit
from chatplane.errors import (
    RunStateError,
    ThreadBusyError,
    WorkerLostError,
    error_from_code,
)
from chatplane.events import EventType, RunEvent
from chatplane.failures import as_chatplane_error
from chatplane.prefetch import PREFETCHED_KEY, PrefetchedCheckpoint, PrefetchingSaver
from chatplane.runs.eventlog import MemoryEventLog
from chatplane.runs.store import Multitask, Run, RunStatus, RunStore
from chatplane.runs.translate import StreamTranslator
from chatplane.threads import Thread, ThreadStore, check_thread
from chatplane.transcript import TRANSCRIPT_END_KEY, end_of, end_statement

log = logging.getLogger("chatplane.runs")
_NOTHING: Mapping[str, Any] = {}

Hook = Callable[[Run], Awaitable[None]]


class EventLog(Protocol):
    def known(self, run_id: str) -> bool: ...
    def open(self, run_id: str, *, here: bool = False) -> None: ...
    async def append(self, run_id: str, type: EventType, data: dict[str, Any] | None = None) -> RunEvent: ...
    def subscribe(self, run_id: str, after: int = 0, *, through_pauses: bool = False) -> AsyncIterator[RunEvent]: ...


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class RunManager:
    def __init__(
        self,
        *,
        graphs: Mapping[str, Any],
        runs: RunStore,
        threads: ThreadStore,
        settings: Settings,
        events: EventLog | None = None,
        graph_for: Callable[[str, str | None], Any] | None = None,
        nested_agents: frozenset[str] = frozenset(),
        checkpointer: Any = None,
    ) -> None:
        self.graphs = graphs
        if checkpointer is None:  # the graphs': they share one
            checkpointer = next((g.checkpointer for g in graphs.values() if getattr(g, "checkpointer", None)), None)
        self._prefetching = checkpointer if isinstance(checkpointer, PrefetchingSaver) else None
        """The graphs' checkpointer, if it can read a run's first checkpoint in the batch that accepts the run."""
        self._holds_writes = settings.checkpoint_durability == "exit" and getattr(checkpointer, "holds_writes", False)
        """Whether runs hold their transcript appends and checkpoints for their outcome's commit (durability
        ``exit``, and a saver that holds its writes: ``PooledPostgresSaver``, ``BatchingSqliteSaver``); the batch
        that accepts a run then also reads where the thread's transcript ends. Only then: a transcript append held
        while the checkpoint that drops the moved messages is not would lose them, should the outcome fail."""
        self.nested_agents = nested_agents
        """Agents whose graphs run other graphs (their steps are streamed too)."""
        self._graph_for = graph_for
        self.runs = runs
        self.threads = threads
        self.settings = settings
        self.events: EventLog = events or MemoryEventLog()
        self.worker = _worker_id()
        self.start_hooks: list[Hook] = []
        """Called when a run starts executing (metrics …); failures are logged, not raised."""
        self.finish_hooks: list[Hook] = []
        """Called after each run ends (usage accounting, token budgets …); failures are logged, not raised."""
        self.callbacks: list[Any] = []
        """LangChain callback handlers added to every run's config (model/tool timing, tracing …)."""
        self._tasks: dict[str, asyncio.Task[None]] = {}  # runs executing in this process
        self._handing_back: set[str] = set()  # runs cancelled for shutdown: another process resumes them
        self._stopping: set[str] = set()  # runs whose cancel reached them: closing the graph, recording the cancel
        self._recovering: set[str] = set()  # runs recovery took over here and is deciding about (not launched yet)
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._reaper_task: asyncio.Task[None] | None = None
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the heartbeat (leases, cancel requests) and the reaper (recovery)."""
        lease = self.settings.run_lease_s
        self._heartbeat_task = asyncio.create_task(self._every(lease / 5, self._heartbeat), name="runs-heartbeat")
        self._reaper_task = asyncio.create_task(self._every(lease / 2, self._reap), name="runs-reaper")

    async def aclose(self, grace_s: float | None = None) -> None:
        """Stop: let running runs finish for ``grace_s`` (default: none), then hand the rest back to the queue."""
        self._closing = True
        # The reaper stops now; the heartbeat only once the runs are finished or handed back: the grace may outlast
        # a lease, and another process must not take over a run that is still executing here.
        if self._reaper_task is not None:
            self._reaper_task.cancel()
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending and grace_s:
            log.info("waiting up to %.0f s for %d run(s) to finish", grace_s, len(pending))
            await asyncio.wait(pending, timeout=grace_s)
        remaining = {run_id: t for run_id, t in self._tasks.items() if not t.done()}
        if remaining:
            self._handing_back.update(remaining)
            for task in remaining.values():
                task.cancel()
            await asyncio.wait(remaining.values(), timeout=10)
            with contextlib.suppress(Exception):
                await self.runs.release(list(remaining), self.worker)
            log.info("handed %d run(s) back to the queue", len(remaining))
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        background = [t for t in (self._heartbeat_task, self._reaper_task) if t is not None]
        await asyncio.gather(*background, return_exceptions=True)

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception as exc:
                as_chatplane_error(exc, f"worker {self.worker} ({job.__name__})")

    # --- accepting work -------------------------------------------------------------------------------------------
    async def submit(
        self,
        thread: Thread,
        message: str,
        *,
        user_id: str,
        session_id: str | None = None,
        multitask: Multitask,
        stream_tokens: bool = True,
    ) -> Run:
        """Accept a user message for ``thread``: a new run, started now or queued behind the thread's active run.

        ``stream_tokens=False`` for a caller that waits for the whole answer: the model is asked for it in one
        piece, and the run's events carry whole messages only (no ``token`` events; a cancel keeps no partial
        answer). Streaming every token to nobody costs a good part of a turn's CPU."""
        return await self.submit_to(
            thread.thread_id,
            thread.owner,
            message,
            user_id=user_id,
            session_id=session_id,
            multitask=multitask,
            stream_tokens=stream_tokens,
        )

    async def submit_to(
        self,
        thread_id: str,
        owner: str,
        message: str,
        *,
        user_id: str,
        session_id: str | None = None,
        agent: str | None = None,
        multitask: Multitask,
        stream_tokens: bool = True,
    ) -> Run:
        """``submit`` to the owner's thread ``thread_id``, without reading it first: ``ThreadNotFoundError`` if the
        owner has no such thread, ``AgentMismatchError`` if ``agent`` is given and the thread talks to another."""
        run_input: dict[str, Any] = {
            "message": message,
            "user_id": user_id,
            "session_id": session_id,
            "created_at": time.time(),
        }
        if not stream_tokens:
            run_input["stream_tokens"] = False
        return await self._accept(thread_id, owner, run_input, multitask, agent=agent)

    async def retry(self, failed: Run) -> Run:
        """A new run that continues the thread from where ``failed`` stopped (its message is already there)."""
        if failed.status != "failed":
            raise RunStateError("Only a failed run can be retried.")
        run_input = {"retry_of": failed.run_id, "created_at": time.time()}
        return await self._accept(failed.thread_id, failed.owner, run_input, "reject")

    async def _accept(
        self, thread_id: str, owner: str, run_input: dict[str, Any], multitask: Multitask, *, agent: str | None = None
    ) -> Run:
        """The run, accepted in one transaction and one trip to the database (``interrupt`` takes
        ``_accept_interrupting``): the thread's row is locked, so the decision is atomic across processes."""
        if multitask == "interrupt":
            return await self._accept_interrupting(thread_id, owner, run_input, agent)
        run = Run.new(thread_id, owner, agent or "", run_input, multitask)
        statements = [
            ThreadStore.lock_statement(thread_id, self.runs.db.dialect),
            RunStore.accept_statement(
                run,
                agent=agent,
                default_model=self.settings.model,
                claim_for=(self.worker, self._lease()),
                dialect=self.runs.db.dialect,
            ),
        ]
        # Read for the run, should it start now: where the thread's transcript ends (its append is then held,
        # Transcript) and the thread's latest checkpoint (for its first read, chatplane.prefetch).
        if self._holds_writes:
            statements.append(end_statement(thread_id))
        if self._prefetching is not None:
            statements += self._prefetching.latest_statements(thread_id, run.run_id)
        # Every acceptance waits for the disk, even one whose caller hears nothing before the outcome: if a crash
        # of PostgreSQL took the acceptance back, a database back before the run ended would take its turn without
        # the run's row (the outcome updates no row).
        results = await self.runs.db.batch(statements)
        if not RunStore.accepted(run, results[1]):
            rows = results[0][0]
            check_thread(Thread.from_row(rows[0]) if rows else None, owner, agent)
            raise ThreadBusyError()
        claimed = run.status == "running"  # an idle thread: the run starts here, claimed as it was inserted
        self.events.open(run.run_id, here=claimed)
        if claimed:  # nobody else writes the thread's transcript or checkpoints until this run ends: the reads hold
            read: dict[str, Any] = {}
            reads = results[2:]  # in the order appended above
            if self._holds_writes:
                read[TRANSCRIPT_END_KEY] = end_of(reads.pop(0))
            if self._prefetching is not None:
                read[PREFETCHED_KEY] = PrefetchedCheckpoint(thread_id, *reads)
            self._launch(run, _graph_input(run), read=read)
        return run

    async def _accept_interrupting(
        self, thread_id: str, owner: str, run_input: dict[str, Any], agent: str | None
    ) -> Run:
        """Accept a run that cancels the thread's active runs (their partial answers kept) and goes next."""
        async with self.runs.db.transaction() as tx:
            thread = check_thread(await ThreadStore.lock(tx, thread_id), owner, agent)
            active = await RunStore.active_for_thread(tx, thread_id)
            claimed = not active
            run = await self.runs.create(
                thread_id,
                owner,
                thread.agent,
                run_input,
                "interrupt",
                model=thread.model or self.settings.model,
                tx=tx,
                claim_for=(self.worker, self._lease()) if claimed else None,
            )
            self.events.open(run.run_id, here=claimed)
            interrupted = [r for r in active if r.status in ("running", "waiting")]
            for victim in interrupted:
                if victim.status == "waiting":  # nobody executes it: cancel it right here
                    await self.runs.finish(victim, "cancelled", victim.usage, tx=tx)
        for victim in interrupted:
            if victim.status == "cancelled":
                await self._after_finish(victim, "run_cancelled", {"status": "cancelled"})
            else:
                await self._request_cancel(victim)
        if claimed:
            self._launch(run, _graph_input(run))
        elif interrupted and all(v.status == "cancelled" for v in interrupted):
            await self._continue(thread_id)
        return run

    async def cancel(self, run: Run) -> Run:
        """Cancel a pending, running or waiting run, wherever it runs. A finished run is left as it is."""
        current = await self.runs.find(run.run_id) or run
        if current.status in ("pending", "waiting"):
            async with self.runs.db.transaction() as tx:
                changed = await tx.execute(
                    "UPDATE chatplane_runs SET status = 'cancelled', finished_at = %s, worker = NULL "
                    "WHERE run_id = %s AND status = %s",
                    (time.time(), current.run_id, current.status),
                )
            if changed:
                current.status = "cancelled"
                await self._after_finish(current, "run_cancelled", {"status": "cancelled"})
                await self._continue(current.thread_id)
                return current
            current = await self.runs.find(run.run_id) or current  # it moved on meanwhile
        if current.status == "running":
            await self._request_cancel(current)
            async for _ in self.subscribe(run.run_id, 0, through_pauses=True):
                pass
        return await self.runs.find(run.run_id) or current

    async def cancel_thread(self, thread_id: str) -> None:
        """Cancel every run of the thread (before it is reset or deleted)."""
        async with self.runs.db.transaction() as tx:
            active = await RunStore.active_for_thread(tx, thread_id)
        for run in active:
            await self.cancel(run)

    async def resume(self, run: Run, decisions: list[dict[str, Any]]) -> Run:
        """Answer a run that waits for a human (approve / edit / reject each pending tool call), in this process."""
        current = await self.runs.find(run.run_id)
        if current is None or current.status != "waiting":
            raise RunStateError("Only a run that is waiting for approval can be resumed.")
        async with self.runs.db.transaction() as tx:
            claimed = await RunStore.claim(tx, current, self.worker, self._lease())
        if not claimed:
            raise RunStateError("Only a run that is waiting for approval can be resumed.")
        await self.events.append(run.run_id, "run_resumed", {"decisions": decisions})
        self._launch(current, Command(resume={"decisions": decisions}), fresh=False)
        return current

    # --- following work -------------------------------------------------------------------------------------------
    def subscribe(self, run_id: str, after: int = 0, *, through_pauses: bool = False) -> AsyncIterator[RunEvent]:
        """The run's events after ``after``, then live ones, until it ends (or pauses for a human)."""
        if self.events.known(run_id):
            return self.events.subscribe(run_id, after, through_pauses=through_pauses)
        return self._poll_outcome(run_id, after, through_pauses)

    async def _poll_outcome(self, run_id: str, after: int, through_pauses: bool) -> AsyncIterator[RunEvent]:
        """For a run whose events this process cannot see (another process runs it and there is no Redis, or it
        ended before this process started): its outcome, from the runs table."""
        while True:
            run = await self.runs.find(run_id)
            if run is None or run.finished:
                status = run.status if run is not None else "failed"
                kind: EventType = {"succeeded": "run_completed", "cancelled": "run_cancelled"}.get(status, "run_failed")  # type: ignore[assignment]
                data: dict[str, Any] = {"status": status}
                if run is not None and run.error_code:
                    data["error"] = {"code": run.error_code, "message": error_from_code(run.error_code).message}
                yield RunEvent(id=after + 1, type=kind, run_id=run_id, data=data)
                return
            if run.status == "waiting" and not through_pauses:
                yield RunEvent(id=after + 1, type="interrupt", run_id=run_id, data={"requests": []})
                return
            await asyncio.sleep(0.5)

    async def wait(self, run_id: str) -> None:
        """Until the run has finished or waits for a human."""
        await self.outcome(run_id)

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

    def active_runs(self) -> int:
        return sum(1 for task in self._tasks.values() if not task.done())

    # --- doing work -----------------------------------------------------------------------------------------------
    def _lease(self) -> float:
        return time.time() + self.settings.run_lease_s

    def _launch(self, run: Run, graph_input: Any, *, fresh: bool = True, read: Mapping[str, Any] = _NOTHING) -> None:
        """Execute ``run`` here; ``fresh`` for a run that starts now (not resumed after approval or recovery);
        ``read``, what was read for it as it was accepted: entries for its config's ``configurable``
        (``TRANSCRIPT_END_KEY``, ``PREFETCHED_KEY``)."""
        task = asyncio.create_task(self._execute(run, graph_input, fresh, read), name=f"run-{run.run_id}")
        self._tasks[run.run_id] = task
        task.add_done_callback(lambda done: self._forget_task(run.run_id, done))

    def _forget_task(self, run_id: str, task: asyncio.Task[None]) -> None:
        """Forget ``task`` — unless the run was launched again meanwhile (resumed after approval while its earlier
        task was still wrapping up): the newer task stays known, so the heartbeat keeps renewing its lease."""
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]
            self._stopping.discard(run_id)

    async def _request_cancel(self, run: Run) -> None:
        task = self._tasks.get(run.run_id)
        if task is not None and not task.done():
            task.cancel()
        else:  # running in another process: its heartbeat sees the flag
            await self.runs.request_cancel(run.run_id)

    async def _continue(self, thread_id: str) -> None:
        """Claim and start the thread's next pending run, if the thread is idle (under the thread's lock)."""
        if self._closing or not thread_id:
            return
        async with self.runs.db.transaction() as tx:
            await ThreadStore.lock(tx, thread_id)
            run = await self._claim_next(tx, thread_id)
        if run is not None:
            self._launch(run, _graph_input(run))

    async def _touch_and_continue(self, thread_id: str, *, then_continue: bool) -> None:
        """After a run whose outcome ``finish_run`` could not record: mark the thread active now, then
        (``then_continue``) start its next pending run — see ``finish_run`` for why the read comes after the touch."""
        await self.threads.touch(thread_id)
        if then_continue and thread_id:
            await self._start_next(await RunStore.active_for_thread(self.runs.db, thread_id))

    async def _claim_next(self, db: Any, thread_id: str) -> Run | None:
        """The thread's next run, claimed for this worker — if it is pending and first in line, and nobody else
        claimed it first."""
        return await self._claim_first(db, await RunStore.active_for_thread(db, thread_id))

    async def _claim_first(self, db: Any, active: list[Run]) -> Run | None:
        if not active or active[0].status != "pending":
            return None
        run = active[0]
        return run if await RunStore.claim(db, run, self.worker, self._lease()) else None

    async def _start_next(self, active: list[Run]) -> None:
        """Claim and start the first of a thread's ``active`` runs, if it is pending (``finish_run`` read them)."""
        if self._closing:
            return
        run = await self._claim_first(self.runs.db, active)
        if run is not None:
            self._launch(run, _graph_input(run))

    async def _heartbeat(self) -> None:
        executing = [run_id for run_id, task in self._tasks.items() if not task.done()] + list(self._recovering)
        if not executing:
            return
        for run_id in await self.runs.heartbeat(self.worker, self._lease(), executing):
            task = self._tasks.get(run_id)
            # Not again once the cancel has reached the run (a second one would cut short its closing of the
            # graph or its recording of the cancel); again if something in between swallowed it.
            if task is not None and not task.done() and run_id not in self._stopping:
                task.cancel()

    async def _reap(self) -> None:
        """Recover runs whose worker is gone, and start pending runs nobody will start."""
        for run in await self.runs.expired(time.time()):
            async with self.runs.db.transaction() as tx:
                # A run handed back at a graceful shutdown (no worker) was not lost: it is not counted.
                # Only as read: recoveries and holder unchanged since (else the next round decides on fresh ones).
                lost = run.worker is not None
                changed = await tx.execute(
                    "UPDATE chatplane_runs SET worker = %s, lease_until = %s, cancel_requested = 0, "
                    "recoveries = recoveries + %s WHERE run_id = %s AND status = 'running' AND lease_until < %s "
                    "AND recoveries = %s AND coalesce(worker, '') = %s",
                    (self.worker, self._lease(), int(lost), run.run_id, time.time(), run.recoveries, run.worker or ""),
                )
            if not changed:
                continue  # another process got it first
            self._recovering.add(run.run_id)  # its lease renewed meanwhile (a slow database)
            try:
                await self._take_over(run, lost)
            finally:
                self._recovering.discard(run.run_id)
        for thread_id in await self.runs.stranded_threads():
            await self._continue(thread_id)

    async def _take_over(self, run: Run, lost: bool) -> None:
        """Resume ``run``, which recovery took over here — or fail it (``worker_lost``) if so configured, or if its
        worker was ``lost`` more times than a run may be resumed."""
        given_up = lost and run.recoveries >= self.settings.run_max_recoveries
        if self.settings.run_recovery == "resume" and not given_up:
            log.warning("run %s: its worker is gone; resuming it from the last checkpoint", run.run_id)
            self._launch(run, await self._resume_input(run), fresh=False)
            return
        why = f"lost its worker {run.recoveries + 1} times" if given_up else "failed as configured"
        log.warning("run %s: worker_lost (%s)", run.run_id, why)
        await self._keep_message(run)
        await self.runs.finish(run, "failed", run.usage, WorkerLostError.code)
        error = {"code": WorkerLostError.code, "message": WorkerLostError.default_message}
        await self._after_finish(run, "run_failed", {"status": "failed", "error": error})
        await self._continue(run.thread_id)

    async def _keep_message(self, run: Run) -> None:
        """Make sure the run's user message is in the thread (a retry continues from there)."""
        graph_input = await self._resume_input(run)
        if graph_input is not None:
            await self._graph(run).aupdate_state(self._config(run), graph_input, as_node="__start__")

    async def _resume_input(self, run: Run) -> Any:
        """Continue from the checkpoint (None) if the run's message made it into the thread, else start over."""
        if "message" not in run.input:
            return None
        state = await self._graph(run).aget_state(self._config(run))
        messages = state.values.get("messages", []) if state.values else []
        return None if any(m.id == _message_id(run) for m in messages) else _graph_input(run)

    def _graph(self, run: Run) -> Any:
        """The graph of the run's agent and model (a thread may use a model from the allowlist)."""
        if self._graph_for is not None:
            return self._graph_for(run.agent, run.model)
        return self.graphs[run.agent]

    def _config(self, run: Run) -> RunnableConfig:
        return {
            "configurable": {"thread_id": run.thread_id},
            "recursion_limit": self.settings.recursion_limit,
            "metadata": {"run_id": run.run_id, "thread_id": run.thread_id, "agent": run.agent, "owner": run.owner},
            "callbacks": list(self.callbacks),
        }

    async def _execute(self, run: Run, graph_input: Any, fresh: bool, read: Mapping[str, Any] = _NOTHING) -> None:
        graph = self._graph(run)
        config = self._config(run)
        config["configurable"].update(read)
        translator = StreamTranslator()
        translator.usage.update({k: v for k, v in run.usage.items() if k in translator.usage})
        next_up: list[Run] | None = None  # the thread's active runs, read as the outcome was recorded
        held = HeldWrites()  # the run's last checkpoint: it commits with the outcome (durability "exit" only)
        holding = held.holding() if self.settings.checkpoint_durability == "exit" else contextlib.nullcontext()
        try:
            if fresh:
                await self._call_hooks(self.start_hooks, run)
                started: dict[str, Any] = {"thread_id": run.thread_id, "agent": run.agent}
                if "message" in run.input:  # the thread shows it only once the run ends (one checkpoint per run)
                    started["message"] = {"id": _message_id(run), "role": "user", "content": run.input["message"]}
                await self.events.append(run.run_id, "run_started", started)
            events = translator.run(
                graph,
                graph_input,
                config,
                tokens=run.input.get("stream_tokens", True),
                nested=run.agent in self.nested_agents,
                durability=self.settings.checkpoint_durability,
            )
            # The graph is closed here, whatever ends the loop: a cancel that lands while an event is being appended
            # (Redis) still lets LangGraph write where the run stopped — held, for the outcome below — before the
            # cancel is recorded, rather than when the abandoned generator is collected, in some other context.
            with flushed_by_next_commit(), holding:  # the outcome's commit, below, flushes the run's writes to disk
                async with contextlib.aclosing(events):
                    try:
                        async for kind, data in events:
                            await self.events.append(run.run_id, kind, data)
                    except asyncio.CancelledError:
                        self._stopping.add(run.run_id)  # before the graph is closed
                        raise
            if translator.interrupts:
                await held.write(self.runs.db.batch)
                await self.runs.mark_waiting(run, translator.usage)
                requests = [{"id": i.id, "value": i.value} for i in translator.interrupts]
                await self.events.append(run.run_id, "interrupt", {"requests": requests})
                return
            next_up = await self.finish_run(run, "succeeded", translator.usage, held=held)
            await self.events.append(run.run_id, "run_completed", {"status": "succeeded", "usage": translator.usage})
        except asyncio.CancelledError:
            if run.run_id in self._handing_back:
                raise  # shutting down: the run goes back to the queue as it is
            next_up = await asyncio.shield(self._record_cancel(run, graph, config, translator, held))
        except Exception as exc:
            error = as_chatplane_error(exc, f"run {run.run_id}")
            next_up = await asyncio.shield(self._record_failure(run, translator, error.code, error.message, held))
        finally:
            if run.run_id not in self._handing_back:
                try:
                    if next_up is not None:
                        await self._start_next(next_up)
                    else:
                        await self._touch_and_continue(run.thread_id, then_continue=run.status != "waiting")
                except Exception as exc:
                    as_chatplane_error(exc, f"run {run.run_id} (after it ended)")

    async def finish_run(
        self,
        run: Run,
        status: RunStatus,
        usage: dict[str, int],
        error_code: str | None = None,
        *,
        held: HeldWrites | None = None,
    ) -> list[Run]:
        """Record the outcome, then tell the hooks — before the terminal event, so that whoever waited for the
        run sees its effects (token budgets, usage) in place. Returns the thread's runs still active, oldest first
        (``_start_next`` starts the next one).

        One trip to the database: the thread is marked active now, the outcome recorded, the active runs read — in
        that order, in one transaction. The touch writes the thread's row, so it waits for any transaction holding
        that row's lock (``_accept`` / ``_continue`` deciding about the thread's runs, in any process; SQLite: the
        database's write lock), and the read after it sees what they decided; one that comes later waits for this
        one and sees the run finished. Claiming is a compare-and-set on the run's status, so two processes racing
        for the same pending run cannot both win.

        ``held``: the run's checkpoint writes (``HeldWrites``), first in the same transaction — the thread's state
        and the run's outcome change together or not at all; kept for another outcome if this one fails."""
        if not run.thread_id:  # a stateless run
            await self.runs.finish(run, status, usage, error_code)
            await self._call_hooks(self.finish_hooks, run)
            return []
        with (held or HeldWrites()).taken() as written:
            results = await self.runs.db.batch(
                [
                    *written,
                    ThreadStore.touch_statement(run.thread_id),
                    RunStore.finish_statement(run, status, usage, error_code),
                    RunStore.active_statement(run.thread_id),
                ]
            )
        await self._call_hooks(self.finish_hooks, run)
        return RunStore.active_runs(results[-1][0])

    async def _after_finish(self, run: Run, kind: EventType, data: dict[str, Any]) -> None:
        await self._call_hooks(self.finish_hooks, run)
        await self.events.append(run.run_id, kind, data)

    @staticmethod
    async def _call_hooks(hooks: list[Hook], run: Run) -> None:
        for hook in hooks:
            try:
                await hook(run)
            except Exception as exc:
                as_chatplane_error(exc, f"run {run.run_id} (hook)")

    async def _record_failure(
        self, run: Run, translator: StreamTranslator, code: str, message: str, held: HeldWrites | None = None
    ) -> list[Run] | None:
        next_up = None
        with contextlib.suppress(Exception):
            next_up = await self.finish_run(run, "failed", translator.usage, code, held=held)
        await self.events.append(
            run.run_id, "run_failed", {"status": "failed", "error": {"code": code, "message": message}}
        )
        return next_up

    async def _record_cancel(
        self, run: Run, graph: Any, config: RunnableConfig, translator: StreamTranslator, held: HeldWrites
    ) -> list[Run] | None:
        with contextlib.suppress(Exception):
            await held.write(self.runs.db.batch)  # where the run stopped, before the partial answer joins it
        partial = translator.partial
        if partial is not None and partial.text:
            kept = AIMessage(
                content=partial.text,
                id=partial.message_id,
                name=partial.agent,
                response_metadata={"status": "cancelled", "created_at": time.time()},
            )
            as_node = partial.namespace[0].split(":")[0] if partial.namespace else partial.node
            try:
                await graph.aupdate_state(config, {"messages": [kept]}, as_node=as_node)
            except Exception as exc:
                as_chatplane_error(exc, f"run {run.run_id} (keeping the partial answer)")
        next_up = None
        with contextlib.suppress(Exception):
            next_up = await self.finish_run(run, "cancelled", translator.usage)
        await self.events.append(run.run_id, "run_cancelled", {"status": "cancelled"})
        return next_up


def _message_id(run: Run) -> str:
    return f"msg-{run.run_id}"


def _graph_input(run: Run) -> dict[str, Any] | None:
    """What a run feeds the graph: its user message (with a stable id, to tell later whether it was stored) —
    or nothing for a retry, which continues the thread from its last checkpoint."""
    data = run.input
    if "message" not in data:
        return None
    message = HumanMessage(
        data["message"], id=_message_id(run), response_metadata={"created_at": data.get("created_at")}
    )
    graph_input: dict[str, Any] = {"messages": [message]}
    if data.get("user_id"):
        graph_input["user_id"] = data["user_id"]
    if data.get("session_id"):
        graph_input["session_id"] = data["session_id"]
    return graph_input
