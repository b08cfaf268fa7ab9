"""chatplane's own tables (threads, runs …) on the storage's database: a thin async adapter, not an ORM.

SQL is written once, with ``%s`` placeholders and portable types; the SQLite adapter swaps in ``?``. On PostgreSQL
the adapter borrows connections from the checkpointer's pool (one pool per process); on SQLite it keeps its own
connection to the same file (WAL lets it read while the checkpointer writes) so the two never share a transaction;
``memory://`` uses an in-memory SQLite database.

Why not SQLAlchemy: five tables and a dozen statements do not need a second pool, a second connection model and
an ORM's per-query overhead on the request path.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol, TypeVar

Dialect = Literal["sqlite", "postgres"]
Row = dict[str, Any]
Statement = tuple[str, Sequence[Any]]
Result = tuple[list[Row], int]
"""A statement's rows (empty for one that returns none) and the number of rows it changed."""


def in_clause(dialect: Dialect, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """``IN (...)`` for a list of values, in ``dialect``: on PostgreSQL ``= ANY(%s)`` with one array parameter
    (one statement text whatever the count); on SQLite a placeholder each (it allows 32,766 parameters)."""
    if dialect == "postgres":
        return "= ANY(%s)", (list(values),)
    return "IN (" + ", ".join(["%s"] * len(values)) + ")", tuple(values)


class Database(Protocol):
    dialect: Dialect

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def transaction(self) -> Any:
        """``async with db.transaction() as tx:`` — ``tx`` has the same methods; all or nothing."""
        ...

    async def batch(self, statements: Sequence[Statement], *, flush_later: bool = False) -> list[Result]:
        """Run ``statements`` in order in one transaction (all or nothing), in one trip to the database: for a
        request path whose statements do not depend on each other's results in Python (a later one may use an
        earlier one's effects in SQL). On PostgreSQL each statement still sees what others committed before it
        started (read committed), and a row lock one takes is held until the batch commits.

        ``flush_later``: on PostgreSQL the commit does not wait for its write-ahead log to reach the disk
        (``synchronous_commit`` off for this transaction only; SQLite is unchanged). Only for writes that an
        ordinary commit always follows before anyone is told of them: a run's writes while it runs, which its
        outcome's commit flushes (``chatplane.storage.turns``)."""
        ...


def _integrity_error_types() -> tuple[type[BaseException], ...]:
    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


INTEGRITY_ERRORS = _integrity_error_types()
"""A row with that key exists already."""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(value: str | None) -> Any:
    return json.loads(value) if value else {}


T = TypeVar("T")


def _sqlite_statement(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Result:
    """In the connection's thread: run one statement, return its rows and row count."""
    cursor = conn.execute(sql, params)
    try:
        return [dict(row) for row in cursor.fetchall()], int(cursor.rowcount)
    finally:
        cursor.close()


def _sqlite_batch(conn: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]]) -> list[Result]:
    """In the connection's thread: ``statements`` in one transaction."""
    _sqlite_statement(conn, "BEGIN IMMEDIATE", ())
    try:
        results = [_sqlite_statement(conn, sql, params) for sql, params in statements]
    except BaseException:
        _sqlite_statement(conn, "ROLLBACK", ())
        raise
    _sqlite_statement(conn, "COMMIT", ())
    return results


class _ConnectionThread(threading.Thread):
    """The thread a SQLite connection lives on: calls come in through a queue, results go back to the event loop.

    Written by hand rather than on aiosqlite, whose connection runs one call per trip and has no public way to run a
    function of ours in its thread; and rather than on ``loop.run_in_executor``, whose executor and future chaining
    cost about 0.4 M instructions a turn more (callgrind, one user) for the same hand-over."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="chatplane-sqlite", daemon=True)
        self._loop = loop
        self._calls: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._calls = queue.SimpleQueue()

    def call(self, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self._loop.create_future()
        self._calls.put((future, func, args))
        return future

    def stop(self) -> None:
        self._calls.put(None)

    def run(self) -> None:
        while (item := self._calls.get()) is not None:
            future, func, args = item
            try:
                result = func(*args)
            except BaseException as exc:
                self._loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                self._loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # its caller was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SqliteDatabase:
    """One ``sqlite3`` connection in autocommit mode, used from a thread of its own; a lock keeps each
    transaction's statements together.

    Each statement (and each ``batch``) is one trip to that thread — a function that executes, fetches and closes —
    not the three of a cursor's execute, fetch and close: every trip is a thread hand-over and a wake-up of the event
    loop.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, thread: _ConnectionThread) -> None:
        self._conn = conn
        self._thread = thread
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str, timeout_s: float) -> AsyncIterator[SqliteDatabase]:
        """A connection to ``path`` (``:memory:`` for a private in-memory database), closed on exit."""
        thread = _ConnectionThread(asyncio.get_running_loop())
        thread.start()

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            return conn

        try:
            conn = await thread.call(connect)
            try:
                yield cls(conn, thread)
            finally:
                await thread.call(conn.close)
        finally:
            thread.stop()

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        return await self._thread.call(func, self._conn, *args)

    async def _statement(self, sql: str, params: Sequence[Any]) -> Result:
        return await self._call(_sqlite_statement, sql.replace("%s", "?"), tuple(params))

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        return (await self._statement(sql, params))[1]

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return (await self._statement(sql, params))[0]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._lock:
            return await self._execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._lock:
            return await self._fetchall(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        async with self._lock:
            await self._statement("BEGIN IMMEDIATE", ())
            try:
                yield _SqliteTx(self)
            except BaseException:
                await self._statement("ROLLBACK", ())
                raise
            await self._statement("COMMIT", ())

    async def batch(self, statements: Sequence[Statement], *, flush_later: bool = False) -> list[Result]:
        prepared = [(sql.replace("%s", "?"), tuple(params)) for sql, params in statements]
        async with self._lock:
            return await self._call(_sqlite_batch, prepared)


class _SqliteTx:
    dialect: Dialect = "sqlite"

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db._execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self._db._fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._db._fetchall(sql, params)


class PostgresDatabase:
    """Statements on connections borrowed from the shared psycopg pool (autocommit, dict rows)."""

    dialect: Dialect = "postgres"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def _statement(self, sql: str, params: Sequence[Any]) -> Result:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return (list(await cursor.fetchall()) if cursor.description else []), int(cursor.rowcount)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return (await self._statement(sql, params))[1]

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = (await self._statement(sql, params))[0]
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return (await self._statement(sql, params))[0]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PostgresTx]:
        async with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    async def batch(self, statements: Sequence[Statement], *, flush_later: bool = False) -> list[Result]:
        async with self._pool.connection() as conn:
            return await postgres_batch(conn, statements, flush_later=flush_later)


_NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO off"


async def postgres_batch(conn: Any, statements: Sequence[Statement], *, flush_later: bool = False) -> list[Result]:
    """``statements`` on ``conn`` as one query string, their parameters bound client-side by psycopg's
    ``ClientCursor`` (quoted by libpq): PostgreSQL runs a multi-statement query as one transaction, skipping the rest
    and rolling back at the first error. One round trip and one wait; psycopg's pipeline mode, for comparison, costs
    more CPU than the statements one by one (its bookkeeping is Python). ``flush_later`` (``Database.batch``): the
    transaction starts with ``SET LOCAL synchronous_commit TO off``."""
    import psycopg

    cursor = psycopg.AsyncClientCursor(conn)
    bound = [cursor.mogrify(sql, tuple(params)).strip().rstrip(";") for sql, params in statements]
    if flush_later:
        bound.insert(0, _NO_FLUSH_WAIT)
    await cursor.execute(";".join(bound))
    if flush_later:
        cursor.nextset()
    results: list[Result] = []
    while True:
        rows = list(await cursor.fetchall()) if cursor.description else []
        results.append((rows, int(cursor.rowcount)))
        if not cursor.nextset():
            return results


class _PostgresTx:
    dialect: Dialect = "postgres"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(sql, tuple(params))
        return int(cursor.rowcount)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cursor = await self._conn.execute(sql, tuple(params))
        row: Row | None = await cursor.fetchone()
        return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._conn.execute(sql, tuple(params))
        return list(await cursor.fetchall())
