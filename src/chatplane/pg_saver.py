"""LangGraph's ``AsyncPostgresSaver``, tuned for chatplane's pool: three per-turn costs of the upstream saver removed.

* **One lock for the whole process.** The saver serialises every read and write behind one ``asyncio.Lock``, which
  a single shared connection needs; on a pool each operation has a connection of its own, so with many users at
  once every checkpoint waited for every other one's round trip. On a pool the lock is a no-op here.
* **A thread hop per checkpoint.** ``aput`` serialises the changed channels in a worker thread
  (``asyncio.to_thread``): a hand-over, a wake-up of the event loop and contention for the GIL, for what is here a
  few messages (the checkpoint holds the current run only, ``chatplane.transcript``).
* **A pipeline per checkpoint.** ``aput`` sends the blobs and the checkpoint row in psycopg's pipeline mode, whose
  bookkeeping is Python; on a pool they go here as one query string bound client-side: one round trip, one
  transaction.

``aput`` below is upstream's (langgraph-checkpoint-postgres 3.2.0) with those two changes; everything else is
inherited.

``UPSTREAM_VERSION`` is the release ``aput`` was copied from: a test fails when the installed one differs, so an
upgrade re-checks the copy.
"""

from __future__ import annotations

import contextlib
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chatplane.db import postgres_batch

UPSTREAM_VERSION = "3.2.0"


class PooledPostgresSaver(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` on a connection pool, without the process-wide lock and the per-write thread hop."""

    def __init__(self, conn: AsyncConnectionPool[Any], **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        if isinstance(conn, AsyncConnectionPool):
            self.lock = contextlib.nullcontext()  # type: ignore[assignment]  # async-capable

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
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
            await self._write_at_once(self.conn, blob_rows, checkpoint_row)
            return next_config
        async with self._cursor(pipeline=True) as cur:
            if blob_rows:
                await cur.executemany(self.UPSERT_CHECKPOINT_BLOBS_SQL, blob_rows)
            await cur.execute(self.UPSERT_CHECKPOINTS_SQL, checkpoint_row)
        return next_config

    async def _write_at_once(
        self, pool: AsyncConnectionPool[Any], blob_rows: list[tuple[Any, ...]], checkpoint_row: tuple[Any, ...]
    ) -> None:
        """The blobs and the checkpoint row as one query string, bound client-side (``postgres_batch``): one
        round trip, and PostgreSQL runs it as one transaction, so a checkpoint row never lands without its blobs.
        Upstream sends them in pipeline mode, whose bookkeeping costs more CPU than the statements it saves."""
        statements = [(self.UPSERT_CHECKPOINT_BLOBS_SQL, row) for row in blob_rows]
        statements.append((self.UPSERT_CHECKPOINTS_SQL, checkpoint_row))
        async with pool.connection() as conn:
            await postgres_batch(conn, statements)
