"""A run's first checkpoint read, answered with what the batch that accepted the run read.

A run's graph reads its thread's latest checkpoint first of all (``AsyncPregelLoop.__aenter__``). chatplane's savers
(``PooledPostgresSaver``, ``BatchingSqliteSaver``) give ``TurnStore`` the statements of that read
(``latest_statements``) to run in the batch that accepts the run, under the thread's lock — nobody else writes the
thread's checkpoints until the run ends — and answer the run's first read with the result, once
(``chatplane.storage.unit_of_work.Turn.first_read``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import get_checkpoint_id

from chatplane.storage.database import Result, Statement

RUN_IS_RUNNING = "EXISTS (SELECT 1 FROM chatplane_runs WHERE run_id = %s AND status = 'running')"
"""The condition ``latest_statements`` read under: the run (its id the parameter) was claimed in the same batch."""


@runtime_checkable
class PrefetchingSaver(Protocol):
    def latest_statements(self, thread_id: str, run_id: str) -> list[Statement]:
        """The statements that read ``thread_id``'s latest checkpoint (the root graph's), to run in the batch that
        accepts run ``run_id``; they read nothing unless that run is running — claimed in the same batch — so a
        run that waits its turn, or is refused (another owner's thread), loads no checkpoint."""
        ...


class PrefetchedCheckpoint:
    """What ``latest_statements`` read (their results), for the run's first read of its thread's latest
    checkpoint — and only that one (once the run writes, it is stale: ``Turn.first_read``). A subgraph's read (another
    ``checkpoint_ns``), a read of a given checkpoint or of another thread, or any read once the run has written,
    goes to the database."""

    __slots__ = ("_results", "_thread_id")

    def __init__(self, thread_id: str, *results: Result) -> None:
        self._thread_id: str | None = thread_id
        self._results: tuple[Result, ...] | None = results

    def take(self, config: RunnableConfig) -> tuple[Result, ...] | None:
        """The results, if this read can be answered with them (they are then forgotten); None if the read must
        go to the database."""
        configurable = config["configurable"]
        if (
            self._thread_id is None
            or configurable.get("thread_id") != self._thread_id
            or configurable.get("checkpoint_ns", "")
            or get_checkpoint_id(config)
        ):
            return None
        self._thread_id = None  # one read only
        results, self._results = self._results, None
        return results


def first_row(result: Result) -> Any:
    rows = result[0]
    return rows[0] if rows else None
