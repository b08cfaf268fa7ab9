"""Storage: URLs, PostgreSQL reconnection after its connections die, outages as 503s, the pooled saver."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg_pool import AsyncConnectionPool

from chatplane import ProductionAgent
from chatplane.errors import ConfigError, StorageUnavailableError
from chatplane.storage import postgres_saver as pg_saver
from chatplane.storage.engine import check_pooled_connection, open_storage, redact_url, sqlite_path, storage_kind
from chatplane.storage.postgres_saver import PooledPostgresSaver
from chatplane.storage.prefetch import PrefetchedCheckpoint
from chatplane.storage.unit_of_work import HeldWrites, Turn
from tests.conftest import make_settings
from tests.tcp_proxy import TcpProxy


def test_storage_urls() -> None:
    assert storage_kind("memory://") == "memory"
    assert storage_kind("sqlite:///./data/x.db") == "sqlite"
    assert storage_kind("postgres://u@h/db") == "postgres"
    assert sqlite_path("sqlite:///./data/x.db") == "./data/x.db"
    assert sqlite_path("sqlite:////abs/x.db") == "/abs/x.db"
    assert redact_url("postgresql://u:hunter2@h:5432/db") == "postgresql://u:***@h:5432/db"
    with pytest.raises(ConfigError):
        sqlite_path("sqlite://")
    with pytest.raises(ValueError, match="storage_url"):
        make_settings(storage_url="mysql://x")


async def test_sqlite_creates_its_folder(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/nested/deeper/chat.db"
    async with open_storage(make_settings(storage_url=url)) as storage:
        assert storage.kind == "sqlite"
        assert await storage.ping()
    assert (tmp_path / "nested" / "deeper" / "chat.db").exists()


@pytest.mark.postgres
async def test_postgres_survives_its_connections_being_killed(pg_url: str) -> None:
    """What a PostgreSQL restart does to a pool: every connection dies. The next request must still work."""
    async with ProductionAgent(settings=make_settings(storage_url=pg_url, pg_pool_min_size=2)) as agent:
        assert await agent.achat("alice", "before") == "echo: before"
        dbname = urlsplit(pg_url).path.lstrip("/")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            pids = [
                row[0]
                for row in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
                ).fetchall()
            ]
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM unnest(%s::int[]) AS pid", (pids,))
            assert (killed.fetchone() or [0])[0] >= 1
            # As after a restart: the backends are gone (pg_terminate_backend only signals them).
            await wait_until_gone(admin, pids)
        assert await agent.achat("alice", "after") == "echo: after"
        assert [m.text for m in await agent.aget_history("session-alice")] == [
            "before",
            "echo: before",
            "after",
            "echo: after",
        ]


@pytest.mark.postgres
async def test_pool_check_asks_the_server_only_about_doubtful_connections(pg_url: str, monkeypatch) -> None:
    asked: list[object] = []
    full_check = AsyncConnectionPool.check_connection

    async def counted(conn: psycopg.AsyncConnection) -> None:
        asked.append(conn)
        await full_check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    await check_pooled_connection(conn)  # idle, nothing to read: handed out as it is
    assert asked == []
    async with conn.transaction():  # a transaction left open: asked
        await check_pooled_connection(conn)
    assert len(asked) == 1
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        await wait_until_gone(admin, [conn.info.backend_pid])
    with pytest.raises(psycopg.OperationalError):  # killed: its socket is readable, the full check fails
        await check_pooled_connection(conn)
    assert len(asked) == 2
    await conn.close()


async def wait_until_gone(admin: psycopg.Connection, pids: list[int]) -> None:
    for _ in range(100):
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()
        if row is not None and row[0] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the terminated backends did not exit")


@pytest.mark.postgres
async def test_postgres_outage_gives_503_then_recovers_without_restart(pg_url: str, client_for) -> None:
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    client = await client_for(make_settings(storage_url=proxied, storage_timeout_s=1.0))
    assert (await client.post("/chat", json={"user_id": "a", "message": "one"})).status_code == 200

    await proxy.cut()
    down = await client.post("/chat", json={"user_id": "a", "message": "while down"})
    assert down.status_code == 503
    assert down.json() == {
        "error": {"code": "storage_unavailable", "message": "Storage is unavailable. Try again shortly."}
    }
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"] is False

    await proxy.start()  # the database is back, on the same port
    for _ in range(50):
        if (await client.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.1)
    again = await client.post("/chat", json={"user_id": "a", "message": "two"})
    assert again.status_code == 200
    history = (await client.get("/history/session-a")).json()["messages"]
    assert history[:2] == ["one", "echo: one"]
    assert history[-2:] == ["two", "echo: two"]
    await proxy.cut()


async def test_unreachable_postgres_at_start_is_a_clear_error() -> None:
    settings = make_settings(storage_url="postgresql://u:hunter2@127.0.0.1:9/db", storage_timeout_s=0.5)
    with pytest.raises(StorageUnavailableError) as raised:
        async with open_storage(settings):
            pass
    assert "127.0.0.1:9" in raised.value.message
    assert "hunter2" not in raised.value.message


@pytest.mark.postgres
async def test_a_blocked_checkpoint_write_does_not_hold_up_other_threads(pg_url: str) -> None:
    """chatplane's PostgreSQL saver has no process-wide lock (upstream's serialises every checkpoint operation)."""
    async with open_storage(make_settings(storage_url=pg_url)) as storage:
        saver = storage.checkpointer
        assert isinstance(saver, PooledPostgresSaver)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": ["a message kept as a blob"]}
        checkpoint["channel_versions"] = {"messages": 1}
        config = {"configurable": {"thread_id": "blocked", "checkpoint_ns": ""}}
        with psycopg.connect(pg_url) as admin:  # a transaction holding the blobs table against writers
            admin.execute("LOCK TABLE checkpoint_blobs IN EXCLUSIVE MODE")
            write = asyncio.create_task(saver.aput(config, checkpoint, {}, {"messages": 1}))
            for _ in range(100):  # until the write waits for the lock
                row = admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
                if row is not None and row[0]:
                    break
                await asyncio.sleep(0.05)
            other = {"configurable": {"thread_id": "other", "checkpoint_ns": ""}}
            assert await asyncio.wait_for(saver.aget_tuple(other), timeout=10) is None
            assert not write.done()
            admin.rollback()
        await write
        stored = await saver.aget_tuple({"configurable": {"thread_id": "blocked", "checkpoint_ns": ""}})
        assert stored is not None
        assert stored.checkpoint["channel_values"]["messages"] == ["a message kept as a blob"]


@pytest.mark.postgres
async def test_a_checkpoint_written_in_one_query_reads_back_exactly(pg_url: str) -> None:
    """The saver sends blobs and the checkpoint row as one query bound client-side: quotes, backslashes, NUL bytes,
    percent signs and non-ASCII text come back as they went in, and a failed write leaves nothing half-written."""
    awkward = 'it\'s 100% \\ "quoted" \u00e9t\u00e9 \U0001f680 %s %(x)s ;DROP TABLE checkpoints;--'
    async with open_storage(make_settings(storage_url=pg_url)) as storage:
        saver = storage.checkpointer
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": [awkward, b"\x00\x01'\\\xff"], "note": awkward}
        checkpoint["channel_versions"] = {"messages": 1, "note": 1}
        config = {"configurable": {"thread_id": "awkward", "checkpoint_ns": ""}}
        await saver.aput(config, checkpoint, {"source": awkward}, {"messages": 1, "note": 1})
        stored = await saver.aget_tuple(config)
        assert stored is not None
        assert stored.checkpoint["channel_values"] == {"messages": [awkward, b"\x00\x01'\\\xff"], "note": awkward}
        assert stored.metadata["source"] == awkward

        broken = empty_checkpoint()
        # PostgreSQL's jsonb refuses NUL: the checkpoint row (where strings stay inline) fails after the blob's.
        broken["channel_values"] = {"messages": ["never stored"], "title": "a\u0000b"}
        broken["channel_versions"] = {"messages": 1, "title": 1}
        with pytest.raises(psycopg.Error):
            await saver.aput(
                {"configurable": {"thread_id": "broken", "checkpoint_ns": ""}}, broken, {}, {"messages": 1}
            )
        with psycopg.connect(pg_url) as admin:
            row = admin.execute("SELECT count(*) FROM checkpoint_blobs WHERE thread_id = 'broken'").fetchone()
        assert row == (0,)


def _opening_turns(storage: Any, opened: contextlib.ExitStack, running_id: str) -> Any:
    """``prefetch(thread_id, run_id, held)``: what the saver's ``latest_statements`` read in a batch, in a new turn
    of run ``run_id`` open on thread "prefetched" (the previous one closed, on ``opened``); the run's config."""

    async def prefetch(
        thread_id: str = "prefetched", run_id: str = running_id, held: HeldWrites | None = None
    ) -> dict[str, Any]:
        results = await storage.db.batch(storage.checkpointer.latest_statements(thread_id, run_id))
        turn = Turn(run_id, "prefetched", held=held, prefetched=PrefetchedCheckpoint(thread_id, *results))
        opened.close()
        opened.enter_context(storage.turns.running(turn))
        return {"configurable": {"thread_id": "prefetched", "checkpoint_ns": ""}}

    return prefetch


async def _answered_once_then_from_the_database(saver: Any, prefetch: Any, expected: Any, reads: list[Any]) -> None:
    """The run's first read is answered with the prefetched rows (``reads``: the saver's own reads, none yet);
    a second read, a subgraph's, one of a given checkpoint and one of another thread go to the database."""
    run_config = await prefetch()
    assert await saver.aget_tuple(run_config) == expected
    assert reads == []
    assert await saver.aget_tuple(run_config) == expected  # the second read: the database's
    assert len(reads) == 1
    for other in (
        {"checkpoint_ns": "supervisor:1"},
        {"checkpoint_id": expected.config["configurable"]["checkpoint_id"]},
        {"thread_id": "another"},
    ):
        run_config = await prefetch()
        await saver.aget_tuple({"configurable": {**run_config["configurable"], **other}})
        assert reads[-1] == {**run_config["configurable"], **other}


@pytest.mark.postgres
async def test_a_checkpoint_read_in_another_batch_is_the_one_the_saver_reads(pg_url: str) -> None:
    """``latest_checkpoint_statement`` run in a batch (bound client-side, text results) gives the run's first read
    exactly what the saver reads itself — blobs with awkward bytes, pending writes or none, the parent — once, and
    only for a run that is running; a second read, a subgraph's, one of a given checkpoint, one of another thread,
    or one after the run wrote goes to the database."""
    from chatplane.storage.runs import RunStore

    awkward = 'it\'s 100% \\ "quoted" \u00e9t\u00e9 \U0001f680 %s ;--'
    async with open_storage(make_settings(storage_url=pg_url)) as storage:
        saver, runs = storage.checkpointer, RunStore(storage.db)
        config = {"configurable": {"thread_id": "prefetched", "checkpoint_ns": ""}}
        queued = await runs.create("prefetched", "alice", "chat", {}, "enqueue")
        running = await runs.create("prefetched", "alice", "chat", {}, "reject", claim_for=("here", 1e12))

        opened = contextlib.ExitStack()
        prefetch = _opening_turns(storage, opened, running.run_id)

        assert await saver.aget_tuple(await prefetch()) is None  # a new thread: no checkpoint yet
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": [awkward, b"\x00\x01'\\\xff"], "notes": {"k": awkward}}
        checkpoint["channel_versions"] = {"messages": 1, "notes": 1}
        stored = await saver.aput(config, checkpoint, {"source": awkward}, {"messages": 1, "notes": 1})
        await saver.aput_writes(stored, [("messages", [awkward]), ("notes", b"\x00")], "task-1")
        expected = await saver.aget_tuple(config)
        assert expected is not None and expected.pending_writes and expected.parent_config is None

        reads: list[dict[str, Any]] = []
        upstream = pg_saver.AsyncPostgresSaver.aget_tuple

        async def counted(self: Any, config: Any) -> Any:
            reads.append(config["configurable"])
            return await upstream(self, config)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pg_saver.AsyncPostgresSaver, "aget_tuple", counted)
            await _answered_once_then_from_the_database(saver, prefetch, expected, reads)
            held = HeldWrites()
            run_config = await prefetch(held=held)
            await saver.aput_writes(stored, [("notes", "later")], "task-2")
            assert held.statements
            assert (await saver.aget_tuple(run_config)).pending_writes != expected.pending_writes
            opened.close()
            assert len(reads) == 5

            # A child without pending writes, in an old format (v2, as langgraph.checkpoint.base still makes):
            # upstream migrates its parent's pending sends as it reads it, so it goes to the database.
            later = empty_checkpoint()
            later["channel_values"] = {"messages": ["next"], "notes": {"k": "v"}}
            later["channel_versions"] = {"messages": 2, "notes": 1}
            assert later["v"] < 4
            stored = await saver.aput(stored, later, {}, {"messages": 2})
            expected = await upstream(saver, config)
            assert expected is not None and expected.parent_config is not None and not expected.pending_writes
            assert await saver.aget_tuple(await prefetch()) == expected
            assert len(reads) == 6
            latest = {**empty_checkpoint(), "v": 4}  # LangGraph's own, with a parent: from the prefetched row
            latest["channel_values"] = {"messages": ["last"], "notes": {"k": "w"}}
            latest["channel_versions"] = {"messages": 3, "notes": 2}
            await saver.aput(stored, latest, {}, {"messages": 3, "notes": 2})
            expected = await upstream(saver, config)
            assert expected is not None and expected.parent_config is not None and not expected.pending_writes
            assert await saver.aget_tuple(await prefetch()) == expected
            assert len(reads) == 6
        opened.close()
        # Read for a run that did not start (it waits its turn): nothing comes back.
        [result] = await storage.db.batch([pg_saver.latest_checkpoint_statement("prefetched", queued.run_id)])
        assert result == ([], 0)


async def test_a_checkpoint_read_in_the_accept_batch_is_the_one_the_sqlite_saver_reads(tmp_path) -> None:
    """SQLite: ``latest_statements`` run in a batch on chatplane's connection give the run's first read exactly
    what upstream's saver reads on its own — checkpoint, metadata, pending writes (their order and task paths) or
    none, the parent — once, and only for a run that is running; other reads go to the database."""
    from chatplane.storage.runs import RunStore
    from chatplane.storage.sqlite_saver import BatchingSqliteSaver

    awkward = 'it\'s 100% \\ "quoted" \u00e9t\u00e9 \U0001f680 %s ? ;--'
    async with open_storage(make_settings(storage_url=f"sqlite:///{tmp_path}/c.db")) as storage:
        saver, runs = storage.checkpointer, RunStore(storage.db)
        assert isinstance(saver, BatchingSqliteSaver)
        config = {"configurable": {"thread_id": "prefetched", "checkpoint_ns": ""}}
        queued = await runs.create("prefetched", "alice", "chat", {}, "enqueue")
        running = await runs.create("prefetched", "alice", "chat", {}, "reject", claim_for=("here", 1e12))

        opened = contextlib.ExitStack()
        prefetch = _opening_turns(storage, opened, running.run_id)

        assert await saver.aget_tuple(await prefetch()) is None  # a new thread: no checkpoint yet
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": [awkward, b"\x00\x01'\\\xff"], "notes": {"k": awkward}}
        checkpoint["channel_versions"] = {"messages": 1, "notes": 1}
        stored = await saver.aput(config, checkpoint, {"source": awkward}, {"messages": 1, "notes": 1})
        await saver.aput_writes(stored, [("messages", [awkward]), ("notes", b"\x00")], "task-2", "~1")
        await saver.aput_writes(stored, [("notes", "first")], "task-1", "~0")
        expected = await AsyncSqliteSaver.aget_tuple(saver, config)
        assert expected is not None and len(expected.pending_writes) == 3 and expected.parent_config is None

        reads: list[dict[str, Any]] = []

        async def counted(self: Any, config: Any) -> Any:
            reads.append(config["configurable"])
            return await upstream(self, config)

        upstream = AsyncSqliteSaver.aget_tuple
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(AsyncSqliteSaver, "aget_tuple", counted)
            await _answered_once_then_from_the_database(saver, prefetch, expected, reads)
            later = empty_checkpoint()  # a child, without pending writes
            later["channel_values"] = {"messages": ["next"], "notes": {"k": "v"}}
            later["channel_versions"] = {"messages": 2, "notes": 1}
            await saver.aput(stored, later, {}, {"messages": 2})
            expected = await upstream(saver, config)
            assert expected is not None and expected.parent_config is not None and not expected.pending_writes
            assert await saver.aget_tuple(await prefetch()) == expected
            assert len(reads) == 4
        opened.close()
        # Read for a run that did not start (it waits its turn): nothing comes back.
        results = await storage.db.batch(saver.latest_statements("prefetched", queued.run_id))
        assert [rows for rows, _ in results] == [[], []]


async def test_a_runs_first_checkpoint_read_comes_with_its_acceptance(persistent_storage_url: str, monkeypatch) -> None:
    """A run claimed as it is accepted starts from the checkpoint read in the same batch: a turn makes no read of
    its own, and the thread goes on exactly (earlier turns moved to the transcript, history whole)."""
    reads: list[str] = []
    upstream_saver = AsyncSqliteSaver if persistent_storage_url.startswith("sqlite") else pg_saver.AsyncPostgresSaver
    upstream = upstream_saver.aget_tuple

    async def counted(self: Any, config: Any) -> Any:
        reads.append(config["configurable"]["thread_id"])
        return await upstream(self, config)

    monkeypatch.setattr(upstream_saver, "aget_tuple", counted)
    async with ProductionAgent(settings=make_settings(storage_url=persistent_storage_url)) as agent:
        for text in ("first", "second", "third"):
            assert await agent.achat("alice", text) == f"echo: {text}"
        assert reads == []
        history = [m.text for m in await agent.aget_history("session-alice")]
        assert history == ["first", "echo: first", "second", "echo: second", "third", "echo: third"]
        assert await agent.transcript.count("session-alice") == 4


@pytest.mark.postgres
async def test_writes_inside_a_run_do_not_wait_for_the_disk_and_others_do(pg_url: str) -> None:
    """``batch(flush_later=True)`` (a run's writes while it runs, ``storage.unit_of_work``): PostgreSQL commits it
    without waiting for the log flush (a later ordinary commit, the run's outcome, flushes it); everywhere else
    commits wait, as PostgreSQL's default."""
    setting = "SELECT current_setting('synchronous_commit') AS s"
    async with open_storage(make_settings(storage_url=pg_url)) as storage:
        db = storage.db
        assert await db.fetchone(setting) == {"s": "on"}
        assert (await db.batch([(setting, ())], flush_later=True))[0][0] == [{"s": "off"}]
        assert (await db.batch([(setting, ()), (setting, ())], flush_later=True))[1][0] == [{"s": "off"}]
        update = ("UPDATE chatplane_threads SET title = %s", ("x",))
        assert (await db.batch([update], flush_later=True))[0][1] == 0
        assert (await db.batch([(setting, ())]))[0][0] == [{"s": "on"}]
        assert await db.fetchone(setting) == {"s": "on"}  # the SET was LOCAL: no pooled connection kept it


@pytest.mark.postgres
async def test_every_acceptance_and_outcome_waits_for_the_disk(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a run whose caller waits for the whole answer (told nothing before the outcome) is accepted with a
    flushed commit: if a crash of PostgreSQL took the acceptance back, a database back before the run ended would
    take its turn without the run's row. Outcomes wait for the disk too; only what a run writes meanwhile does not."""
    import chatplane.storage.database

    upstream = chatplane.storage.database.postgres_batch
    accepts: list[bool] = []  # per acceptance: did its commit skip the wait for the disk?
    outcomes: list[bool] = []

    async def recorded(conn: Any, statements: Any, *, flush_later: bool = False) -> Any:
        sql = " ".join(s for s, _ in statements)
        flushed_later = flush_later
        if "INSERT INTO chatplane_runs" in sql:
            accepts.append(flushed_later)
        elif "UPDATE chatplane_runs SET status" in sql:
            outcomes.append(flushed_later)
        return await upstream(conn, statements, flush_later=flush_later)

    monkeypatch.setattr(chatplane.storage.database, "postgres_batch", recorded)
    async with ProductionAgent(settings=make_settings(storage_url=pg_url)) as agent:
        assert await agent.achat("alice", "waited") == "echo: waited"
        thread = await agent.threads.create("alice", "chat")
        streamed = await agent.runs.submit(thread, "told at once", user_id="alice", multitask="reject")
        await agent.runs.outcome(streamed.run_id)
    assert len(accepts) >= 2 and not any(accepts)  # (the chat's first try finds no thread yet, and creates it)
    assert outcomes == [False, False]


def _count(storage_url: str, sql: str) -> int:
    """``SELECT count(*) …`` on a connection of its own (what another process would see)."""
    if storage_url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(sqlite_path(storage_url))) as conn:
            return int(conn.execute(sql).fetchone()[0])
    with psycopg.connect(storage_url) as admin:
        row = admin.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


async def test_held_checkpoint_writes_wait_for_the_outcome_and_a_read_writes_them_first(
    persistent_storage_url: str,
) -> None:
    """While a run's turn is open and holds its writes, the saver's writes are held for the run's outcome to commit
    with; a read through the saver writes them first, so a run always reads what it wrote."""
    url = persistent_storage_url
    writes_table = "writes" if url.startswith("sqlite") else "checkpoint_writes"
    async with open_storage(make_settings(storage_url=url)) as storage:
        saver = storage.checkpointer
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": ["held back"]}
        checkpoint["channel_versions"] = {"messages": 1}
        config = {"configurable": {"thread_id": "held", "checkpoint_ns": ""}}
        held = HeldWrites()
        with storage.turns.running(Turn("run-1", "held", held=held)):
            await saver.aput(config, checkpoint, {}, {"messages": 1})
            assert held.statements
            assert _count(url, "SELECT count(*) FROM checkpoints WHERE thread_id = 'held'") == 0
            stored = await saver.aget_tuple(config)
            assert stored is not None and stored.checkpoint["channel_values"]["messages"] == ["held back"]
            assert not held.statements
            await saver.aput_writes(stored.config, [("messages", ["pending"])], "task-1")
            assert _count(url, f"SELECT count(*) FROM {writes_table} WHERE thread_id = 'held'") == 0
        await storage.db.batch(held.take())  # what the run's outcome does
        stored = await saver.aget_tuple(config)
        assert stored is not None and [w[1:] for w in stored.pending_writes] == [("messages", ["pending"])]


async def test_a_runs_answer_lands_in_the_thread_only_with_its_outcome(
    persistent_storage_url: str, monkeypatch
) -> None:
    """The run's last checkpoint, and its move of earlier turns to the transcript, commit in the transaction that
    records its outcome: when no outcome can be recorded, the thread is as it was (the run stays unfinished, for
    recovery to redo), never half-changed."""
    import asyncio

    from chatplane.storage.runs import RunStore

    refused = ("SELECT * FROM chatplane_no_such_table", ())  # an error on both databases
    settings = make_settings(storage_url=persistent_storage_url, storage_timeout_s=0.2)  # retries: 3 of these
    async with ProductionAgent(settings=settings) as agent:
        assert await agent.achat("alice", "first") == "echo: first"
        assert await agent.achat("alice", "second") == "echo: second"  # moves the first turn to the transcript
        assert await agent.transcript.count("session-alice") == 2
        monkeypatch.setattr(RunStore, "finish_statement", staticmethod(lambda *a, **k: refused))
        third = asyncio.create_task(agent.achat("alice", "third"))  # would move the second turn there too
        for _ in range(200):  # until its task gave up recording the outcome (it is left for recovery)
            await asyncio.sleep(0.05)
            rows = await agent.storage.runs.db.fetchall("SELECT status FROM chatplane_runs")
            if len(rows) == 3 and not agent.runs.executor.executing():
                break
        monkeypatch.undo()
        third.cancel()  # its outcome comes from recovery, once the lease runs out: not waited for here
        history = [m.text for m in await agent.aget_history("session-alice")]
        assert history == ["first", "echo: first", "second", "echo: second"]
        assert await agent.transcript.count("session-alice") == 2  # the move is held with the outcome: not made
        rows = await agent.storage.runs.db.fetchall("SELECT status FROM chatplane_runs ORDER BY created_at")
        assert [r["status"] for r in rows] == ["succeeded", "succeeded", "running"]


async def test_a_cancelled_run_keeps_its_message_and_partial_answer(persistent_storage_url: str) -> None:
    """Cancelling a run mid-answer writes the checkpoint it stopped at (held for its outcome) before the partial
    answer joins it: the thread keeps the user's message and the words so far, and goes on normally."""
    words = " ".join(f"word{i}" for i in range(60))
    settings = make_settings(storage_url=persistent_storage_url, model=f"fake:{words}?token_delay=0.05")
    async with ProductionAgent(settings=settings) as agent:
        thread = await agent.threads.create("alice", "chat")
        run = await agent.runs.submit(thread, "go", user_id="alice", multitask="reject")
        tokens = 0
        async for event in agent.runs.subscribe(run.run_id):
            if event.type == "token":
                tokens += 1
                if tokens == 5:
                    await agent.runs.cancel(run)
            last = event
        assert last.type == "run_cancelled"
        history = await agent.for_user(thread.owner).threads.messages(thread)
        assert [m.type for m in history] == ["human", "ai"]
        assert history[0].text == "go"
        assert words.startswith(history[1].text) and 5 <= len(history[1].text.split()) < 60
        again = await agent.runs.submit(thread, "again", user_id="alice", multitask="reject")
        await agent.runs.wait(again.run_id)
        assert [m.text for m in await agent.for_user(thread.owner).threads.messages(thread)][2:] == ["again", words]


async def test_a_run_cancelled_while_handing_on_an_event_keeps_its_message(persistent_storage_url: str) -> None:
    """A cancel can land while the run hands an event on (to Redis, with several processes) rather than inside
    LangGraph: the graph is closed at once all the same, so where the run stopped is written, with the user's
    message, before the cancel is recorded — not when the abandoned stream is collected, too late and elsewhere."""
    words = " ".join(f"word{i}" for i in range(60))
    settings = make_settings(storage_url=persistent_storage_url, model=f"fake:{words}?token_delay=0.01")
    async with ProductionAgent(settings=settings) as agent:
        append, handing_on = agent.runs.events.append, asyncio.Event()

        async def slow_append(run_id: str, type: Any, data: Any = None) -> Any:
            event = await append(run_id, type, data)
            if type == "token":
                handing_on.set()
                await asyncio.sleep(0.05)  # where the cancel lands
            return event

        agent.runs.events.append = slow_append  # type: ignore[method-assign]
        thread = await agent.threads.create("alice", "chat")
        run = await agent.runs.submit(thread, "go", user_id="alice", multitask="reject")
        await handing_on.wait()
        assert (await agent.runs.cancel(run)).status == "cancelled"
        history = await agent.for_user(thread.owner).threads.messages(thread)
        assert [m.type for m in history] == ["human", "ai"] and history[0].text == "go"
        assert words.startswith(history[1].text)
        agent.runs.events.append = append  # type: ignore[method-assign]
        again = await agent.runs.submit(thread, "again", user_id="alice", multitask="reject")
        await agent.runs.wait(again.run_id)
        assert [m.text for m in await agent.for_user(thread.owner).threads.messages(thread)][2:] == ["again", words]


def test_the_saver_copy_matches_the_installed_upstream_release() -> None:
    """``PooledPostgresSaver``'s ``aput``, ``aput_writes``, ``_load_checkpoint_tuple`` and the prefetched read
    (``latest_checkpoint_statement``), and ``BatchingSqliteSaver``'s prefetched read, are copies of upstream's:
    upgrading langgraph-checkpoint-postgres or -sqlite means comparing them with the new release's and updating
    ``UPSTREAM_VERSION``."""
    from importlib.metadata import version

    from chatplane.storage import sqlite_saver

    assert version("langgraph-checkpoint-postgres") == pg_saver.UPSTREAM_VERSION
    assert version("langgraph-checkpoint-sqlite") == sqlite_saver.UPSTREAM_VERSION


async def test_a_batch_is_all_or_nothing_on_both_databases(persistent_storage_url: str) -> None:
    """``Database.batch``: every statement's rows and row count in order; a failing statement undoes the others."""
    from chatplane.storage.database import INTEGRITY_ERRORS
    from chatplane.storage.threads import ThreadStore

    async with open_storage(make_settings(storage_url=persistent_storage_url)) as storage:
        threads = ThreadStore(storage.db)
        await threads.create("alice", "chat", thread_id="first")
        await threads.create("alice", "chat", thread_id="second")
        results = await storage.db.batch(
            [
                ("UPDATE chatplane_threads SET title = %s WHERE owner = %s", ("both", "alice")),
                ("SELECT thread_id FROM chatplane_threads WHERE title = %s ORDER BY thread_id", ("both",)),
            ]
        )
        assert results[0] == ([], 2)
        assert results[1][0] == [{"thread_id": "first"}, {"thread_id": "second"}]

        duplicate = (
            "INSERT INTO chatplane_threads (thread_id, owner, agent, metadata, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            ("second", "bob", "chat", "{}", 0, 0),
        )
        with pytest.raises(INTEGRITY_ERRORS):
            await storage.db.batch([("UPDATE chatplane_threads SET title = %s", ("lost",)), duplicate])
        assert (await threads.get("first", "alice")).title == "both"


async def test_a_database_of_an_earlier_release_is_migrated_with_its_runs_kept(
    persistent_storage_url: str, monkeypatch
) -> None:
    """A database made by an earlier release (fewer migrations applied) gets the later ones on start; what it
    holds is kept, and the runs it had start with no recoveries counted."""
    from chatplane.storage import schema as chatplane_db
    from chatplane.storage.runs import Run

    settings = make_settings(storage_url=persistent_storage_url)
    with monkeypatch.context() as patch:
        patch.setattr(chatplane_db, "MIGRATIONS", chatplane_db.MIGRATIONS[:5])  # the release before `recoveries`
        async with open_storage(settings) as storage:
            old = Run.new("t-1", "alice", "chat", {"message": "hi"}, "reject")
            await storage.db.execute(  # as that release wrote it: only the columns it had
                "INSERT INTO chatplane_runs (run_id, thread_id, owner, agent, status, multitask, input, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (old.run_id, "t-1", "alice", "chat", "pending", "reject", '{"message": "hi"}', old.created_at),
            )
            assert await storage.db.fetchone("SELECT max(version) AS v FROM chatplane_schema") == {"v": 5}
    async with open_storage(settings) as storage:
        assert await storage.db.fetchone("SELECT max(version) AS v FROM chatplane_schema") == {
            "v": len(chatplane_db.MIGRATIONS)
        }
        row = await storage.db.fetchone(
            "SELECT status, recoveries, not_before FROM chatplane_runs WHERE run_id = %s", (old.run_id,)
        )
        assert row == {"status": "pending", "recoveries": 0, "not_before": None}


async def test_an_in_memory_sqlite_url_still_works() -> None:
    """``sqlite:///:memory:``: the saver's database is not chatplane's (each connection has its own), so it keeps
    upstream's saver — no read or write of checkpoints in chatplane's batches — and a thread goes on as usual."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with ProductionAgent(settings=make_settings(storage_url="sqlite:///:memory:")) as agent:
        assert type(agent._storage.checkpointer) is AsyncSqliteSaver
        assert await agent.achat("alice", "first") == "echo: first"
        assert await agent.achat("alice", "second") == "echo: second"
        assert [m.text for m in await agent.aget_history("session-alice")] == [
            "first",
            "echo: first",
            "second",
            "echo: second",
        ]


async def test_writes_held_while_held_writes_are_written_are_kept_and_a_second_writer_waits() -> None:
    """``HeldWrites.write``: what is held while a write is under way stays held (behind it, in order) rather than
    being forgotten with it; a second writer waits for the first, then writes what was held meanwhile; a failed
    write keeps its statements, ahead of anything held since."""
    held = HeldWrites()
    held.hold([("a", ())])
    written: list[list[str]] = []
    first_started, release_first = asyncio.Event(), asyncio.Event()

    async def batch(statements: list[Any]) -> None:
        if not written:
            first_started.set()
            await release_first.wait()
        written.append([sql for sql, _ in statements])

    first = asyncio.create_task(held.write(batch))
    await first_started.wait()
    held.hold([("b", ())])  # while "a" is being written
    second = asyncio.create_task(held.write(batch))
    await asyncio.sleep(0.01)
    assert written == []  # the second writer waits for the first
    release_first.set()
    await asyncio.gather(first, second)
    assert written == [["a"], ["b"]] and held.statements == []

    async def failing(statements: list[Any]) -> None:
        held.hold([("d", ())])
        raise RuntimeError("database gone")

    held.hold([("c", ())])
    with pytest.raises(RuntimeError):
        await held.write(failing)
    assert [sql for sql, _ in held.statements] == ["c", "d"]


def test_a_prefetched_checkpoint_is_forgotten_once_the_run_has_written() -> None:
    """Once the run holds writes, its prefetched checkpoint is stale for good: refused then, and after those
    writes are written too."""
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    held = HeldWrites()
    turn = Turn("r", "t", held=held, prefetched=PrefetchedCheckpoint("t", ([], 0)))
    held.hold([("INSERT …", ())])
    assert turn.first_read(config) is None
    held.take()
    assert turn.first_read(config) is None
    assert Turn("r", "t", held=HeldWrites(), prefetched=PrefetchedCheckpoint("t", ([], 0))).first_read(config) == (
        ([], 0),
    )


async def test_a_threads_active_runs_are_found_without_walking_its_finished_ones(persistent_storage_url: str) -> None:
    """Read twice a turn (accepting a run, finishing one): the plan uses the index of active runs only, so a thread's
    2,000th turn costs what its 10th does (``benchmarks.long_thread``)."""
    from chatplane.storage.runs import RunStore

    async with open_storage(make_settings(storage_url=persistent_storage_url)) as storage:
        sql, params = RunStore.active_statement("some-thread")
        if storage.kind == "postgres":
            async with storage.db.transaction() as tx:  # a tiny table is read whole: ask for the index's plan
                await tx.execute("SET LOCAL enable_seqscan = off")
                rows = await tx.fetchall("EXPLAIN " + sql, params)
            plan = " ".join(str(next(iter(r.values()))) for r in rows)
        else:
            rows = await storage.db.fetchall("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(r["detail"]) for r in rows)
        assert "chatplane_runs_thread_active" in plan
