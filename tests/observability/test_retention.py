"""Retention: prune deletes old and expired threads and superseded checkpoints — and nothing else."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatplane.agent import ProductionAgent
from chatplane.llm.fake import ScriptedChatModel
from chatplane.retention import PRUNE_LOCK, RetentionJob, parse_duration, prune, prune_once
from chatplane.storage.engine import Storage
from tests.agents.test_multi import two_specialists_script
from tests.conftest import make_settings
from tests.observability.helpers import scrape

DAY = 86400.0


def _tables(storage: Storage) -> dict[str, str]:
    if storage.kind == "postgres":
        return {"checkpoints": "checkpoints", "writes": "checkpoint_writes", "blobs": "checkpoint_blobs"}
    return {"checkpoints": "checkpoints", "writes": "writes"}


async def footprint(storage: Storage, thread_id: str) -> dict[str, Any]:
    """Everything stored for a thread: registry row, run records, and rows of each checkpointer table."""
    db = storage.db
    found: dict[str, Any] = {
        "thread": await db.fetchone("SELECT thread_id FROM chatplane_threads WHERE thread_id = %s", (thread_id,))
        is not None,
        "runs": (await db.fetchone("SELECT count(*) AS n FROM chatplane_runs WHERE thread_id = %s", (thread_id,)))["n"],
    }
    for kind, table in _tables(storage).items():
        row = await db.fetchone(f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", (thread_id,))
        found[kind] = int(row["n"])
    rows = await db.fetchall("SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id = %s", (thread_id,))
    found["namespaces"] = sorted(r["checkpoint_ns"] for r in rows)
    return {k: int(v) if k == "runs" else v for k, v in found.items()}


async def snapshot(client: Any, agent: ProductionAgent, thread_id: str) -> dict[str, Any]:
    """What a user and the graph see of a thread: its messages (API), its state and its latest checkpoint."""
    messages = (await client.get(f"/v1/threads/{thread_id}/messages", params={"limit": 500})).json()["messages"]
    config = {"configurable": {"thread_id": thread_id}}
    state = await agent.graphs["multi"].aget_state(config)
    latest = await agent.storage.checkpointer.aget_tuple(config)
    return {
        "messages": messages,
        "values": state.values,
        "next": state.next,
        "checkpoint": latest.checkpoint if latest else None,
        "pending_writes": latest.pending_writes if latest else None,
    }


async def turn(client: Any, thread_id: str, message: str) -> None:
    response = await client.post(f"/v1/threads/{thread_id}/runs", json={"message": message})
    assert response.json()["status"] == "succeeded", response.text


@pytest.mark.parametrize("durability", ["exit", "async"])
async def test_prune_removes_what_it_should_and_nothing_else(client_for, persistent_storage_url, durability) -> None:
    # One multi-agent turn = one pass of the script. It leaves a checkpoint of the thread (durability exit) or one
    # per step (async), and checkpoints of each subgraph call in namespaces of their own.
    model = ScriptedChatModel(replies=two_specialists_script())
    settings = make_settings(storage_url=persistent_storage_url, checkpoint_durability=durability)
    client = await client_for(settings, model=model)
    agent: ProductionAgent = client.app.state.agent
    storage, db = agent.storage, agent.storage.db

    async def thread(**body: Any) -> str:
        thread_id = (await client.post("/v1/threads", json={"agent": "multi", **body})).json()["thread_id"]
        await turn(client, thread_id, "Sum, and the time in Tokyo?")
        return thread_id

    live, live_short, old, busy_old = await thread(), await thread(), await thread(), await thread()
    expiring = await thread(ttl_days=1)
    await turn(client, live, "Again, please.")
    now = time.time() + 2 * DAY  # the TTL has passed; the live threads are 2 days idle
    for thread_id in (old, busy_old):
        await db.execute(
            "UPDATE chatplane_threads SET updated_at = %s WHERE thread_id = %s", (now - 40 * DAY, thread_id)
        )
    # another process is running a run on busy_old right now
    await db.execute("UPDATE chatplane_runs SET status = 'running' WHERE thread_id = %s", (busy_old,))
    # stateless (OpenAI-compatible) run records, as /v1/chat/completions leaves them: an old one and a recent one
    for created_at in (now - 40 * DAY, now - DAY):
        record = await agent.storage.runs.create("", "local", "chat", {"stateless": True, "messages": 1}, "reject")
        await agent.storage.runs.finish(record, "succeeded", {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
        await db.execute("UPDATE chatplane_runs SET created_at = %s WHERE run_id = %s", (created_at, record.run_id))

    threads = {"live": live, "live_short": live_short, "old": old, "busy_old": busy_old, "expiring": expiring}
    before = {name: await footprint(storage, tid) for name, tid in threads.items()}
    seen = {name: await snapshot(client, agent, threads[name]) for name in ("live", "live_short", "busy_old")}
    assert len(before["live"]["namespaces"]) > 2  # the thread's and its subgraph calls'
    assert before["live"]["checkpoints"] > len(before["live"]["namespaces"])  # superseded ones
    assert before["live"]["runs"] == 2

    dry = await prune(storage, 30 * DAY, now, dry_run=True)
    assert (dry.threads, dry.skipped, dry.compacted, dry.dry_run) == (2, 1, 2, True)
    assert dry.runs == before["old"]["runs"] + before["expiring"]["runs"] + 1
    assert {name: await footprint(storage, tid) for name, tid in threads.items()} == before  # nothing changed

    report = await prune(storage, 30 * DAY, now)
    assert (report.threads, report.skipped, report.compacted) == (2, 1, 2)
    assert report.runs == before["old"]["runs"] + before["expiring"]["runs"] + 1
    after = {name: await footprint(storage, tid) for name, tid in threads.items()}
    gone = {"thread": False, "runs": 0, "checkpoints": 0, "writes": 0, "namespaces": []}
    if storage.kind == "postgres":
        gone["blobs"] = 0
    assert after["old"] == gone and after["expiring"] == gone
    assert after["busy_old"] == before["busy_old"]  # left for later, untouched
    for name in ("live", "live_short"):
        assert after[name]["thread"] and after[name]["runs"] == before[name]["runs"]
        assert after[name]["namespaces"] == [""] and after[name]["checkpoints"] == 1  # the latest state only
        assert after[name]["writes"] <= before[name]["writes"]
        if storage.kind == "postgres":
            assert 0 < after[name]["blobs"] < before[name]["blobs"]
    deleted_checkpoints = sum(before[n]["checkpoints"] - after[n]["checkpoints"] for n in threads)
    assert report.checkpoints == deleted_checkpoints
    stateless = await db.fetchall("SELECT created_at FROM chatplane_runs WHERE thread_id = ''")
    assert len(stateless) == 1 and stateless[0]["created_at"] > now - 30 * DAY

    # a live thread's history and state are exactly what they were, and it carries on
    for name in ("live", "live_short", "busy_old"):
        assert await snapshot(client, agent, threads[name]) == seen[name], name
    await turn(client, live, "And once more.")
    messages = (await client.get(f"/v1/threads/{live}/messages", params={"limit": 500})).json()["messages"]
    assert messages[: len(seen["live"]["messages"])] == seen["live"]["messages"]
    assert messages[-1]["content"] == "The sum is 5555, and it is evening in Tokyo."
    for gone_id in (old, expiring):
        assert (await client.get(f"/v1/threads/{gone_id}")).status_code == 404

    again = await prune(storage, 30 * DAY, now)
    assert (again.threads, again.compacted, again.skipped) == (0, 1, 1)  # only the turn just taken
    assert (await footprint(storage, live))["namespaces"] == [""]


async def test_prune_on_memory_storage_deletes_threads(client_for) -> None:
    client = await client_for(make_settings())
    storage = client.app.state.agent.storage
    old, live = [(await client.post("/v1/threads", json={})).json()["thread_id"] for _ in range(2)]
    for thread_id in (old, live):
        await client.post(f"/v1/threads/{thread_id}/runs", json={"message": "hi"})
    await storage.db.execute("UPDATE chatplane_threads SET updated_at = 0 WHERE thread_id = %s", (old,))
    report = await prune(storage, 30 * DAY, time.time())
    assert (report.threads, report.runs, report.compacted) == (1, 1, 0) and report.checkpoints > 0
    assert (await client.get(f"/v1/threads/{old}")).status_code == 404
    assert await storage.checkpointer.aget_tuple({"configurable": {"thread_id": old}}) is None
    assert len((await client.get(f"/v1/threads/{live}/messages")).json()["messages"]) == 2


async def test_a_thread_ttl_is_set_at_creation(client_for) -> None:
    client = await client_for(make_settings())
    created = (await client.post("/v1/threads", json={"ttl_days": 1.5})).json()
    assert created["expires_at"] == pytest.approx(created["created_at"] + 1.5 * DAY)
    assert (await client.get(f"/v1/threads/{created['thread_id']}")).json()["expires_at"] == created["expires_at"]
    assert (await client.post("/v1/threads", json={})).json()["expires_at"] is None
    for bad in (0, -1, 40000, "soon"):
        response = await client.post("/v1/threads", json={"ttl_days": bad})
        assert response.status_code == 422, bad


async def test_the_periodic_job_prunes_while_the_server_runs(client_for, tmp_path: Path) -> None:
    settings = make_settings(storage_url=f"sqlite:///{tmp_path}/job.db", retention_days=30, prune_interval_s=0.05)
    client = await client_for(settings)
    db = client.app.state.agent.storage.db
    old, live = [(await client.post("/v1/threads", json={})).json()["thread_id"] for _ in range(2)]
    await db.execute("UPDATE chatplane_threads SET updated_at = %s WHERE thread_id = %s", (time.time() - 31 * DAY, old))
    deadline = time.monotonic() + 30
    while (await client.get(f"/v1/threads/{old}")).status_code != 404:
        assert time.monotonic() < deadline, "the retention job did not run"
        await asyncio.sleep(0.05)
    assert (await client.get(f"/v1/threads/{live}")).status_code == 200
    while (await scrape(client)).value("chatplane_pruned_total", kind="threads") != 1:  # counted when the round ends
        assert time.monotonic() < deadline, "the round was not counted"
        await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_one_process_prunes_at_a_time_on_postgresql(pg_url: str) -> None:
    settings = make_settings(storage_url=pg_url, retention_days=30)
    async with ProductionAgent(settings=settings) as agent:
        job = RetentionJob(agent.storage, settings)
        with psycopg.connect(pg_url, autocommit=True) as other_process:
            other_process.execute("SELECT pg_advisory_lock(%s)", (PRUNE_LOCK,))
            assert await prune_once(agent.storage, 30 * DAY) is None
            assert await job.run_once() is None
            other_process.execute("SELECT pg_advisory_unlock(%s)", (PRUNE_LOCK,))
        assert await job.run_once() is not None
        # the lock was released: the next round (or another process) can take it
        assert await prune_once(agent.storage, 30 * DAY) is not None


def test_durations() -> None:
    assert parse_duration("30d") == 30 * DAY
    assert (
        parse_duration("12h") == 12 * 3600 and parse_duration("90m") == 5400 and parse_duration("1.5w") == 1.5 * 7 * DAY
    )
    for bad in ("30", "d", "-1d", "3y", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.e2e
def test_the_prune_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"

    async def setup() -> tuple[str, str]:
        async with ProductionAgent(settings=make_settings(storage_url=url)) as agent:
            await agent.achat("alice", "old news", "old")
            await agent.achat("alice", "fresh news", "fresh")
            await agent.achat("alice", "more fresh news", "fresh")
            await agent.storage.db.execute("UPDATE chatplane_threads SET updated_at = 0 WHERE thread_id = 'old'")
        return "old", "fresh"

    async def left() -> list[str]:
        async with ProductionAgent(settings=make_settings(storage_url=url)) as agent:
            rows = await agent.storage.db.fetchall("SELECT thread_id FROM chatplane_threads ORDER BY thread_id")
            return [r["thread_id"] for r in rows]

    asyncio.run(setup())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chatplane", "prune", *args, "--storage", url],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )

    dry = cli("--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: would delete 1 thread(s), 1 run record(s)" in dry.stdout
    assert asyncio.run(left()) == ["fresh", "old"]
    done = cli("--older-than", "30d")
    assert done.returncode == 0 and "deleted 1 thread(s), 1 run record(s)" in done.stdout
    assert "compacted 1 live thread(s)" in done.stdout
    assert asyncio.run(left()) == ["fresh"]
    bad = cli("--older-than", "a month")
    assert bad.returncode == 2 and "--older-than" in bad.stderr
