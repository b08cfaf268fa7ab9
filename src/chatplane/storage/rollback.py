"""Undoing a run (LangGraph's ``rollback``): every checkpoint it wrote, and their pending writes, deleted.

LangGraph's savers name this ``adelete_for_runs(run_ids)``, but none of the upstream ones implements it, and across
every thread it could only be a scan of the whole checkpoints table: this deletes one run's checkpoints within its
own thread (the checkpoints' primary keys start with the thread), matching the ``run_id`` LangGraph puts in each
checkpoint's metadata. The thread's latest checkpoint is then the one before the run; what the run's blobs left on
PostgreSQL (``checkpoint_blobs``, shared by version between checkpoints) is reclaimed by retention's compaction.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from chatplane.storage.database import Statement

_SQLITE_RUN = "json_extract(CAST(metadata AS TEXT), '$.run_id') = %s"
_POSTGRES_RUN = "metadata->>'run_id' = %s"


def delete_statements(dialect: str, thread_id: str, run_id: str) -> list[Statement]:
    """The statements that delete ``run_id``'s checkpoints of ``thread_id`` and their writes (SQLite, PostgreSQL)."""
    writes, of_run = ("writes", _SQLITE_RUN) if dialect == "sqlite" else ("checkpoint_writes", _POSTGRES_RUN)
    checkpoints = f"SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND {of_run}"
    return [
        (
            f"DELETE FROM {writes} WHERE thread_id = %s AND checkpoint_id IN ({checkpoints})",
            (thread_id, thread_id, run_id),
        ),
        (f"DELETE FROM checkpoints WHERE thread_id = %s AND {of_run}", (thread_id, run_id)),
    ]


def delete_in_memory(saver: InMemorySaver, thread_id: str, run_id: str) -> None:
    """The same for the in-memory saver (``memory://``): its checkpoints are dicts, their metadata serialised."""
    namespaces: dict[str, dict[str, Any]] = saver.storage.get(thread_id, {})
    for namespace, checkpoints in namespaces.items():
        doomed = [
            checkpoint_id
            for checkpoint_id, (_, metadata, _parent) in checkpoints.items()
            if saver.serde.loads_typed(metadata).get("run_id") == run_id
        ]
        for checkpoint_id in doomed:
            del checkpoints[checkpoint_id]
            saver.writes.pop((thread_id, namespace, checkpoint_id), None)
