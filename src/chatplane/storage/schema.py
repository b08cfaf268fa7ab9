"""chatplane's own tables, their migrations, and opening the SQLite database that holds them.

``create_schema`` creates the tables and brings a database to the latest migration (idempotent, safe to race);
``MIGRATIONS`` lists the schema changes after the first release, in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chatplane.storage import item_versions, items
from chatplane.storage.database import Database, SqliteDatabase

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
    [  # 5: settled messages move out of the checkpoint into an append-only transcript (chatplane.storage.transcript)
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
    [  # 7: assistants (chatplane.storage.assistants): each one's current version, and every version it had
        """CREATE TABLE IF NOT EXISTS chatplane_assistants (
            owner TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            graph_id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            version INTEGER NOT NULL,
            latest_version INTEGER NOT NULL,
            config TEXT NOT NULL DEFAULT '{}',
            context TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (owner, assistant_id)
        )""",
        "CREATE INDEX IF NOT EXISTS chatplane_assistants_owner ON chatplane_assistants "
        "(owner, created_at, assistant_id)",
        "CREATE INDEX IF NOT EXISTS chatplane_assistants_graph ON chatplane_assistants (owner, graph_id, created_at)",
        """CREATE TABLE IF NOT EXISTS chatplane_assistant_versions (
            owner TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            graph_id TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            config TEXT NOT NULL DEFAULT '{}',
            context TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (owner, assistant_id, version)
        )""",
    ],
    [  # 8: idempotency keys (chatplane.storage.idempotency): the run each claimed key created
        """CREATE TABLE IF NOT EXISTS chatplane_idempotency (
            owner TEXT NOT NULL,
            idem_key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            run_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (owner, idem_key)
        )""",
        "CREATE INDEX IF NOT EXISTS chatplane_idempotency_created ON chatplane_idempotency (created_at)",
    ],
    [  # 9: a thread's active runs (read twice a turn) found without walking every run the thread ever had: the
        # (thread_id, created_at) index visits all of them, and a thread's 2,000th turn cost 3× its 10th on SQLite
        "CREATE INDEX IF NOT EXISTS chatplane_runs_thread_active ON chatplane_runs (thread_id, created_at) "
        "WHERE status IN ('pending', 'running', 'waiting')",
    ],
    [  # branches (chatplane.storage.branches): a branch's first row names its parent; a thread's head; forks
        "ALTER TABLE chatplane_messages ADD COLUMN parent_seq INTEGER",
        "CREATE INDEX IF NOT EXISTS chatplane_messages_branches ON chatplane_messages (thread_id, parent_seq) "
        "WHERE parent_seq IS NOT NULL",
        "ALTER TABLE chatplane_threads ADD COLUMN head INTEGER",
        """CREATE TABLE IF NOT EXISTS chatplane_fork_refs (
            thread_id TEXT PRIMARY KEY,
            fork_of TEXT NOT NULL,
            fork_head INTEGER NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS chatplane_fork_refs_source ON chatplane_fork_refs (fork_of)",
    ],
    [  # schedules and webhooks (chatplane.storage.schedules, chatplane.storage.webhooks)
        """CREATE TABLE IF NOT EXISTS chatplane_schedules (
            schedule_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            thread_id TEXT,
            schedule TEXT NOT NULL,
            timezone TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}',
            webhook TEXT,
            end_time DOUBLE PRECISION,
            enabled INTEGER NOT NULL DEFAULT 1,
            next_run_at DOUBLE PRECISION,
            last_run_id TEXT,
            last_tick DOUBLE PRECISION,
            last_error TEXT,
            worker TEXT,
            lease_until DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS chatplane_schedules_owner ON chatplane_schedules (owner, created_at, schedule_id)",
        "CREATE INDEX IF NOT EXISTS chatplane_schedules_due ON chatplane_schedules (next_run_at)",
        """CREATE TABLE IF NOT EXISTS chatplane_webhook_secrets (
            owner TEXT PRIMARY KEY,
            secret TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS chatplane_webhooks (
            run_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            url TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            next_attempt_at DOUBLE PRECISION,
            give_up_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION,
            worker TEXT,
            lease_until DOUBLE PRECISION
        )""",
        "CREATE INDEX IF NOT EXISTS chatplane_webhooks_due ON chatplane_webhooks (status, next_attempt_at)",
        """CREATE TABLE IF NOT EXISTS chatplane_webhook_attempts (
            run_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            url TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            status_code INTEGER,
            error TEXT,
            duration_ms INTEGER NOT NULL,
            PRIMARY KEY (run_id, attempt)
        )""",
    ],
    items.MIGRATION,  # the long-term store (chatplane.storage.items): per-user items, their TTL and embeddings
    item_versions.MIGRATION,  # each store owner's version, checked by a process's copy of their vectors
    [  # a run that starts no earlier than a time (LangGraph's ``after_seconds``): pending until then
        "ALTER TABLE chatplane_runs ADD COLUMN not_before DOUBLE PRECISION",
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
    """chatplane's connection to the SQLite file at ``path`` (WAL), its tables created and migrated."""
    async with SqliteDatabase.open(path, timeout_s) as db:
        if path != ":memory:":
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute(SQLITE_CACHE_PRAGMA)
        await create_schema(db)
        yield db
