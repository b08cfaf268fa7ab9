"""A run's unit of work on its thread: what was read as it was accepted, and the writes it holds for its outcome.

A run (a *turn* of its thread) reads its thread's latest checkpoint first of all, writes checkpoints as LangGraph
steps, and moves earlier turns to the transcript; then its outcome is recorded. chatplane makes that one unit:

* **Read ahead.** The batch that accepts the run also reads where the thread's transcript ends and the thread's
  latest checkpoint (``chatplane.storage.turns``), under the thread's lock: nobody else writes the thread until the
  run ends. The run's first checkpoint read is answered with that (``Turn.first_read``), once.
* **Held writes.** With durability ``"exit"`` the run's checkpoint writes and its transcript append are held
  (``HeldWrites``) and committed in the transaction that records its outcome: the thread and the run's outcome
  change together or not at all, and a turn makes no trip of its own for them. Anything that reads the thread's
  checkpoints while the turn is open writes what is held first, so it reads what the run wrote.
* **Commit policy.** Whatever the run does write while it runs (a held write written early, or every write with
  another durability) commits without waiting for the disk: the outcome's ordinary commit, which always follows
  before anyone is told, flushes the log up to it (``Database.batch(flush_later=True)``).

The savers and the transcript find the turn open on a thread in ``OpenTurns``, the process's register of turns
being run, keyed by thread: runs of one thread execute one at a time (the runs table's claim), so a thread has at
most one open turn. The register is handed to them when storage opens — explicitly, not through a context
variable or a key in the run's config.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig

from chatplane.storage.database import Result, Statement
from chatplane.storage.prefetch import PrefetchedCheckpoint

TranscriptEnd = tuple[int, str]
"""A thread's newest archived message, ``(seq, message_id)``; ``(0, "")`` when it has none."""


class HeldWrites:
    """Statements a run wrote, held back to commit in one transaction with the run's outcome."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self._writing = asyncio.Lock()

    def hold(self, statements: Sequence[Statement]) -> None:
        """Keep ``statements`` for the outcome's commit, after those held already (they run in order)."""
        self.statements.extend(statements)

    def take(self) -> list[Statement]:
        statements, self.statements = self.statements, []
        return statements

    @contextmanager
    def taken(self) -> Iterator[list[Statement]]:
        """What is held, taken to be written in the block; put back, ahead of anything held meanwhile, if the
        block fails (kept for the outcome's batch, or another outcome's)."""
        statements = self.take()
        try:
            yield statements
        except BaseException:
            self.statements[:0] = statements
            raise

    async def write(self, batch: Callable[[list[Statement]], Awaitable[object]]) -> None:
        """Write what is held now, as one ``batch``; what a failure leaves unwritten stays held, ahead of anything
        held meanwhile, for the outcome's batch. One write at a time: a second caller waits for the first (and then
        writes what was held meanwhile), so whoever reads next reads everything held before it asked."""
        async with self._writing:
            with self.taken() as statements:
                if statements:
                    await batch(statements)


class Turn:
    """One run's unit of work (see the module's docstring). ``held`` is None when the run writes through."""

    __slots__ = ("held", "last_values", "prefetched", "run_id", "thread_id", "transcript_end")

    def __init__(
        self,
        run_id: str,
        thread_id: str,
        *,
        held: HeldWrites | None,
        transcript_end: TranscriptEnd | None = None,
        prefetched: PrefetchedCheckpoint | None = None,
    ) -> None:
        self.run_id = run_id
        self.thread_id = thread_id
        self.held = held
        self.transcript_end = transcript_end
        """Where the transcript ended as the run was accepted (read only when the run holds its writes): its
        append is then held too, numbered after it."""
        self.prefetched = prefetched
        self.last_values: dict[str, Any] | None = None
        """The channel values of the last root checkpoint the run's graph wrote (``note_checkpoint``)."""

    def note_checkpoint(self, config: RunnableConfig, checkpoint: Mapping[str, Any]) -> None:
        """A saver tells the turn of each checkpoint the run writes; the root graph's last one is its values."""
        if not config["configurable"].get("checkpoint_ns"):
            self.last_values = checkpoint["channel_values"]

    def write_through(self) -> None:
        """Hold nothing from now on: each write commits as it comes (a graph checkpointed per step). Call it before
        the run writes anything."""
        self.held = None
        self.transcript_end = None

    def hold(self, statements: Sequence[Statement]) -> bool:
        """Hold ``statements`` for the outcome's commit, if this turn holds its writes; False: write them now."""
        if self.held is None:
            return False
        self.held.hold(statements)
        return True

    async def write_held(self, batch: Callable[[list[Statement]], Awaitable[object]]) -> None:
        """Write what is held now (before a read, a pause for a human, or a cancel's own update)."""
        if self.held is not None and self.held.statements:
            await self.held.write(batch)

    def first_read(self, config: RunnableConfig) -> tuple[Result, ...] | None:
        """The prefetched results, if this read of the thread's latest checkpoint can be answered with them (then
        they are forgotten); None if the read must go to the database. Once the run holds writes they are stale."""
        if self.prefetched is None:
            return None
        if self.held is not None and self.held.statements:
            self.prefetched = None
            return None
        results = self.prefetched.take(config)
        if results is not None:
            self.prefetched = None
        return results


class OpenTurns:
    """The turns being run in this process, by thread (at most one a thread)."""

    def __init__(self) -> None:
        self._by_thread: dict[str, Turn] = {}

    def on(self, thread_id: object) -> Turn | None:
        """The turn open on ``thread_id`` (a LangGraph config's ``thread_id``), if any."""
        return self._by_thread.get(thread_id) if isinstance(thread_id, str) else None

    @contextmanager
    def open(self, turn: Turn) -> Iterator[Turn]:
        """``turn`` is open while the block runs: its run's graph executes inside it."""
        self._by_thread[turn.thread_id] = turn
        try:
            yield turn
        finally:
            if self._by_thread.get(turn.thread_id) is turn:
                del self._by_thread[turn.thread_id]
