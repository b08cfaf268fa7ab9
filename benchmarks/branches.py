"""What branches cost a long thread: bytes stored per turn and the time of a turn at turn 1,000, on a thread with 50
branches beside one with none (docs/performance.md#branches-issue-26).

Each thread is built through ``/v1`` in-process (``httpx.ASGITransport``; the scripted fake model answers at once,
so what is timed is chatplane's own work): ``--turns`` turns, and for the branched thread a regenerate of the last
answer every ``turns / branches`` turns, so its current branch runs through every branch (the most spans a read of
it can cross). Then ``--measured`` more turns are timed one by one, and the storage's size is read before and after
them (SQLite: ``page_count × page_size``; PostgreSQL: ``pg_total_relation_size`` of chatplane's and the saver's
tables).

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


async def _turn(client: httpx.AsyncClient, tid: str, text: str) -> float:
    start = time.perf_counter()
    got = await client.post(f"/v1/threads/{tid}/runs", json={"message": text})
    elapsed = time.perf_counter() - start
    if got.status_code != 200:
        raise RuntimeError(f"turn failed: {got.status_code}")
    return elapsed


async def _measure(url: str, kind: str, turns: int, branches: int, measured: int) -> dict[str, Any]:
    settings = Settings(_env_file=None, model="fake:echo", storage_url=url)
    app = create_app(settings, model=ScriptedChatModel(echo=True))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60) as client,
    ):
        tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
        every = turns // branches if branches else 0
        made = 0
        for n in range(1, turns + 1):
            await _turn(client, tid, f"message {n}: " + "lorem ipsum " * 8)
            if every and n % every == 0 and made < branches:
                answer = (await client.get(f"/v1/threads/{tid}/branch")).json()["messages"][-1]["message"]["id"]
                got = await client.post(f"/v1/threads/{tid}/messages/{answer}/regenerate", json={})
                if got.status_code != 200:
                    raise RuntimeError(f"regenerate failed: {got.status_code}")
                made += 1
        before = await _size(app, kind)
        times = [await _turn(client, tid, f"measured {n}: " + "lorem ipsum " * 8) for n in range(measured)]
        after = await _size(app, kind)
        spans = len(
            await app.state.agent.storage.db.fetchall(
                "SELECT seq FROM chatplane_messages WHERE thread_id = %s AND parent_seq IS NOT NULL", (tid,)
            )
        )
    times.sort()
    return {
        "backend": kind,
        "branches": made,
        "branch starts": spans,
        "bytes/turn": (after - before) / measured,
        "median ms": statistics.median(times) * 1000,
        "p90 ms": times[int(len(times) * 0.9)] * 1000,
    }


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
        for branches in (0, args.branches):
            if kind == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                    rows.append(await _measure(url, kind, args.turns, branches, args.measured))
            else:
                name, url = await _pg_database()
                try:
                    rows.append(await _measure(url, kind, args.turns, branches, args.measured))
                finally:
                    await _drop(name)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| storage | branches | bytes stored / turn | turn, median | turn, p90 | vs no branches (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base: dict[str, float] = {}
    for row in rows:
        if row["branches"] == 0:
            base[row["backend"]] = row["median ms"]
        ratio = row["median ms"] / base[row["backend"]] if row["backend"] in base else float("nan")
        out.append(
            f"| {row['backend']} | {row['branches']} | {row['bytes/turn']:,.0f} | {row['median ms']:.1f} ms "
            f"| {row['p90 ms']:.1f} ms | {ratio:.2f}× |"
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
