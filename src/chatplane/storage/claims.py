"""Claiming due rows for one worker at a time, across processes: the scheduler's schedules and the webhook
dispatcher's deliveries.

A row is due by its own condition and free when no live lease holds it; the claim sets the worker and the lease in
the transaction that read it. On PostgreSQL the read locks what it takes and skips what another process is taking
(``FOR UPDATE SKIP LOCKED``), so claimers share a burst without waiting on each other; SQLite has one writer at a time.
"""

from __future__ import annotations

from chatplane.storage.database import Database, Row


async def claim_due(
    db: Database,
    *,
    table: str,
    key: str,
    columns: str,
    due: str,
    order_by: str,
    now: float,
    worker: str,
    lease_until: float,
    limit: int,
) -> list[Row]:
    """Up to ``limit`` rows of ``table`` that are ``due`` (SQL whose one parameter is ``now``) and whose lease has
    ended, oldest ``order_by`` first, claimed for ``worker`` until ``lease_until`` (the rows, as read: ``columns``).
    ``table``, ``key``, ``columns``, ``due`` and ``order_by`` are the caller's own SQL, never a client's."""
    lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
    async with db.transaction() as tx:
        rows: list[Row] = await tx.fetchall(
            f"SELECT {columns} FROM {table} WHERE {due} AND (lease_until IS NULL OR lease_until < %s) "
            f"ORDER BY {order_by} LIMIT %s{lock}",
            (now, now, limit),
        )
        for row in rows:
            await tx.execute(
                f"UPDATE {table} SET worker = %s, lease_until = %s WHERE {key} = %s", (worker, lease_until, row[key])
            )
    return rows
