"""What branches cost a long thread: bytes stored per turn and the time of a turn at turn 1,000, on a thread with 50
branches beside one with none (docs/performance.md#branches-issue-26).

Each thread is built through ``/v1`` in-process (``httpx.ASGITransport``; the scripted fake model answers at once,
so what is timed is chatplane's own work): ``--turns`` turns, and for the branched thread a regenerate of the last
answer every ``turns / branches`` turns, so its current branch runs through every branch (the most spans a read of
it can cross). Both threads live in one server and are built and timed in alternation, so that whatever else the
machine does weighs on both alike. Then ``--measured`` turns of each are timed (wall and the process's CPU: the
whole server runs in it, but not PostgreSQL), and the storage's size is read before and after each thread's
(SQLite: ``page_count × page_size``; PostgreSQL: ``pg_total_relation_size`` of chatplane's and the saver's tables).

    .venv/bin/python -m benchmarks.branches [--turns 1000] [--branches 50] [--measured 100] [--backend sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from chatplane.config import Settings
from chatplane.llm.fake import ScriptedChatModel
from chatplane.service.app import create_app

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
_PG_TABLES = (
    "chatplane_messages",
    "chatplane_threads",
    "chatplane_runs",
    "checkpoints",
    "checkpoint_blobs",
    "checkpoint_writes",
)


async def _size(app: Any, kind: str) -> int:
    db = app.state.agent.storage.db
    if kind == "sqlite":
        pages = await db.fetchone("PRAGMA page_count")
        size = await db.fetchone("PRAGMA page_size")
        assert pages is not None and size is not None
        return int(next(iter(pages.values()))) * int(next(iter(size.values())))
    total = 0
    for table in _PG_TABLES:
        row = await db.fetchone("SELECT pg_total_relation_size(to_regclass(%s)) AS n", (table,))
        total += int(row["n"] or 0) if row else 0
    return total


async def _turn(client: httpx.AsyncClient, tid: str, text: str) -> tuple[float, float]:
    """One turn: its wall time and the CPU time this process (the whole server) spent on it."""
    start, cpu = time.perf_counter(), time.process_time()
    got = await client.post(f"/v1/threads/{tid}/runs", json={"message": text})
    elapsed, spent = time.perf_counter() - start, time.process_time() - cpu
    if got.status_code != 200:
        raise RuntimeError(f"turn failed: {got.status_code}")
    return elapsed, spent


async def _regenerate(client: httpx.AsyncClient, tid: str) -> None:
    answer = (await client.get(f"/v1/threads/{tid}/branch")).json()["messages"][-1]["message"]["id"]
    got = await client.post(f"/v1/threads/{tid}/messages/{answer}/regenerate", json={})
    if got.status_code != 200:
        raise RuntimeError(f"regenerate failed: {got.status_code}")


async def _measure(url: str, kind: str, turns: int, branches: int, measured: int) -> list[dict[str, Any]]:
    """Two threads in one server, built and measured turn by turn in alternation (so that whatever else the machine
    does weighs on both alike): one with no branches, one with ``branches``."""
    settings = Settings(_env_file=None, model="fake:echo", storage_url=url)
    app = create_app(settings, model=ScriptedChatModel(echo=True))
    text = "lorem ipsum " * 8
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60) as client,
    ):
        plain = (await client.post("/v1/threads", json={})).json()["thread_id"]
        branched = (await client.post("/v1/threads", json={})).json()["thread_id"]
        every = max(1, turns // (branches + 1)) if branches else 0  # the last branch well before the measured turns
        made = 0
        for n in range(1, turns + 1):
            await _turn(client, plain, f"message {n}: {text}")
            await _turn(client, branched, f"message {n}: {text}")
            if every and n % every == 0 and made < branches:
                await _regenerate(client, branched)
                made += 1
        sizes: dict[str, int] = {}
        times: dict[str, list[tuple[float, float]]] = {plain: [], branched: []}
        for tid in (plain, branched):  # the storage grows by one thread's turns at a time: each measured alone
            before = await _size(app, kind)
            for n in range(measured):
                await _turn(client, tid, f"measured {n}: {text}")
            sizes[tid] = await _size(app, kind) - before
        for n in range(measured):  # the time: turn by turn in alternation
            times[plain].append(await _turn(client, plain, f"timed {n}: {text}"))
            times[branched].append(await _turn(client, branched, f"timed {n}: {text}"))
        starts = (  # only when branches were made: with --branches 0 it runs on a source tree without them too
            len(
                await app.state.agent.storage.db.fetchall(
                    "SELECT seq FROM chatplane_messages WHERE thread_id = %s AND parent_seq IS NOT NULL", (branched,)
                )
            )
            if made
            else 0
        )
    rows = []
    for tid, count in ((plain, 0), (branched, made)):
        wall = sorted(t for t, _ in times[tid])
        cpu = sorted(c for _, c in times[tid])
        rows.append(
            {
                "backend": kind,
                "branches": count,
                "branch starts": starts if count else 0,
                "bytes/turn": sizes[tid] / measured,
                "median ms": statistics.median(wall) * 1000,
                "p90 ms": wall[int(len(wall) * 0.9)] * 1000,
                "cpu ms": statistics.median(cpu) * 1000,
            }
        )
    return rows


async def _pg_database() -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


async def _drop(name: str) -> None:
    async with await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for kind in args.backend.split(","):
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                rows += await _measure(url, kind, args.turns, args.branches, args.measured)
        else:
            name, url = await _pg_database()
            try:
                rows += await _measure(url, kind, args.turns, args.branches, args.measured)
            finally:
                await _drop(name)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| storage | branches | bytes stored / turn | turn, median | turn, p90 | CPU / turn, median "
        "| vs no branches (median turn / CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    base: dict[str, tuple[float, float]] = {}
    for row in rows:
        if row["branches"] == 0:
            base[row["backend"]] = (row["median ms"], row["cpu ms"])
        wall, cpu = base.get(row["backend"], (float("nan"), float("nan")))
        out.append(
            f"| {row['backend']} | {row['branches']} | {row['bytes/turn']:,.0f} | {row['median ms']:.1f} ms "
            f"| {row['p90 ms']:.1f} ms | {row['cpu ms']:.1f} ms | {row['median ms'] / wall:.2f}× / "
            f"{row['cpu ms'] / cpu:.2f}× |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.branches", description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--branches", type=int, default=50)
    parser.add_argument("--measured", type=int, default=100)
    parser.add_argument("--backend", default="sqlite,postgres")
    logging.disable(logging.INFO)  # a line per request would time the terminal
    print(table(asyncio.run(_run(parser.parse_args(argv)))))


if __name__ == "__main__":
    main()
