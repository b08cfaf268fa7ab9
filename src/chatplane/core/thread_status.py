"""A thread's status as LangGraph reports it — ``idle``, ``busy``, ``interrupted``, ``error`` — worked out from
its runs and its latest checkpoint, for any number of threads in one query.

* a run running or waiting its turn (``pending``): ``busy``;
* a run paused for a human (``waiting``, a graph's ``interrupt``): ``interrupted``;
* else the latest run failed: ``error``;
* else a checkpoint with nodes still to run — a static breakpoint (``interrupt_before`` / ``interrupt_after``):
  ``interrupted`` (a thread paused there is not idle);
* else ``idle``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from chatplane.storage.database import Database, in_clause

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
STATUSES: tuple[ThreadStatus, ...] = ("idle", "busy", "interrupted", "error")


async def run_statuses(db: Database, thread_ids: Sequence[str]) -> dict[str, ThreadStatus]:
    """What their runs say of ``thread_ids`` (a thread without runs, or whose runs all ended well: ``idle``)."""
    if not thread_ids:
        return {}
    clause, params = in_clause(db.dialect, thread_ids)
    rows = await db.fetchall(
        f"SELECT r.thread_id, r.status FROM chatplane_runs r WHERE r.thread_id {clause} AND ("
        "r.status IN ('pending', 'running', 'waiting') OR r.created_at = "
        "(SELECT max(l.created_at) FROM chatplane_runs l WHERE l.thread_id = r.thread_id))",
        params,
    )
    seen: dict[str, set[str]] = {}
    for row in rows:
        seen.setdefault(row["thread_id"], set()).add(row["status"])
    return {thread_id: _of(seen.get(thread_id, set())) for thread_id in thread_ids}


def _of(statuses: set[str]) -> ThreadStatus:
    if "running" in statuses:
        return "busy"
    if "waiting" in statuses:
        return "interrupted"
    if "pending" in statuses:
        return "busy"
    return "error" if "failed" in statuses else "idle"


def with_checkpoint(status: ThreadStatus, snapshot: Any) -> ThreadStatus:
    """``status`` from the runs, corrected by the latest checkpoint: an idle thread with nodes still to run is
    paused at a breakpoint (``interrupted``)."""
    if status == "idle" and snapshot is not None and (getattr(snapshot, "next", None) or ()):
        return "interrupted"
    return status
