"""chatplane's own tables (threads, runs …) on the storage's database: a thin async adapter, not an ORM.

SQL is written once, with ``%s`` placeholders and portable types; the SQLite adapter swaps in ``?``. On PostgreSQL
the adapter borrows connections from the checkpointer's pool (one pool per process); on SQLite it keeps its own
aiosqlite connection to the same file (WAL lets it read while the checkpointer writes) so the two never share a
transaction; ``memory://`` uses an in-memory SQLite database.

Why not SQLAlchemy: five tables and a dozen statements do not need a second pool, a second connection model and
an ORM's per-query overhead on the request path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgres"]
Row = dict[str, Any]
Statement = tuple[str, Sequence[Any]]
Result = tuple[list[Row], int]
"""A statement's rows (empty for one that returns none) and the number of rows it changed."""

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS chatplane_threads (
        thread_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        agent TEXT NOT NULL,
        session_id TEXT,
        title TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS chatplane_threads_owner ON chatplane_threads (owner, created_at, thread_id)",
    """CREATE TABLE IF NOT EXISTS chatplane_runs (
        run_id TEXT PRIMARY KEY,
        thread_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        agent TEXT NOT NULL,
        status TEXT NOT NULL,
        multitask TEXT NOT NULL,
        input TEXT NOT NULL,
        error_code TEXT,
        usage TEXT NOT NULL DEFAULT '{}',
        created_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        worker TEXT,
        lease_until DOUBLE PRECISION
    )""",
    "CREATE INDEX IF NOT EXISTS chatplane_runs_thread ON chatplane_runs (thread_id, created_at)",
    "CREATE INDEX IF NOT EXISTS chatplane_runs_status ON chatplane_runs (status, lease_until)",
    "CREATE INDEX IF NOT EXISTS chatplane_runs_owner ON chatplane_runs (owner, status)",
    """CREATE TABLE IF NOT EXISTS chatplane_api_keys (
        key_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT,
        secret_hash TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION
    )""",
]


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

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run ``statements`` in order in one transaction (all or nothing), in one trip to the database: for a
        request path whose statements do not depend on each other's results in Python (a later one may use an
        earlier one's effects in SQL). On PostgreSQL each statement still sees what others committed before it
        started (read committed), and a row lock one takes is held until the batch commits."""
        ...


_FLUSH_LATER: ContextVar[bool] = ContextVar("chatplane_flush_later", default=False)
_NO_FLUSH_WAIT = "SET LOCAL synchronous_commit TO off"


@contextmanager
def flushed_by_next_commit() -> Iterator[None]:
    """Within this block, PostgreSQL commits of ``execute`` and ``batch`` do not wait for their write-ahead log to
    reach the disk (``synchronous_commit`` off for those transactions only; SQLite is unchanged).

    For the writes a run makes while it runs (its checkpoint, its transcript), which are always followed by an
    ordinary commit — the run's outcome, ``RunManager.finish_run`` — before anyone is told the run finished. The log
    is sequential: flushing that commit flushes every write before it, so a finished run is as durable as before,
    and a turn waits for the disk twice (acceptance, outcome) instead of four times. What a crash of PostgreSQL
    itself (not of chatplane) can lose is at most the last fraction of a second of unfinished runs' progress, which
    the run's recovery redoes from its last durable checkpoint; nothing a client was told is lost."""
    token = _FLUSH_LATER.set(True)
    try:
        yield
    finally:
        _FLUSH_LATER.reset(token)


_HELD: ContextVar[HeldWrites | None] = ContextVar("chatplane_held_writes", default=None)


class HeldWrites:
    """Statements a run wrote, held back to commit in one transaction with the run's outcome
    (``RunManager.finish_run``): a turn's last checkpoint, and its move of earlier turns to the transcript, cost no
    trip of their own, and land together with the outcome or not at all. ``PooledPostgresSaver`` holds its writes
    while ``holding()`` is active, and releases everything held before it reads (so the run reads what it wrote);
    ``Transcript.append`` holds its insert when the run knows where the transcript ends."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self._writing = asyncio.Lock()

    @contextmanager
    def holding(self) -> Iterator[None]:
        token = _HELD.set(self)
        try:
            yield
        finally:
            _HELD.reset(token)

    def hold(self, statements: Sequence[Statement]) -> None:
        """Keep ``statements`` for the outcome's commit, after those held already (they run in order)."""
        self.statements.extend(statements)

    def take(self) -> list[Statement]:
        statements, self.statements = self.statements, []
        return statements

    @contextmanager
    def taken(self) -> Iterator[list[Statement]]:
        """What is held, taken to be written in the block; put back, ahead of anything held meanwhile, if the
        block fails (kept for the outcome's batch, or another outcome's)."""
        statements = self.take()
        try:
            yield statements
        except BaseException:
            self.statements[:0] = statements
            raise

    async def write(self, batch: Callable[[list[Statement]], Awaitable[object]]) -> None:
        """Write what is held now, as one ``batch``; what a failure leaves unwritten stays held, ahead of anything
        held meanwhile, for the outcome's batch. One write at a time: a second caller waits for the first (and then
        writes what was held meanwhile), so whoever reads next reads everything held before it asked."""
        async with self._writing:
            with self.taken() as statements:
                if statements:
                    await batch(statements)


def held_writes() -> HeldWrites | None:
    """The ``HeldWrites`` collecting this context's checkpoint writes, if any."""
    return _HELD.get()


def _integrity_error_types() -> tuple[type[BaseException], ...]:
    import sqlite3

    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


INTEGRITY_ERRORS = _integrity_error_types()
"""A row with that key exists already."""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(value: str | None) -> Any:
    return json.loads(value) if value else {}


def _sqlite_statement(conn: Any, sql: str, params: tuple[Any, ...]) -> Result:
    """In aiosqlite's thread: run one statement, return its rows and row count."""
    cursor = conn._conn.execute(sql, params)
    try:
        return [dict(row) for row in cursor.fetchall()], int(cursor.rowcount)
    finally:
        cursor.close()


def _sqlite_batch(conn: Any, statements: list[tuple[str, tuple[Any, ...]]]) -> list[Result]:
    """In aiosqlite's thread: ``statements`` in one transaction."""
    _sqlite_statement(conn, "BEGIN IMMEDIATE", ())
    try:
        results = [_sqlite_statement(conn, sql, params) for sql, params in statements]
    except BaseException:
        _sqlite_statement(conn, "ROLLBACK", ())
        raise
    _sqlite_statement(conn, "COMMIT", ())
    return results


class SqliteDatabase:
    """One aiosqlite connection in autocommit mode; a lock keeps each transaction's statements together.

    Each statement is one trip to aiosqlite's thread (``Connection._execute`` with a function that executes,
    fetches and closes), not the three of ``execute`` + ``fetchall`` + closing the cursor: every trip is a thread
    hand-over and a wake-up of the event loop.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    async def _statement(self, sql: str, params: Sequence[Any]) -> Result:
        result: Result = await self._conn._execute(_sqlite_statement, self._conn, sql.replace("%s", "?"), tuple(params))
        return result

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

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        prepared = [(sql.replace("%s", "?"), tuple(params)) for sql, params in statements]
        async with self._lock:
            results: list[Result] = await self._conn._execute(_sqlite_batch, self._conn, prepared)
        return results


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
            if _FLUSH_LATER.get():  # bound client-side, after a SET LOCAL, in one query
                return (await postgres_batch(conn, [(sql, params)]))[0]
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

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        async with self._pool.connection() as conn:
            return await postgres_batch(conn, statements)


async def postgres_batch(conn: Any, statements: Sequence[Statement]) -> list[Result]:
    """``statements`` on ``conn`` as one query string, their parameters bound client-side by psycopg's
    ``ClientCursor`` (quoted by libpq): PostgreSQL runs a multi-statement query as one transaction, skipping the rest
    and rolling back at the first error. One round trip and one wait; psycopg's pipeline mode, for comparison, costs
    more CPU than the statements one by one (its bookkeeping is Python). Inside ``flushed_by_next_commit`` the
    transaction starts with ``SET LOCAL synchronous_commit TO off``."""
    import psycopg

    cursor = psycopg.AsyncClientCursor(conn)
    bound = [cursor.mogrify(sql, tuple(params)).strip().rstrip(";") for sql, params in statements]
    flush_later = _FLUSH_LATER.get()
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


MIGRATIONS: list[list[str]] = [
    [],  # 1: the tables above
    [  # 2: the model a run used (usage by model); per-thread expiry (retention)
        "ALTER TABLE chatplane_runs ADD COLUMN model TEXT",
        "ALTER TABLE chatplane_threads ADD COLUMN expires_at DOUBLE PRECISION",
        "CREATE INDEX IF NOT EXISTS chatplane_threads_expiry ON chatplane_threads (expires_at)",
        "CREATE INDEX IF NOT EXISTS chatplane_runs_owner_time ON chatplane_runs (owner, created_at)",
    ],
    [  # 3: cancel requests that reach the worker running the run, in any process
        "ALTER TABLE chatplane_runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS chatplane_runs_worker ON chatplane_runs (worker, status)",
    ],
    [  # 4: the model a thread was created for (CHATPLANE_MODEL_ALLOWLIST); NULL = the server's model
        "ALTER TABLE chatplane_threads ADD COLUMN model TEXT",
    ],
    [  # 5: settled messages move out of the checkpoint into an append-only transcript (chatplane.transcript)
        """CREATE TABLE IF NOT EXISTS chatplane_messages (
            thread_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            data TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (thread_id, seq)
        )""",
        "CREATE UNIQUE INDEX IF NOT EXISTS chatplane_messages_id ON chatplane_messages (thread_id, message_id)",
    ],
    [  # 6: how many times a run was taken over after its worker was lost (CHATPLANE_RUN_MAX_RECOVERIES)
        "ALTER TABLE chatplane_runs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0",
    ],
]
"""Schema changes after the first release, in order; ``chatplane_schema`` records how many a database has had.
Append new steps; never edit a released one."""

SQLITE_CACHE_PRAGMA = "PRAGMA cache_size=-32768"
"""32 MiB of pages kept by each SQLite connection (the default is 2 MiB): a busy database's hot pages stay in the
process rather than in the operating system's cache, which a machine short of memory may drop at any time."""

_SCHEMA_LOCK = 0x63706C61  # advisory lock id: processes starting together migrate one at a time


async def create_schema(db: Database) -> None:
    """Create the tables and bring the database to the latest migration (idempotent, safe to race)."""
    async with db.transaction() as tx:
        if db.dialect == "postgres":
            await tx.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for statement in SCHEMA:
            await tx.execute(statement)
        await tx.execute("CREATE TABLE IF NOT EXISTS chatplane_schema (version INTEGER NOT NULL)")
        row = await tx.fetchone("SELECT max(version) AS version FROM chatplane_schema")
        current = int(row["version"]) if row and row["version"] is not None else 0
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            for statement in statements:
                await tx.execute(statement)
            await tx.execute("INSERT INTO chatplane_schema (version) VALUES (%s)", (version,))


@asynccontextmanager
async def open_sqlite_database(path: str, timeout_s: float) -> AsyncIterator[SqliteDatabase]:
    import aiosqlite

    async with aiosqlite.connect(path, timeout=timeout_s, isolation_level=None) as conn:
        conn.row_factory = aiosqlite.Row
        if path != ":memory:":
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute(SQLITE_CACHE_PRAGMA)
        db = SqliteDatabase(conn)
        await create_schema(db)
        yield db
