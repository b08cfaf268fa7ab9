"""Readiness of PostgreSQL on a connection of its own, so that a busy pool never reads as "down".

``/readyz`` asks "can this process serve?". Borrowing a pooled connection for that answers a different question —
"is a pooled connection free?" — and under load the answer is no: a probe that waited for the pool took a busy pod
out of service exactly when it was busiest. So the probe keeps one connection outside the pool (opened on the
first probe, reopened after it breaks) and runs ``SELECT 1`` on it within a short bound. A database that is down,
restarting or not answering fails the probe; a pool whose every connection is busy does not.

The cost is one more connection per process (count it against ``max_connections``). A probe that finds its kept
connection dead tries a fresh one at once, so readiness comes back as soon as the database does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import psycopg


class PostgresProbe:
    """``SELECT 1`` on a dedicated connection within ``timeout_s``; probes at once take turns on it."""

    def __init__(self, conninfo: str, timeout_s: float) -> None:
        self._conninfo = conninfo
        self._timeout_s = timeout_s
        self._conn: psycopg.AsyncConnection[Any] | None = None  # opened on the first probe
        self._lock = asyncio.Lock()
        self._abandoned: set[asyncio.Task[None]] = set()  # queries past the bound, being cancelled

    async def ping(self) -> bool:
        """True when PostgreSQL answers a trivial query within the bound."""
        async with self._lock:
            kept = self._conn is not None
            if await self._try():
                return True
            return kept and await self._try()  # the kept connection had died: a new one says whether the server did

    async def _try(self) -> bool:
        try:
            if self._conn is None:
                # libpq's bound (whole seconds, at least 2) and ours: a connection cut short is dropped by psycopg.
                async with asyncio.timeout(self._timeout_s):
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True, connect_timeout=max(2, math.ceil(self._timeout_s))
                    )
            conn = self._conn
            query = asyncio.ensure_future(conn.execute("SELECT 1"))
            done, _ = await asyncio.wait({query}, timeout=self._timeout_s)
        except (OSError, TimeoutError, psycopg.Error):
            await self.close()
            return False
        if query in done and query.exception() is None:
            return True
        self._conn = None
        if query in done:
            await conn.close()
        else:
            # A server that does not answer: psycopg cancels the query (waiting up to seconds for the server) and
            # the connection is dropped, in the background — the probe answers now.
            task = asyncio.create_task(_abandon(conn, query))
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
        return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close: it is dropped either way
                await conn.close()
        for task in list(self._abandoned):
            task.cancel()


async def _abandon(conn: psycopg.AsyncConnection[Any], query: asyncio.Future[Any]) -> None:
    query.cancel()
    with contextlib.suppress(BaseException):
        await query
    with contextlib.suppress(Exception):
        await conn.close()
