"""LangGraph's ``AsyncSqliteSaver``, with a run's checkpoint I/O riding in the batches that accept and finish it.

Upstream's saver does its reads and writes on a connection of its own, each one several hops to that connection's
aiosqlite thread, behind one lock that every run's checkpoints share. In chatplane a run's checkpoint I/O is:

* **Its first read** — the thread's latest checkpoint and its pending writes — comes with the batch that accepts
  the run (``latest_statements``, ``storage.prefetch``), on chatplane's own connection to the same file, inside that
  batch's ``BEGIN IMMEDIATE``: nobody else writes the thread's checkpoints until the run ends.
* **Its writes** are held while its turn is open and holds its writes (``chatplane.storage.unit_of_work``,
  durability ``"exit"``) and committed in the transaction that records the run's outcome (``TurnStore.finish``),
  with the run's move of earlier turns to the transcript: the thread's state and the run's outcome change together
  or not at all, as on PostgreSQL. Any read of the thread writes what is held first (one batch on chatplane's
  connection, ``TakesPartInTurns``), so a run reads what it wrote and its writes land in order.

``aput``'s and ``aput_writes``'s statements, ``latest_statements`` and the tuple ``aget_tuple`` builds are
upstream's (langgraph-checkpoint-sqlite ``UPSTREAM_VERSION``); a test fails when the installed release differs.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Any, cast

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes

from chatplane.storage.database import SqliteDatabase, Statement
from chatplane.storage.prefetch import RUN_IS_RUNNING, first_row
from chatplane.storage.turn_saver import TakesPartInTurns
from chatplane.storage.unit_of_work import OpenTurns

UPSTREAM_VERSION = "3.1.2"

_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value"
_REPLACE_WRITES_SQL = f"INSERT OR REPLACE INTO writes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_KEEP_WRITES_SQL = f"INSERT OR IGNORE INTO writes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_PUT_SQL = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, "
    "checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_LATEST_ID = "(SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' "
_LATEST_ID += "ORDER BY checkpoint_id DESC LIMIT 1)"
_LATEST_SQL = (
    "SELECT thread_id, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints "
    f"WHERE thread_id = %s AND checkpoint_ns = '' AND {RUN_IS_RUNNING} ORDER BY checkpoint_id DESC LIMIT 1"
)


class BatchingSqliteSaver(TakesPartInTurns, AsyncSqliteSaver):
    def __init__(
        self, conn: aiosqlite.Connection, db: SqliteDatabase, *, turns: OpenTurns | None = None, **kwargs: Any
    ) -> None:
        """``conn``: the saver's own connection; ``db``: chatplane's, to the same file, which writes what a run
        holds when the saver must write it early; ``turns``: the runs open on their threads."""
        super().__init__(conn, **kwargs)
        self._db = db
        self._turns = turns or OpenTurns()

    async def _batch(self, statements: list[Statement], *, flush_later: bool) -> None:
        await self._db.batch(statements)

    def latest_statements(self, thread_id: str, run_id: str) -> list[Statement]:
        """The latest root checkpoint of ``thread_id``, then its pending writes (``prefetch.PrefetchingSaver``)."""
        task_path = "task_path" if self._has_task_path else "''"
        writes = (
            f"SELECT task_id, channel, type, value, {task_path} AS task_path, idx FROM writes "
            f"WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = {_LATEST_ID} AND {RUN_IS_RUNNING}"
        )
        return [(_LATEST_SQL, (thread_id, run_id)), (writes, (thread_id, thread_id, run_id))]

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        turn = self._turn(config)
        prefetched = turn.first_read(config) if turn is not None else None
        if prefetched is None:
            await self._write_held(turn)
            return await super().aget_tuple(config)
        row = first_row(prefetched[0])
        if row is None:
            return None  # a thread with no checkpoint yet
        thread_id, parent_id = row["thread_id"], row["parent_checkpoint_id"]
        writes = [
            (w["task_id"], w["channel"], w["type"], w["value"], w["task_path"], w["idx"]) for w in prefetched[1][0]
        ]
        return CheckpointTuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": row["checkpoint_id"]}},
            self.serde.loads_typed((row["type"], row["checkpoint"])),
            cast(CheckpointMetadata, json.loads(row["metadata"]) if row["metadata"] is not None else {}),
            (
                {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": parent_id}}
                if parent_id
                else None
            ),
            load_pending_writes(writes, self.serde),
        )

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id = config["configurable"]["thread_id"]
        turn = self._turns.on(thread_id)
        if turn is not None:
            turn.note_checkpoint(config, checkpoint)
        if turn is None or turn.held is None:
            return await super().aput(config, checkpoint, metadata, new_versions)
        checkpoint_ns = config["configurable"]["checkpoint_ns"]
        type_, serialized_checkpoint = self.serde.dumps_typed(checkpoint)
        serialized_metadata = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False).encode(
            "utf-8", "ignore"
        )
        parent_id = config["configurable"].get("checkpoint_id")
        row = (str(thread_id), checkpoint_ns, checkpoint["id"], parent_id, type_, serialized_checkpoint)
        turn.hold([(_PUT_SQL, (*row, serialized_metadata))])
        return {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint["id"]}
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        turn = self._turn(config)
        if turn is None or turn.held is None:
            await super().aput_writes(config, writes, task_id, task_path)
            return
        query = _REPLACE_WRITES_SQL if all(w[0] in WRITES_IDX_MAP for w in writes) else _KEEP_WRITES_SQL
        configurable = config["configurable"]
        key = (str(configurable["thread_id"]), str(configurable["checkpoint_ns"]), str(configurable["checkpoint_id"]))
        turn.hold(
            [
                (
                    query,
                    (
                        *key,
                        task_id,
                        task_path,
                        WRITES_IDX_MAP.get(channel, idx),
                        channel,
                        *self.serde.dumps_typed(value),
                    ),
                )
                for idx, (channel, value) in enumerate(writes)
            ]
        )


# LangGraph asks for ``aput_writes``'s signature on every run (does it take ``task_path``?): worked out once here.
BatchingSqliteSaver.aput_writes.__signature__ = inspect.signature(BatchingSqliteSaver.aput_writes)  # type: ignore[attr-defined]
