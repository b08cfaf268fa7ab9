"""How big a target's storage is, and how many bytes it has written, read from outside the server.

============  =====================================================  ===============================================
storage       size (bytes stored)                                    written (bytes written so far)
============  =====================================================  ===============================================
SQLite        ``page_count × page_size`` through a read-only         the server process's ``write_bytes``
              connection (sees the WAL, so it is the logical size)   (``/proc/PID/io``: WAL + checkpoints into the db)
PostgreSQL    ``pg_database_size`` of the target's own database      WAL generated (``pg_current_wal_lsn``): the
                                                                     whole cluster's, so other users of the server
                                                                     add noise
memory        —                                                      —
============  =====================================================  ===============================================

``server_cpu()`` is the CPU time of the database server's processes working for the target: on PostgreSQL the
backends connected to the target's database (psutil by pid; they run on the same machine), elsewhere None (SQLite
runs inside the server process, whose CPU is counted anyway).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

import psutil
import psycopg

from benchmarks.procs import ProcessProbe


class StorageProbe(Protocol):
    kind: str

    async def size(self) -> int | None: ...

    async def written(self) -> int | None: ...

    async def server_cpu(self) -> dict[int, float] | None: ...

    async def aclose(self) -> None: ...


class NoStorage:
    kind = "memory"

    async def size(self) -> int | None:
        return None

    async def written(self) -> int | None:
        return None

    async def server_cpu(self) -> dict[int, float] | None:
        return None

    async def aclose(self) -> None:
        return None


class SqliteProbe:
    kind = "sqlite"

    def __init__(self, path: str, process: ProcessProbe) -> None:
        self.path = path
        self.process = process

    async def size(self) -> int | None:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return None
        try:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        return int(pages) * int(page_size)

    async def written(self) -> int | None:
        return self.process.write_bytes()

    async def server_cpu(self) -> dict[int, float] | None:
        return None

    async def aclose(self) -> None:
        return None


class PostgresProbe:
    kind = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        return self._conn

    async def _query(self, sql: str) -> int | None:
        row = await (await (await self._connection()).execute(sql)).fetchone()
        return int(row[0]) if row else None

    async def server_cpu(self) -> dict[int, float] | None:
        """CPU seconds so far of each backend connected to the database (except this probe's)."""
        conn = await self._connection()
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        times = {}
        for (pid,) in await (await conn.execute(query)).fetchall():
            try:
                cpu = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            times[pid] = cpu.user + cpu.system
        return times

    async def size(self) -> int | None:
        return await self._query("SELECT pg_database_size(current_database())")

    async def written(self) -> int | None:
        return await self._query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
