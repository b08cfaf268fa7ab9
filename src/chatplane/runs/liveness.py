"""Noticing a dead worker before its leases run out (PostgreSQL): its database session ends with it.

Each worker holds a session-level advisory lock, keyed by its id, on a connection of its own for as long as it
lives. When its process dies, PostgreSQL ends the session and frees the lock. Another worker's reaper tries each
lock of the workers holding running runs (``pg_try_advisory_lock``, released at once if taken): a lock it can take
belongs to a dead worker — provided that worker's runs also missed their last two lease renewals (a live worker
whose lock connection alone broke keeps renewing them) — and those runs' leases are ended now, so the ordinary
recovery takes them over in this round rather than when their leases would have run out.

A database restart ends every session, the live workers' too: right after this worker's own lock connection had to
be made again, it trusts no free lock for a lease's time (the other workers are re-taking theirs), and recovery
falls back on lease expiry meanwhile. No cluster protocol of chatplane's own: the liveness is PostgreSQL's.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import psycopg

_CONNECT_TIMEOUT_S = 5


def lock_key(worker: str) -> int:
    """A worker's advisory lock key: a signed 64-bit digest of its id."""
    return int.from_bytes(hashlib.blake2b(worker.encode(), digest_size=8).digest(), "big", signed=True)


class WorkerLiveness:
    def __init__(self, url: str, worker: str, *, trust_after_s: float) -> None:
        """``url``: the PostgreSQL database; ``trust_after_s``: how long after (re)taking its own lock this worker
        trusts no free lock of another (a lease: the time the others have to take theirs back)."""
        self._url = url
        self.worker = worker
        self._trust_after_s = trust_after_s
        self._conn: Any = None
        self._held_since = 0.0

    async def hold(self) -> bool:
        """Hold this worker's lock (taking it again on a new connection if the last one broke); whether it does."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return True
        again = self._conn is not None or self._held_since > 0  # lost: the database may have restarted
        await self.aclose()
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S, application_name="chatplane-liveness"
            )
            await self._conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(self.worker),))
        except psycopg.Error:
            await self.aclose()
            return False
        self._held_since = time.monotonic() if again else -self._trust_after_s
        return True

    async def dead(self, workers: list[str]) -> list[str]:
        """Those of ``workers`` whose session is gone (their lock is free) — none for a while after this worker had
        to take its own lock again (a database restart: the others may not have taken theirs back yet)."""
        if not await self.hold() or time.monotonic() - self._held_since < self._trust_after_s:
            return []
        gone = []
        for worker in workers:
            if worker == self.worker:
                continue
            key = lock_key(worker)
            row = await (await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))).fetchone()
            if row and row[0]:
                await self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                gone.append(worker)
        return gone

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except psycopg.Error:
                pass
