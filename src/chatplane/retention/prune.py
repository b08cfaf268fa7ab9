"""Retention: delete old threads, and the checkpoints the others no longer need.

LangGraph saves a checkpoint after every step of every run and never deletes one, so a thread's tables grow with
every message (a multi-agent turn leaves dozens of rows, most of them subgraph calls' own checkpoints), and LangGraph's
open-source savers have no retention of their own. ``prune(storage, older_than_s, now)``:

1. **Deletes expired threads** — idle for longer than ``older_than_s`` (``updated_at``), or past their own
   ``expires_at`` (``ttl_days`` at creation) — with their checkpoints, writes and blobs, their run records and their
   registry row. A thread with a pending or running run is left for the next round; one whose run waits for a
   human is deleted with it. The decision and the registry row go in one transaction that holds the thread's lock
   (the one that accepting a message takes), so a message arriving meanwhile either wins or gets a 404.
2. **Deletes old stateless run records** (OpenAI-compatible requests without a thread) past ``older_than_s``.
3. **Deletes expired store items** (``chatplane.storage.items``): those past their TTL (reads skip them already).
4. **Compacts live threads**: keeps the latest checkpoint of each namespace — what ``get_state`` loads, with its
   pending writes — and deletes the superseded ones, the subgraph-call namespaces of finished turns, and the writes
   and blobs only they used. On PostgreSQL this is ``AsyncPostgresSaver.aprune(strategy="keep_latest")``; on SQLite,
   where the saver has no prune, the same rule in SQL below (each thread in one write transaction). A thread with a
   pending, running or waiting run is skipped. ``memory://`` has nothing to compact.

A live thread's messages and state are the same before and after; what is lost is the step-by-step history
(time travel to older checkpoints), which chatplane never reads. SQLite reuses the freed pages; the file itself only
shrinks after ``VACUUM``.

``RetentionJob`` runs ``prune`` every ``CHATPLANE_PRUNE_INTERVAL_S`` when ``CHATPLANE_RETENTION_DAYS`` is set; with
several processes on PostgreSQL an advisory lock lets one of them prune at a time (the others skip the round).
``chatplane prune --older-than 30d`` does the same once, from the command line.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from chatplane.storage import branches
from chatplane.storage.database import Database, in_clause
from chatplane.storage.engine import Storage
from chatplane.storage.items import count_expired, sweep_expired
from chatplane.storage.threads import ThreadStore

log = logging.getLogger("chatplane.retention")

PRUNE_LOCK = 0x63707275  # PostgreSQL advisory lock id: one process prunes at a time
_BATCH = 200
_RUNNING = "('pending', 'running')"
_BUSY = "('pending', 'running', 'waiting')"
_FINISHED = "('succeeded', 'failed', 'cancelled')"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``30d`` → seconds (units s, m, h, d, w)."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, e.g. 30d, 12h, 90m.")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass
class PruneReport:
    threads: int = 0
    """Threads deleted (with their checkpoints and runs)."""
    runs: int = 0
    """Run records deleted: those of deleted threads and old stateless ones."""
    checkpoints: int = 0
    """Checkpoints deleted: of deleted threads, and superseded ones of live threads (a lower bound in a dry run)."""
    compacted: int = 0
    """Live threads whose superseded checkpoints were deleted."""
    skipped: int = 0
    """Expired threads left for a later round: a run is pending or running on them."""
    items: int = 0
    """Store items deleted: past their TTL."""
    dry_run: bool = False

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.threads} thread(s), {self.runs} run record(s), {self.checkpoints} checkpoint(s); "
            f"{self.items} expired store item(s); compacted {self.compacted} live thread(s); "
            f"{self.skipped} busy thread(s) left for later"
        )


async def prune(
    storage: Storage, older_than_s: float | None, now: float, *, dry_run: bool = False, batch: int = _BATCH
) -> PruneReport:
    """Delete what retention says is old (see the module's docstring); with ``dry_run``, only count it."""
    report = PruneReport(dry_run=dry_run)
    cutoff = now - older_than_s if older_than_s is not None else None
    tables = await _checkpoint_tables(storage)
    doomed: set[str] = set()  # deleted (or, in a dry run, to be deleted)
    await _delete_expired_threads(storage, tables, now, cutoff, report, batch, doomed)
    if cutoff is not None:
        await _delete_stateless_runs(storage.db, cutoff, report)
    report.items = await (count_expired if dry_run else sweep_expired)(storage.db, now)
    if tables:
        await _compact_live_threads(storage, report, batch, doomed)
    return report


async def compact_threads(storage: Storage, thread_ids: list[str]) -> int:
    """LangGraph's ``keep_latest`` prune of ``thread_ids`` now, as a round of retention compacts a live thread
    (step 4): each keeps the latest checkpoint of each namespace, and so its latest state. A thread with a pending,
    running or waiting run is left as it is. How many were compacted (one with nothing superseded counts: it is as
    ``keep_latest`` leaves it). ``memory://`` has no checkpoint tables to compact: nothing is, and 0."""
    if not await _checkpoint_tables(storage):
        return 0
    idle = [thread_id for thread_id in thread_ids if not await _busy(storage.db, thread_id)]
    if storage.kind == "postgres" and idle:
        await _compact_postgres(storage, idle, PruneReport())
        return len(idle)
    return sum([await _compact_sqlite(storage.db, thread_id) is not None for thread_id in idle])


async def _checkpoint_tables(storage: Storage) -> bool:
    """Whether the saver's tables are in chatplane's database (SQLite file, PostgreSQL; not memory)."""
    if storage.kind == "postgres":
        return True
    if storage.kind == "sqlite":
        row = await storage.db.fetchone(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('checkpoints', 'writes')"
        )
        return bool(row and int(row["n"]) == 2)
    return False


# --- 1. expired threads ------------------------------------------------------------------------------------------
async def _delete_expired_threads(
    storage: Storage, tables: bool, now: float, cutoff: float | None, report: PruneReport, batch: int, doomed: set[str]
) -> None:
    expired = "(expires_at IS NOT NULL AND expires_at <= %s)"
    params: tuple[Any, ...] = (now,)
    if cutoff is not None:
        expired += " OR updated_at < %s"
        params += (cutoff,)
    last = ""
    while True:
        rows = await storage.db.fetchall(
            f"SELECT thread_id FROM chatplane_threads WHERE ({expired}) AND thread_id > %s ORDER BY thread_id LIMIT %s",
            (*params, last, batch),
        )
        if not rows:
            return
        last = rows[-1]["thread_id"]
        for row in rows:
            if await _delete_thread(storage, tables, row["thread_id"], expired, params, report):
                doomed.add(row["thread_id"])


async def _delete_thread(
    storage: Storage, tables: bool, thread_id: str, expired: str, params: tuple[Any, ...], report: PruneReport
) -> bool:
    async with storage.db.transaction() as tx:
        await ThreadStore.lock(tx, thread_id)
        still = await tx.fetchone(
            f"SELECT thread_id FROM chatplane_threads WHERE thread_id = %s AND ({expired})", (thread_id, *params)
        )
        if still is None:  # used (or deleted) meanwhile
            return False
        running = await tx.fetchone(
            f"SELECT count(*) AS n FROM chatplane_runs WHERE thread_id = %s AND status IN {_RUNNING}", (thread_id,)
        )
        if running and int(running["n"]):
            report.skipped += 1
            return False
        runs = await tx.fetchone("SELECT count(*) AS n FROM chatplane_runs WHERE thread_id = %s", (thread_id,))
        checkpoints = await _count_checkpoints(storage, tables, tx, thread_id)
        report.threads += 1
        report.runs += int(runs["n"]) if runs else 0
        report.checkpoints += checkpoints
        if report.dry_run:
            return True
        await tx.execute("DELETE FROM chatplane_runs WHERE thread_id = %s", (thread_id,))
        await tx.execute("DELETE FROM chatplane_threads WHERE thread_id = %s", (thread_id,))
        await branches.release(tx, thread_id)  # its transcript, unless a fork of it still reads it
    # After the registry row: from now on the thread is unknown to every request, so nothing writes to it again.
    await storage.checkpointer.adelete_thread(thread_id)
    return True


async def _count_checkpoints(storage: Storage, tables: bool, db: Database, thread_id: str) -> int:
    if not tables:  # memory://: InMemorySaver keeps {thread: {namespace: {checkpoint id: …}}}
        namespaces = getattr(storage.checkpointer, "storage", {}).get(thread_id, {})
        return sum(len(checkpoints) for checkpoints in namespaces.values())
    row = await db.fetchone("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (thread_id,))
    return int(row["n"]) if row else 0


# --- 2. old stateless runs ---------------------------------------------------------------------------------------
async def _delete_stateless_runs(db: Database, cutoff: float, report: PruneReport) -> None:
    where = f"thread_id = '' AND created_at < %s AND status IN {_FINISHED}"
    if report.dry_run:
        row = await db.fetchone(f"SELECT count(*) AS n FROM chatplane_runs WHERE {where}", (cutoff,))
        report.runs += int(row["n"]) if row else 0
    else:
        report.runs += await db.execute(f"DELETE FROM chatplane_runs WHERE {where}", (cutoff,))


# --- 3. superseded checkpoints of live threads -------------------------------------------------------------------
async def _compact_live_threads(storage: Storage, report: PruneReport, batch: int, doomed: set[str]) -> None:
    db = storage.db
    last = ""
    while True:
        rows = await db.fetchall(
            "SELECT thread_id FROM chatplane_threads t WHERE thread_id > %s AND NOT EXISTS "
            f"(SELECT 1 FROM chatplane_runs r WHERE r.thread_id = t.thread_id AND r.status IN {_BUSY}) "
            "ORDER BY thread_id LIMIT %s",
            (last, batch),
        )
        if not rows:
            return
        last = rows[-1]["thread_id"]
        clause, params = in_clause(db.dialect, [r["thread_id"] for r in rows])
        # Threads with a superseded checkpoint, or with subgraph calls (``node:<task id>`` namespaces).
        grown = await db.fetchall(
            "SELECT thread_id, count(*) - count(DISTINCT checkpoint_ns) AS superseded FROM checkpoints "
            f"WHERE thread_id {clause} GROUP BY thread_id HAVING count(*) > count(DISTINCT checkpoint_ns) "
            "OR sum(CASE WHEN checkpoint_ns LIKE '%%:%%' THEN 1 ELSE 0 END) > 0",
            params,
        )
        if not grown:
            continue
        grown = [r for r in grown if r["thread_id"] not in doomed]
        thread_ids = [r["thread_id"] for r in grown]
        if not thread_ids:
            continue
        if report.dry_run:
            report.compacted += len(thread_ids)
            report.checkpoints += sum(int(r["superseded"]) for r in grown)
        elif storage.kind == "postgres":
            await _compact_postgres(storage, thread_ids, report)
        else:
            for thread_id in thread_ids:
                deleted = await _compact_sqlite(db, thread_id)
                if deleted is not None:
                    report.checkpoints += deleted
                    report.compacted += 1


async def _compact_postgres(storage: Storage, thread_ids: list[str], report: PruneReport) -> None:
    import psycopg

    db = storage.db
    clause, params = in_clause(db.dialect, thread_ids)
    count_sql = f"SELECT count(*) AS n FROM checkpoints WHERE thread_id {clause}"
    before = await db.fetchone(count_sql, params)
    try:
        await storage.checkpointer.aprune(thread_ids, strategy="keep_latest")
    except NotImplementedError:  # a graph with a DeltaChannel: keep_latest cannot rebuild its value
        log.warning("retention: %d thread(s) use a DeltaChannel and were not compacted", len(thread_ids))
        return
    except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
        log.info("retention: a thread changed while it was compacted; it is tried again next round")
    for thread_id in thread_ids:
        async with db.transaction() as tx:
            await ThreadStore.lock(tx, thread_id)
            if await _busy(tx, thread_id):
                continue
            calls = await _finished_calls(tx, thread_id, await _heads(tx, thread_id))
            for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints") if calls else ():
                await tx.execute(
                    f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_ns = ANY(%s)", (thread_id, calls)
                )
    after = await db.fetchone(count_sql, params)
    deleted = (int(before["n"]) if before else 0) - (int(after["n"]) if after else 0)
    report.checkpoints += max(0, deleted)
    report.compacted += len(thread_ids)


async def _compact_sqlite(db: Database, thread_id: str) -> int | None:
    """LangGraph's keep_latest rule for the SQLite saver's tables (``checkpoints``, ``writes``; values are inside
    each checkpoint, so there are no blobs). One write transaction: the saver's writes wait, so what a run saves
    meanwhile is neither half-seen nor deleted. Returns the number of checkpoints deleted (None: a run started)."""
    deleted = 0
    async with db.transaction() as tx:
        if await _busy(tx, thread_id):
            return None
        heads = await _heads(tx, thread_id)
        calls = await _finished_calls(tx, thread_id, heads)
        for ns in calls:
            await tx.execute("DELETE FROM writes WHERE thread_id = %s AND checkpoint_ns = %s", (thread_id, ns))
            deleted += await tx.execute(
                "DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s", (thread_id, ns)
            )
        for ns, head in heads.items():
            if ns in calls:
                continue
            # Writes go by checkpoint id: those of a newer checkpoint may be saved before it (and are kept).
            await tx.execute(
                "DELETE FROM writes WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id < %s",
                (thread_id, ns, head),
            )
            deleted += await tx.execute(
                "DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id <> %s",
                (thread_id, ns, head),
            )
            await tx.execute(
                "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = %s AND checkpoint_ns = %s "
                "AND checkpoint_id = %s AND parent_checkpoint_id IS NOT NULL",
                (thread_id, ns, head),
            )
    return deleted


async def _busy(tx: Database, thread_id: str) -> bool:
    row = await tx.fetchone(
        f"SELECT count(*) AS n FROM chatplane_runs WHERE thread_id = %s AND status IN {_BUSY}", (thread_id,)
    )
    return bool(row and int(row["n"]))


async def _heads(tx: Database, thread_id: str) -> dict[str, str]:
    """The latest checkpoint id of each of the thread's namespaces."""
    rows = await tx.fetchall(
        "SELECT checkpoint_ns, max(checkpoint_id) AS head FROM checkpoints WHERE thread_id = %s GROUP BY checkpoint_ns",
        (thread_id,),
    )
    return {r["checkpoint_ns"]: r["head"] for r in rows}


async def _finished_calls(tx: Database, thread_id: str, heads: dict[str, str]) -> list[str]:
    """The thread's subgraph-call namespaces (``node:<task id>``) that started from a root checkpoint other than
    the latest one: their turn is over and nothing loads them again.

    LangGraph's own keep_latest also waits until that root checkpoint is saved, because a running turn can save a
    call before the root checkpoint it started from. Here no run is pending, running or waiting on the thread
    (checked under its lock), so no call is in progress; and with ``durability="exit"`` (chatplane's default) the
    root checkpoint a call started from is never saved, so waiting for it would keep every call forever.
    """
    finished = []
    for ns, head in heads.items():
        if ":" not in ns:
            continue
        row = await tx.fetchone(
            "SELECT metadata FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
            (thread_id, ns, head),
        )
        metadata: Any = row["metadata"] if row else None
        try:
            if isinstance(metadata, bytes | str):  # SQLite keeps JSON text; PostgreSQL's jsonb arrives parsed
                metadata = json.loads(metadata)
            root = metadata.get("parents", {}).get("") if isinstance(metadata, dict) else None
        except (ValueError, AttributeError):
            continue
        if isinstance(root, str) and root != heads.get(""):
            finished.append(ns)
    return finished
