"""Storage by URL: ``open_storage(settings)`` → a LangGraph checkpointer and a readiness probe.

==========================  =======================================================================================
``sqlite:///./data/x.db``   ``BatchingSqliteSaver`` on one aiosqlite connection (WAL); the default, a file on disk
``postgresql://…``          ``PooledPostgresSaver`` on a ``psycopg_pool`` pool that checks each connection as it
                            is handed out (see ``check_pooled_connection``), so a PostgreSQL restart costs failed
                            requests (503), not a restart of chatplane
``memory://``               ``InMemorySaver``: gone when the process exits
==========================  =======================================================================================
"""

from __future__ import annotations

import asyncio
import logging
import select
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from langchain_core.messages import AnyMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from chatplane.config import Settings
from chatplane.errors import ConfigError, StorageUnavailableError
from chatplane.storage.assistants import AssistantStore
from chatplane.storage.database import Database, PostgresDatabase
from chatplane.storage.prefetch import PrefetchingSaver
from chatplane.storage.probe import PostgresProbe
from chatplane.storage.runs import RunStore
from chatplane.storage.schema import SQLITE_CACHE_PRAGMA, create_schema, open_sqlite_database
from chatplane.storage.threads import ThreadStore
from chatplane.storage.transcript import Transcript, merge_history
from chatplane.storage.turn_saver import TakesPartInTurns
from chatplane.storage.turns import Durability, TurnStore
from chatplane.storage.unit_of_work import OpenTurns

log = logging.getLogger(__name__)

StorageKind = Literal["memory", "sqlite", "postgres"]


def _storage_error_types() -> tuple[type[Exception], ...]:
    import psycopg
    import psycopg_pool

    return (
        psycopg.OperationalError,
        psycopg.InterfaceError,
        psycopg_pool.PoolTimeout,
        sqlite3.OperationalError,
    )


STORAGE_ERRORS: tuple[type[Exception], ...] = _storage_error_types()
"""Exceptions that mean "the database is unreachable or busy" (→ 503), not "chatplane has a bug"."""


class Storage:
    """Everything one process stores through: the checkpointer, chatplane's tables and the stores over them."""

    def __init__(
        self,
        kind: StorageKind,
        checkpointer: BaseCheckpointSaver[Any],
        db: Database,
        *,
        turns: OpenTurns,
        durability: Durability,
        pool: Any = None,
        probe: PostgresProbe | None = None,
    ) -> None:
        """``turns``: the register the savers were built with (``chatplane.storage.unit_of_work``); ``probe``:
        readiness on a connection outside the pool (PostgreSQL)."""
        self.kind = kind
        self.checkpointer = checkpointer
        self.db = db  # chatplane's own tables (threads, runs …)
        self.pool = pool  # psycopg_pool.AsyncConnectionPool on PostgreSQL
        self._probe = probe
        self.threads = ThreadStore(db)
        self.runs = RunStore(db)
        self.assistants = AssistantStore(db)
        self.transcript = Transcript(db, turns)
        self.turns = TurnStore(
            db,
            self.runs,
            turns=turns,
            durability=durability,
            saver_takes_part=isinstance(checkpointer, TakesPartInTurns),
            prefetching=checkpointer if isinstance(checkpointer, PrefetchingSaver) else None,
            memory_saver=checkpointer if isinstance(checkpointer, InMemorySaver) else None,
        )

    async def thread_messages(self, thread_id: str) -> list[AnyMessage]:
        """A thread's messages, oldest first, read from storage alone (no graph): the transcript, then the latest
        checkpoint's messages not archived yet. For tools working on the storage of a server (``chatplane
        threads show``); the service reads them through the thread's graph."""
        saved = await self.checkpointer.aget_tuple({"configurable": {"thread_id": thread_id}})
        working = saved.checkpoint["channel_values"].get("messages", []) if saved else []
        return merge_history(await self.transcript.messages(thread_id), working)

    async def ping(self) -> bool:
        """True when the database answers a trivial query now — never "false" only because the pool is busy: on
        PostgreSQL the query runs on the probe's own connection (``chatplane.storage.probe``)."""
        if self._probe is not None:
            return await self._probe.ping()
        try:
            await self.db.fetchone("SELECT 1 AS ok")
        except STORAGE_ERRORS:
            return False
        return True


def _has_input(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


async def check_pooled_connection(conn: Any) -> None:
    """The pool's check of a connection it is about to hand out, without a round trip when it can tell locally.

    An idle connection in good standing whose socket has nothing to read is handed out as it is: a server that
    restarted, or killed the backend, sends its farewell and closes the socket, which makes it readable. Anything
    else — something to read, a closed or broken connection, a transaction left open — gets psycopg's full check
    (an empty query), which raises for a dead connection so that the pool replaces it. (An empty query per
    checkout was a third of chatplane's statements: about ten round trips per chat turn.)
    """
    from psycopg import pq
    from psycopg_pool import AsyncConnectionPool

    try:
        healthy = (
            not conn.closed
            and conn.pgconn.status == pq.ConnStatus.OK
            and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
            and not _has_input(conn.pgconn.socket)
        )
    except Exception:  # a closed connection has no socket: let the full check say what is wrong
        healthy = False
    if not healthy:
        await AsyncConnectionPool.check_connection(conn)


def storage_kind(url: str) -> StorageKind:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return "memory"
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    raise ConfigError(f"Unknown storage URL scheme {scheme!r}: use sqlite://, postgresql:// or memory://.")


def sqlite_path(url: str) -> str:
    """``sqlite:///rel/x.db`` → ``rel/x.db``; ``sqlite:////abs/x.db`` → ``/abs/x.db``; ``:memory:`` kept."""
    path = url.removeprefix("sqlite://")
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise ConfigError("A sqlite storage URL needs a path, e.g. sqlite:///./data/chatplane.storage.database")
    return path


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


@asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    """Open the storage named by ``settings.storage_url``, create its tables, and close it on exit."""
    kind = storage_kind(settings.storage_url)
    if kind == "memory":
        async with open_sqlite_database(":memory:", settings.storage_timeout_s) as db:
            yield Storage("memory", InMemorySaver(), db, turns=OpenTurns(), durability=settings.checkpoint_durability)
    elif kind == "sqlite":
        async with _open_sqlite(settings) as storage:
            yield storage
    else:
        async with _open_postgres(settings) as storage:
            yield storage


@asynccontextmanager
async def _open_sqlite(settings: Settings) -> AsyncIterator[Storage]:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from chatplane.storage.sqlite_saver import BatchingSqliteSaver

    path = sqlite_path(settings.storage_url)
    turns = OpenTurns()
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    async with (
        open_sqlite_database(path, settings.storage_timeout_s) as db,
        aiosqlite.connect(path, timeout=settings.storage_timeout_s) as conn,
    ):
        # ``:memory:``: the saver's database is not chatplane's (each connection has its own), so no batch of
        # chatplane's can read or write its tables.
        saver = AsyncSqliteSaver(conn) if path == ":memory:" else BatchingSqliteSaver(conn, db, turns=turns)
        await saver.setup()
        await conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across crashes of the process
        await conn.execute(SQLITE_CACHE_PRAGMA)
        log.info("storage: sqlite at %s", path)
        yield Storage("sqlite", saver, db, turns=turns, durability=settings.checkpoint_durability)


_READY_TIMEOUT_S = 2.0  # the longest a readiness probe waits for PostgreSQL (Kubernetes' probe waits 3 s here)
_SETUP_LOCK = 0x63706C62  # advisory lock id for LangGraph's migrations (ours use 0x63706C61)


@asynccontextmanager
async def _open_postgres(settings: Settings) -> AsyncIterator[Storage]:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from chatplane.storage.postgres_saver import PooledPostgresSaver

    url = settings.storage_url
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo=url,
        min_size=settings.pg_pool_min_size,
        max_size=settings.pg_pool_max_size,
        timeout=settings.storage_timeout_s,
        # The saver needs autocommit and dict rows. prepare_threshold=0: a statement bound server-side is prepared
        # on first use (its plan kept by the connection); behind pgbouncer that needs transaction pooling with
        # max_prepared_statements (1.21+). The batches (database.postgres_batch) are bound client-side.
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        # Check every connection before handing it out: after a server restart, dead ones are replaced.
        check=check_pooled_connection,
        open=False,
        name="chatplane",
    )
    try:
        await pool.open(wait=True, timeout=settings.storage_timeout_s)
    except STORAGE_ERRORS as exc:
        await pool.close()
        raise StorageUnavailableError(f"Cannot reach PostgreSQL at {redact_url(url)} (CHATPLANE_STORAGE_URL).") from exc
    probe = PostgresProbe(url, min(settings.storage_timeout_s, _READY_TIMEOUT_S))
    try:
        turns = OpenTurns()
        saver = PooledPostgresSaver(pool, turns=turns)
        # LangGraph's setup() races when several processes start on an empty database: serialise it with an
        # advisory lock held on a connection of its own (outside the pool, so a pool of one cannot deadlock).
        # Polled, not waited for: a waiting statement would hold up setup's CREATE INDEX CONCURRENTLY elsewhere.
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as lock:
            while True:
                cursor = await lock.execute("SELECT pg_try_advisory_lock(%s)", (_SETUP_LOCK,))
                row = await cursor.fetchone()
                if row is not None and row[0]:
                    break
                await asyncio.sleep(0.2)
            await saver.setup()
        db = PostgresDatabase(pool)
        await create_schema(db)
        log.info("storage: postgresql at %s", redact_url(url))
        yield Storage(
            "postgres", saver, db, turns=turns, durability=settings.checkpoint_durability, pool=pool, probe=probe
        )
    finally:
        await probe.close()
        await pool.close()
