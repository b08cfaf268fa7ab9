"""LangGraph's ``AsyncSqliteSaver``, with a run's first read answered from the batch that accepted the run.

Upstream's ``aget_tuple`` reads the checkpoint row, then its pending writes: four trips to the saver's aiosqlite
thread (execute and fetch, twice), behind the saver's one lock, which every run's reads and writes share. A run's
first read — of its thread's latest checkpoint — comes instead with the batch that accepts the run
(``latest_statements``, ``chatplane.prefetch``), on chatplane's own connection to the same file, inside that
batch's ``BEGIN IMMEDIATE``: nobody else writes the thread's checkpoints until the run ends.

``latest_statements`` reads what upstream's ``aget_tuple`` reads (langgraph-checkpoint-sqlite ``UPSTREAM_VERSION``)
and ``aget_tuple`` builds the tuple the way it does; a test fails when the installed release differs.
"""

from __future__ import annotations

import json
from typing import cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes

from chatplane.db import Statement
from chatplane.prefetch import first_row, prefetched_of

UPSTREAM_VERSION = "3.1.2"

_RUNNING = "EXISTS (SELECT 1 FROM chatplane_runs WHERE run_id = %s AND status = 'running')"
_LATEST_ID = "(SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' "
_LATEST_ID += "ORDER BY checkpoint_id DESC LIMIT 1)"
_LATEST_SQL = (
    "SELECT thread_id, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints "
    f"WHERE thread_id = %s AND checkpoint_ns = '' AND {_RUNNING} ORDER BY checkpoint_id DESC LIMIT 1"
)


class PrefetchingSqliteSaver(AsyncSqliteSaver):
    def latest_statements(self, thread_id: str, run_id: str) -> list[Statement]:
        """The latest root checkpoint of ``thread_id``, then its pending writes (``prefetch.PrefetchingSaver``)."""
        task_path = "task_path" if self._has_task_path else "''"
        writes = (
            f"SELECT task_id, channel, type, value, {task_path} AS task_path, idx FROM writes "
            f"WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = {_LATEST_ID} AND {_RUNNING}"
        )
        return [(_LATEST_SQL, (thread_id, run_id)), (writes, (thread_id, thread_id, run_id))]

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        prefetched = prefetched_of(config)
        if prefetched is None:
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
