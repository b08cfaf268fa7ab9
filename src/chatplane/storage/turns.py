"""``TurnStore``: accepting a run and recording its outcome, each in one transaction — a run's unit of work.

The runs layer decides *when* (scheduling, leases, recovery); this module decides *what is read and written* as a
run is accepted and as it ends, and in which transaction (``chatplane.storage.unit_of_work`` for why):

* ``accept`` — one trip: the thread's row locked, the run inserted (started now, queued, or refused, decided in
  SQL), and for a run that starts now where the thread's transcript ends and its latest checkpoint. The answer is
  an ``Acceptance``; a run that starts now comes with its ``Turn``.
* ``accept_interrupting`` — the ``interrupt`` policy: the thread's active runs read under its lock, the new run
  inserted, waiting runs cancelled, in one transaction.
* ``finish`` — one trip: what the run's turn holds, the thread marked active, the outcome, and the thread's runs
  still active (read after the touch, so after any decision about the thread made meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.checkpoint.memory import InMemorySaver

from chatplane.storage.database import Database, Statement
from chatplane.storage.idempotency import IdempotencyKey, KeyClaimedError, claim_statements, release_statement
from chatplane.storage.named_batch import NamedBatch
from chatplane.storage.prefetch import PrefetchedCheckpoint, PrefetchingSaver
from chatplane.storage.rollback import delete_in_memory, delete_statements
from chatplane.storage.runs import Multitask, Run, RunStatus, RunStore
from chatplane.storage.threads import Thread, ThreadStore, check_thread
from chatplane.storage.transcript_end import end_of, end_statement
from chatplane.storage.unit_of_work import HeldWrites, OpenTurns, Turn

Durability = Literal["sync", "async", "exit"]


@dataclass
class Acceptance:
    """What ``accept`` decided. ``run`` carries the status, agent, model and creation time it got."""

    run: Run
    accepted: bool
    thread: Thread | None = None
    """The thread as locked (whoever owns it; None if there is none) — read when the run was refused."""
    turn: Turn | None = None
    """The run's unit of work, when it starts now (claimed for this worker as it was inserted)."""


@dataclass
class InterruptingAcceptance:
    run: Run
    turn: Turn | None
    """The new run's unit of work, if it starts now (the thread had no active run)."""
    interrupted: list[Run] = field(default_factory=list)
    """The runs it interrupts: waiting ones cancelled here (status ``cancelled``), running ones to be cancelled."""


class TurnStore:
    """Accepts runs and records their outcomes for ``db``; ``durability`` and the saver set the commit policy."""

    def __init__(
        self,
        db: Database,
        runs: RunStore,
        *,
        turns: OpenTurns,
        durability: Durability,
        saver_takes_part: bool,
        prefetching: PrefetchingSaver | None,
        memory_saver: InMemorySaver | None = None,
    ) -> None:
        """``saver_takes_part``: the checkpointer holds a turn's writes when asked (chatplane's savers);
        ``prefetching``: the checkpointer whose first read a run's acceptance can do (chatplane's savers);
        ``memory_saver``: the checkpointer, when it keeps checkpoints in memory rather than in ``db``."""
        self.db = db
        self.runs = runs
        self.open_turns = turns
        self.durability: Durability = durability
        self.holds_writes = durability == "exit" and saver_takes_part
        """Whether a run's checkpoints and transcript append commit with its outcome. Only when the saver holds its
        writes: a transcript append held while the checkpoint that drops the moved messages is not would lose them,
        should the outcome fail."""
        self._prefetching = prefetching
        self._memory_saver = memory_saver

    # --- accepting ----------------------------------------------------------------------------------------------
    async def accept(
        self,
        run: Run,
        *,
        agent: str | None,
        default_model: str | None,
        claim_for: tuple[str, float],
        idempotency: IdempotencyKey | None = None,
    ) -> Acceptance:
        """Accept ``run`` (not ``interrupt``) in one transaction and one trip; see ``RunStore.accept_statement``.
        ``idempotency``: the key is claimed for the run in the same transaction (``chatplane.storage.idempotency``);
        a run whose key was claimed before is not inserted."""
        dialect = self.db.dialect
        batch = NamedBatch()
        batch.add("lock", ThreadStore.lock_statement(run.thread_id, dialect))
        if idempotency is not None:
            batch.add("claim", *claim_statements(run.owner, idempotency, run.run_id))
        insert = RunStore.accept_statement(
            run, agent=agent, default_model=default_model, claim_for=claim_for, dialect=dialect, idempotency=idempotency
        )
        batch.add("insert", insert)
        if idempotency is not None:
            batch.add("release", release_statement(run.owner, idempotency, run.run_id))
        if self.holds_writes:
            batch.add("transcript_end", end_statement(run.thread_id))
        if self._prefetching is not None:
            batch.add("checkpoint", *self._prefetching.latest_statements(run.thread_id, run.run_id))
        # Every acceptance waits for the disk, even one whose caller hears nothing before the outcome: if a crash
        # of PostgreSQL took the acceptance back, a database back before the run ended would take its turn without
        # the run's row (the outcome updates no row).
        results = await batch.run(self.db)
        if not RunStore.accepted(run, results["insert"][0]):
            rows = results["lock"][0][0]
            return Acceptance(run, accepted=False, thread=Thread.from_row(rows[0]) if rows else None)
        if run.status != "running":  # queued behind the thread's active run
            return Acceptance(run, accepted=True)
        # Nobody else writes the thread's transcript or checkpoints until this run ends: the reads hold.
        transcript_end = end_of(results["transcript_end"][0]) if self.holds_writes else None
        prefetched = PrefetchedCheckpoint(run.thread_id, *results["checkpoint"]) if self._prefetching else None
        turn = Turn(run.run_id, run.thread_id, held=self._held(), transcript_end=transcript_end, prefetched=prefetched)
        return Acceptance(run, accepted=True, turn=turn)

    async def accept_interrupting(
        self,
        thread_id: str,
        owner: str,
        run_input: dict[str, Any],
        *,
        multitask: Multitask = "interrupt",
        agent: str | None,
        default_model: str | None,
        claim_for: tuple[str, float],
        idempotency: IdempotencyKey | None = None,
        not_before: float | None = None,
    ) -> InterruptingAcceptance:
        """Accept a run that cancels the thread's active runs (their partial answers kept) and goes next.
        ``KeyClaimedError`` (nothing stored) if ``idempotency``'s key was claimed before. ``not_before``: a
        delayed run (it waits, ``pending``, until then; a delayed run not due yet is not interrupted)."""
        async with self.db.transaction() as tx:
            thread = check_thread(await ThreadStore.lock(tx, thread_id), owner, agent)
            now = time.time()
            active = [r for r in await RunStore.active_for_thread(tx, thread_id) if r.due(now)]
            claimed = not active and not_before is None
            run = await self.runs.create(
                thread_id,
                owner,
                thread.agent,
                run_input,
                multitask,
                model=thread.model or default_model,
                tx=tx,
                claim_for=claim_for if claimed else None,
                not_before=not_before,
            )
            if idempotency is not None:
                expire, claim = claim_statements(owner, idempotency, run.run_id)
                await tx.execute(*expire)
                if not await tx.execute(*claim):
                    raise KeyClaimedError()  # the transaction, and the run's insert, roll back
            interrupted = [r for r in active if r.status in ("running", "waiting")]
            for victim in interrupted:
                if victim.status == "waiting":  # nobody executes it: cancel it right here
                    await self.runs.finish(victim, "cancelled", victim.usage, tx=tx)
        return InterruptingAcceptance(run, self.resumed(run) if claimed else None, interrupted)

    def resumed(self, run: Run) -> Turn:
        """The unit of work of a run that starts with nothing read ahead (resumed, recovered, or claimed later)."""
        return Turn(run.run_id, run.thread_id, held=self._held())

    def _held(self) -> HeldWrites | None:
        return HeldWrites() if self.holds_writes else None

    @contextmanager
    def running(self, turn: Turn) -> Iterator[Turn]:
        """The block in which the run's graph executes: the savers and the transcript take part in ``turn``."""
        with self.open_turns.open(turn):
            yield turn

    async def write_held(self, turn: Turn) -> None:
        """Write what ``turn`` holds now (a pause for a human; a cancel, before the partial answer joins it)."""
        await turn.write_held(self.db.batch)

    # --- finishing ----------------------------------------------------------------------------------------------
    async def finish(
        self,
        run: Run,
        status: RunStatus,
        usage: dict[str, int],
        error_code: str | None = None,
        *,
        turn: Turn | None = None,
        roll_back: bool = False,
    ) -> list[Run]:
        """Record the outcome; the thread's runs still active, oldest first.

        One trip: the thread is marked active now, the outcome recorded, the active runs read — in that order, in
        one transaction. The touch writes the thread's row, so it waits for any transaction holding that row's lock
        (an acceptance, or a decision about the thread's next run, in any process; SQLite: the write lock), and the
        read after it sees what they decided; one that comes later waits for this one and sees the run finished.

        ``turn``: what it holds goes first in the same transaction — the thread's state and the run's outcome
        change together or not at all; kept for another outcome if this one fails. ``roll_back``: instead, every
        checkpoint the run wrote is deleted in that transaction (``chatplane.storage.rollback``), and what it holds
        is dropped: the thread is as it was before the run."""
        if not run.thread_id:  # a stateless run
            await self.runs.finish(run, status, usage, error_code)
            return []
        held = turn.held if turn is not None and turn.held is not None and not roll_back else HeldWrites()
        undo: list[Statement] = []
        if roll_back and self._memory_saver is not None:
            delete_in_memory(self._memory_saver, run.thread_id, run.run_id)
        elif roll_back:
            undo = delete_statements(self.db.dialect, run.thread_id, run.run_id)
        with held.taken() as written:
            *_, active = await self.db.batch(
                [
                    *undo,
                    *written,
                    ThreadStore.touch_statement(run.thread_id),
                    RunStore.finish_statement(run, status, usage, error_code),
                    RunStore.active_statement(run.thread_id),
                ]
            )
        return RunStore.active_runs(active[0])
