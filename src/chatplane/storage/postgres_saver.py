"""LangGraph's ``AsyncPostgresSaver``, tuned for chatplane's pool: per-turn costs of the upstream saver removed.

* **One lock for the whole process.** The saver serialises every read and write behind one ``asyncio.Lock``, which
  a single shared connection needs; on a pool each operation has a connection of its own, so with many users at
  once every checkpoint waited for every other one's round trip. On a pool the lock is a no-op here.
* **A thread hop per read and per write.** ``aput`` and ``aput_writes`` serialise in a worker thread
  (``asyncio.to_thread``), and every read decodes its pending writes in one, even when there are none: a
  hand-over, a wake-up of the event loop and contention for the GIL, for what is here a few messages (the
  checkpoint holds the current run only, ``chatplane.storage.transcript``). Here they run inline.
* **A pipeline per write.** Upstream sends the blobs and the checkpoint row (or the writes) in psycopg's pipeline
  mode, whose bookkeeping is Python; on a pool they go here as one query string bound client-side: one round trip,
  one transaction.
* **A trip of its own for a run's last checkpoint.** While a run's turn is open and holds its writes
  (``chatplane.storage.unit_of_work``, durability ``"exit"``) writes are held back and committed with the run's
  outcome (``TurnStore.finish``); any read of the thread writes them first (``TakesPartInTurns``).
* **A trip of its own for a run's first read.** ``TurnStore`` reads the thread's latest checkpoint in the batch
  that accepts the run (``latest_checkpoint_statement``), under the thread's lock, and the run's turn answers its
  first ``aget_tuple`` with the row: nobody else writes the thread's checkpoints while its run runs.

``aput``, ``aput_writes``, ``_load_checkpoint_tuple`` and the prefetched read's query and checks below are
upstream's (langgraph-checkpoint-postgres 3.2.0) with those changes; everything else is inherited.
``UPSTREAM_VERSION`` is the release they were copied from: a test fails when the installed one differs, so an
upgrade re-checks the copies.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chatplane.storage.database import Statement, postgres_batch
from chatplane.storage.prefetch import RUN_IS_RUNNING, first_row
from chatplane.storage.turn_saver import TakesPartInTurns
from chatplane.storage.unit_of_work import OpenTurns

UPSTREAM_VERSION = "3.2.0"


def latest_checkpoint_statement(thread_id: str, run_id: str) -> Statement:
    """The statement upstream's ``aget_tuple`` runs for ``thread_id``'s latest checkpoint (the root graph's), to
    run in the batch that accepts run ``run_id``; its result goes to ``PrefetchedCheckpoint``. It reads nothing
    unless that run is running — claimed in the same batch — so a run that waits its turn, or is refused (another
    owner's thread), loads no checkpoint."""
    return _LATEST_CHECKPOINT_SQL, (thread_id, "", run_id)


_LATEST_CHECKPOINT_SQL = (
    AsyncPostgresSaver.SELECT_SQL
    + "WHERE thread_id = %s AND checkpoint_ns = %s "
    + f"AND {RUN_IS_RUNNING} "
    + "ORDER BY checkpoint_id DESC LIMIT 1"
)


class PooledPostgresSaver(TakesPartInTurns, AsyncPostgresSaver):
    """``AsyncPostgresSaver`` on a connection pool, without the process-wide lock and the per-write thread hop,
    taking part in the unit of work of the run open on a thread (``turns``)."""

    def __init__(self, conn: AsyncConnectionPool[Any], *, turns: OpenTurns | None = None, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self._turns = turns or OpenTurns()
        if isinstance(conn, AsyncConnectionPool):
            self.lock = contextlib.nullcontext()  # type: ignore[assignment]  # async-capable

    def latest_statements(self, thread_id: str, run_id: str) -> list[Statement]:
        return [latest_checkpoint_statement(thread_id, run_id)]

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        turn = self._turn(config)
        prefetched = turn.first_read(config) if turn is not None else None
        if prefetched is not None:
            row = first_row(prefetched[0])
            if row is None:
                return None  # a thread with no checkpoint yet
            # Except an old checkpoint (v < 4) with a parent: upstream migrates its pending sends as it reads.
            if row["checkpoint"]["v"] >= 4 or not row["parent_checkpoint_id"]:
                return await self._load_checkpoint_tuple(row)
        await self._write_held(turn)
        return await super().aget_tuple(config)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        turn = self._turn(config)
        if turn is not None:
            turn.note_checkpoint(config, checkpoint)
        configurable = config["configurable"].copy()
        thread_id = configurable.pop("thread_id")
        checkpoint_ns = configurable.pop("checkpoint_ns")
        checkpoint_id = configurable.pop("checkpoint_id", None)

        copy = checkpoint.copy()
        copy["channel_values"] = copy["channel_values"].copy()
        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        # Primitive values stay inline in the checkpoint row; the others go to the blobs table.
        blob_values = {}
        for k, v in checkpoint["channel_values"].items():
            if isinstance(v, _DeltaSnapshot):
                blob_values[k] = copy["channel_values"].pop(k)
                copy["channel_values"][k] = True
            elif v is None or isinstance(v, str | int | float | bool):
                pass
            else:
                blob_values[k] = copy["channel_values"].pop(k)

        blob_rows = []
        if blob_versions := {k: v for k, v in new_versions.items() if k in blob_values}:
            blob_rows = self._dump_blobs(thread_id, checkpoint_ns, blob_values, blob_versions)  # inline: see above
        checkpoint_row = (
            thread_id,
            checkpoint_ns,
            checkpoint["id"],
            checkpoint_id,
            Jsonb(copy),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        )
        if isinstance(self.conn, AsyncConnectionPool):
            statements = [(self.UPSERT_CHECKPOINT_BLOBS_SQL, row) for row in blob_rows]
            await self._write(thread_id, [*statements, (self.UPSERT_CHECKPOINTS_SQL, checkpoint_row)])
            return next_config
        async with self._cursor(pipeline=True) as cur:
            if blob_rows:
                await cur.executemany(self.UPSERT_CHECKPOINT_BLOBS_SQL, blob_rows)
            await cur.execute(self.UPSERT_CHECKPOINTS_SQL, checkpoint_row)
        return next_config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not isinstance(self.conn, AsyncConnectionPool):
            await super().aput_writes(config, writes, task_id, task_path)
            return
        query = (
            self.UPSERT_CHECKPOINT_WRITES_SQL
            if all(w[0] in WRITES_IDX_MAP for w in writes)
            else self.INSERT_CHECKPOINT_WRITES_SQL
        )
        params = self._dump_writes(  # inline: see above
            config["configurable"]["thread_id"],
            config["configurable"]["checkpoint_ns"],
            config["configurable"]["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        if params:
            await self._write(config["configurable"]["thread_id"], [(query, row) for row in params])

    async def _load_checkpoint_tuple(self, value: Any) -> CheckpointTuple:
        return CheckpointTuple(
            {
                "configurable": {
                    "thread_id": value["thread_id"],
                    "checkpoint_ns": value["checkpoint_ns"],
                    "checkpoint_id": value["checkpoint_id"],
                }
            },
            {  # type: ignore[typeddict-item]  # the row's checkpoint has them
                **value["checkpoint"],
                "channel_values": {
                    **(value["checkpoint"].get("channel_values") or {}),
                    **self._load_blobs(value["channel_values"]),
                },
            },
            value["metadata"],
            (
                {
                    "configurable": {
                        "thread_id": value["thread_id"],
                        "checkpoint_ns": value["checkpoint_ns"],
                        "checkpoint_id": value["parent_checkpoint_id"],
                    }
                }
                if value["parent_checkpoint_id"]
                else None
            ),
            self._load_writes(value["pending_writes"]),  # inline: see above
        )

    async def _batch(self, statements: list[Statement], *, flush_later: bool) -> None:
        """``statements`` as one query string, bound client-side (``postgres_batch``): one round trip, and
        PostgreSQL runs it as one transaction, so a checkpoint row never lands without its blobs."""
        assert isinstance(self.conn, AsyncConnectionPool)  # chatplane's case: see aput
        async with self.conn.connection() as conn:
            await postgres_batch(conn, statements, flush_later=flush_later)


# LangGraph asks for ``aput_writes``'s signature on every run (does it take ``task_path``?): worked out once here.
PooledPostgresSaver.aput_writes.__signature__ = inspect.signature(PooledPostgresSaver.aput_writes)  # type: ignore[attr-defined]
