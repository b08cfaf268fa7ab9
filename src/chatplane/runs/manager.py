"""Runs in the background, one at a time per thread, in any number of processes, with a policy for messages that
arrive meanwhile.

The runs table is the queue and the source of truth. A run is accepted as a row (``pending``) inside a transaction
that locks its thread, so the double-texting decision is atomic across processes:

* ``reject`` — 409 ``thread_busy`` while the thread has a pending, running or waiting run; nothing is stored.
* ``enqueue`` — accepted now, run after the ones before it (creation order).
* ``interrupt`` — accepted now; the active run is cancelled (its partial answer kept) and the queue moves on.

``RunManager`` is the one place to start, cancel, resume and follow runs. It schedules; the rest is done by:

==================  ===========================================================================================
``storage.turns``   what is read and written as a run is accepted and as it ends (``TurnStore``)
``execution``       executing runs in this process (``Executor``), inside their unit of work
``leases``          claims, leases, the next run of a thread, recovery of lost runs (``Leases``)
``events``          following a run's events, wherever it runs (``RunFollower``)
==================  ===========================================================================================
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.types import Command

from chatplane.agents.registry import RunTarget
from chatplane.config import Settings
from chatplane.errors import IdempotencyConflictError, RunStateError, ThreadBusyError
from chatplane.events import RunEvent
from chatplane.messages import message_to_wire
from chatplane.runs.eventlog import MemoryEventLog
from chatplane.runs.events import EventLog, RunFollower
from chatplane.runs.execution import Executor, RunHooks, graph_input
from chatplane.runs.jsonable import to_jsonable
from chatplane.runs.leases import Leases
from chatplane.storage.engine import Storage
from chatplane.storage.idempotency import IdempotencyKey, KeyClaimedError, claimed
from chatplane.storage.runs import Multitask, Run, RunStatus
from chatplane.storage.threads import Thread, check_thread


class RunManager:
    def __init__(
        self,
        *,
        storage: Storage,
        settings: Settings,
        graph_for: Callable[[Run], Awaitable[RunTarget]],
        events: EventLog | None = None,
    ) -> None:
        """``graph_for``: what a run executes (its assistant's graph, on its model)."""
        self.settings = settings
        self.runs = storage.runs
        self.threads = storage.threads
        self.turns = storage.turns
        self.events: EventLog = events or MemoryEventLog()
        self.hooks = RunHooks()
        """What observes runs: started / finished hooks and LangChain callbacks (``RunHooks``)."""
        self.executor = Executor(
            turns=self.turns,
            events=self.events,
            settings=settings,
            hooks=self.hooks,
            graph_for=graph_for,
            after_run=self._after_run,
        )
        self.leases = Leases(
            runs=self.runs,
            threads=self.threads,
            settings=settings,
            executor=self.executor,
            postgres_url=settings.storage_url if storage.kind == "postgres" else None,
        )
        self.follower = RunFollower(self.events, self.runs)

    @property
    def worker(self) -> str:
        return self.leases.worker

    # --- lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.leases.start()

    async def aclose(self, grace_s: float | None = None) -> None:
        """Stop: let running runs finish for ``grace_s`` (default: none), then hand the rest back to the queue."""
        await self.leases.aclose(grace_s)

    async def _after_run(self, run: Run, next_up: list[Run] | None) -> None:
        await self.leases.after_run(run, next_up)

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
        message: str | None,
        *,
        user_id: str,
        session_id: str | None = None,
        agent: str | None = None,
        multitask: Multitask,
        stream_tokens: bool = True,
        extra: dict[str, Any] | None = None,
        idempotency: IdempotencyKey | None = None,
        delay_s: float = 0,
    ) -> Run:
        """``submit`` to the owner's thread ``thread_id``, without reading it first: ``ThreadNotFoundError`` if the
        owner has no such thread, ``AgentMismatchError`` if ``agent`` is given and the thread talks to another.
        ``extra``: the rest of a checked ``RunInput`` (input, command, context, config, stream modes).
        ``idempotency``: a request sent again with the same key gets the run the first one created.
        ``delay_s``: the run is accepted now but starts no earlier than that many seconds later (``pending``
        meanwhile; stored, so a restart keeps it)."""
        run_input: dict[str, Any] = {"user_id": user_id, "session_id": session_id, "created_at": time.time()}
        if message is not None:
            run_input["message"] = message
        if extra:
            run_input.update(extra)
        if not stream_tokens:
            run_input["stream_tokens"] = False
        not_before = run_input["created_at"] + delay_s if delay_s > 0 else None
        return await self._accept(
            thread_id, owner, run_input, multitask, agent=agent, idempotency=idempotency, not_before=not_before
        )

    async def retry(self, failed: Run) -> Run:
        """A new run that continues the thread from where ``failed`` stopped (its message is already there)."""
        if failed.status != "failed":
            raise RunStateError("Only a failed run can be retried.")
        run_input = {"retry_of": failed.run_id, "created_at": time.time()}
        return await self._accept(failed.thread_id, failed.owner, run_input, "reject")

    async def _accept(
        self,
        thread_id: str,
        owner: str,
        run_input: dict[str, Any],
        multitask: Multitask,
        *,
        agent: str | None = None,
        idempotency: IdempotencyKey | None = None,
        not_before: float | None = None,
    ) -> Run:
        if multitask in ("interrupt", "rollback"):
            try:
                run = await self._accept_interrupting(
                    thread_id, owner, run_input, multitask, agent, idempotency, not_before
                )
            except KeyClaimedError:
                replayed = await self._replayed(owner, idempotency) if idempotency is not None else None
                if replayed is None:
                    raise ThreadBusyError() from None  # the claiming run is gone already: try again
                return replayed
            return self._wake_for(run)
        run = Run.new(thread_id, owner, agent or "", run_input, multitask, not_before=not_before)
        accepted = await self.turns.accept(
            run,
            agent=agent,
            default_model=self.settings.model,
            claim_for=self.leases.claim_for(),
            idempotency=idempotency,
        )
        if not accepted.accepted:
            if idempotency is not None and (replayed := await self._replayed(owner, idempotency)) is not None:
                return replayed
            check_thread(accepted.thread, owner, agent)
            raise ThreadBusyError()
        self.events.open(run.run_id, here=accepted.turn is not None)
        if accepted.turn is not None:  # an idle thread: the run starts here, claimed as it was inserted
            self.executor.launch(run, graph_input(run), turn=accepted.turn)
        return self._wake_for(run)

    def _wake_for(self, run: Run) -> Run:
        """A delayed run: this process looks at its thread again when it is due (any process's reaper would too)."""
        if run.not_before is not None and run.status == "pending":
            self.leases.wake_at(run.thread_id, run.not_before)
        return run

    async def _replayed(self, owner: str, idempotency: IdempotencyKey) -> Run | None:
        """The run an earlier request with this key created (None if none stands); ``IdempotencyConflictError``
        if that request was another one."""
        claim = await claimed(self.runs.db, owner, idempotency)
        if claim is None:
            return None
        if claim.request_hash != idempotency.request_hash:
            raise IdempotencyConflictError()
        return await self.runs.find(claim.run_id, owner)

    async def _accept_interrupting(
        self,
        thread_id: str,
        owner: str,
        run_input: dict[str, Any],
        multitask: Multitask,
        agent: str | None,
        idempotency: IdempotencyKey | None = None,
        not_before: float | None = None,
    ) -> Run:
        """Accept a run that cancels the thread's active runs (``interrupt``: their partial answers kept;
        ``rollback``: undone, nothing of them left) and goes next (``not_before``: once due)."""
        roll_back = multitask == "rollback"
        accepted = await self.turns.accept_interrupting(
            thread_id,
            owner,
            run_input,
            multitask=multitask,
            agent=agent,
            default_model=self.settings.model,
            claim_for=self.leases.claim_for(),
            idempotency=idempotency,
            not_before=not_before,
        )
        run, interrupted = accepted.run, accepted.interrupted
        self.events.open(run.run_id, here=accepted.turn is not None)
        for victim in interrupted:
            if victim.status == "cancelled":  # it was waiting for a human: cancelled with the acceptance
                await self._cancelled_inactive(victim, roll_back)
            else:
                await self._request_cancel(victim, roll_back)
        if accepted.turn is not None:
            self.executor.launch(run, graph_input(run), turn=accepted.turn)
        elif interrupted and all(v.status == "cancelled" for v in interrupted):
            await self.leases.continue_thread(thread_id)
        return run

    # --- stopping and resuming ------------------------------------------------------------------------------------
    async def cancel(self, run: Run, *, roll_back: bool = False) -> Run:
        """Cancel a pending, running or waiting run, wherever it runs. A finished run is left as it is.
        ``roll_back``: undo it too — every checkpoint it wrote deleted, then its record (LangGraph's ``rollback``)."""
        current = await self.runs.find(run.run_id) or run
        if current.status in ("pending", "waiting"):
            if await self.runs.cancel_inactive(current):
                await self._cancelled_inactive(current, roll_back)
                await self.leases.continue_thread(current.thread_id)
                return current
            current = await self.runs.find(run.run_id) or current  # it moved on meanwhile
        if current.status == "running":
            await self._request_cancel(current, roll_back)
            ended = None
            async for event in self.subscribe(run.run_id, 0, through_pauses=True):
                ended = event
            if ended is not None and ended.type == "run_cancelled" and ended.data.get("rolled_back"):
                # The executor deletes the record just after telling its end: gone before this returns.
                await self.runs.delete_finished(run.run_id, run.owner)
        return await self.runs.find(run.run_id) or current

    async def cancel_thread(self, thread_id: str) -> None:
        """Cancel every run of the thread (before it is reset or deleted)."""
        for run in await self.runs.active(thread_id):
            await self.cancel(run)

    async def _request_cancel(self, run: Run, roll_back: bool = False) -> None:
        if not self.executor.cancel_here(run.run_id, roll_back=roll_back):
            await self.runs.request_cancel(run.run_id, roll_back=roll_back)  # in another process: its heartbeat

    async def _cancelled_inactive(self, run: Run, roll_back: bool) -> None:
        """Tell whom it concerns that ``run``, which nobody executed, was cancelled; ``roll_back``: first delete what
        it wrote (a run paused for a human wrote its checkpoint), and its record after."""
        if roll_back:
            await self.turns.finish(run, "cancelled", run.usage, roll_back=True)
        await self.executor.after_finish(
            run, "run_cancelled", {"status": "cancelled", **({"rolled_back": True} if roll_back else {})}
        )
        if roll_back:
            await self.runs.delete_finished(run.run_id, run.owner)

    async def resume(self, run: Run, value: Any) -> Run:
        """Answer a run that waits for a human (``interrupt``): it goes on, in this process, with ``value`` as what
        the interrupt returns. The run comes back with ``resumed_after``: a stream of what it does from now on
        starts there (at its ``run_resumed`` event)."""
        current = await self.runs.find(run.run_id)
        if (
            current is None
            or current.status != "waiting"
            or not await self.runs.claim_now(current, *self.leases.claim_for())
        ):
            raise RunStateError("Only a run that is waiting for approval can be resumed.")
        event = value if isinstance(value, dict) and "decisions" in value else {"resume": to_jsonable(value)}
        resumed = await self.events.append(run.run_id, "run_resumed", event)
        current.resumed_after = resumed.id - 1
        self.executor.launch(current, Command(resume=value), fresh=False)
        return current

    # --- following work -------------------------------------------------------------------------------------------
    def subscribe(self, run_id: str, after: int = 0, *, through_pauses: bool = False) -> AsyncIterator[RunEvent]:
        """The run's events after ``after``, then live ones, until it ends (or pauses for a human)."""
        return self.follower.subscribe(run_id, after, through_pauses=through_pauses)

    async def wait(self, run_id: str) -> None:
        """Until the run has finished or waits for a human."""
        await self.follower.outcome(run_id)

    async def outcome(self, run_id: str) -> tuple[RunEvent | None, dict[str, Any] | None]:
        """Wait until the run finishes or pauses: its last event, and its answer (``RunFollower.outcome``). A run
        that succeeded without its answer among the events followed — recovered after its worker died with the
        answer already checkpointed, so the attempt that finished it had nothing left to say — answers from its
        thread's state."""
        last, answer = await self.follower.outcome(run_id)
        if answer is None and last is not None and last.type == "run_completed":
            answer = await self._answer_in_state(run_id)
        return last, answer

    async def _answer_in_state(self, run_id: str) -> dict[str, Any] | None:
        """The run's answer from the thread's latest checkpoint, if that is the run's own (a chatplane messages graph
        keeps only the current run's messages there): its last assistant message without tool calls."""
        run = await self.runs.find(run_id)
        if run is None or not run.thread_id:
            return None
        target = await self.executor.graph_for(run)
        if not target.served.has_messages:
            return None
        snapshot = await target.graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        if (snapshot.metadata or {}).get("run_id") != run_id:
            return None
        for message in reversed((snapshot.values or {}).get("messages") or []):
            if isinstance(message, AIMessage) and not message.tool_calls and message.text:
                return message_to_wire(message).model_dump()
        return None

    def active_runs(self) -> int:
        return len(self.executor.executing())

    async def finish_run(
        self, run: Run, status: RunStatus, usage: dict[str, int], error_code: str | None = None
    ) -> list[Run]:
        """Record the outcome of a run executed elsewhere than ``Executor`` (a stateless run), then tell the hooks."""
        return await self.executor.finish(run, status, usage, error_code)
