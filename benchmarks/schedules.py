"""What schedules cost the database: one process's idle poll (nothing due) as the table grows, and a burst of due
schedules claimed and settled by 1, 2 or 4 processes at once (each its own pool), counting any tick claimed twice.

    .venv/bin/python -m benchmarks.schedules            # PostgreSQL (CHATPLANE_TEST_PG_URL), a fresh database
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections import Counter

import psycopg
from psycopg import sql

from chatplane.config import Settings
from chatplane.storage.engine import open_storage
from chatplane.storage.schedules import ScheduleStore

PG_URL = os.environ.get("CHATPLANE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BURST = 1000


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, storage_url=url, model="fake:echo")


async def _insert(store: ScheduleStore, count: int, next_run_at: float) -> None:
    rows = [
        (str(uuid.uuid4()), "bench", "chat", "0 9 * * *", "UTC", next_run_at, time.time(), time.time())
        for _ in range(count)
    ]
    async with store.db.transaction() as tx:
        for row in rows:
            await tx.execute(
                "INSERT INTO chatplane_schedules (schedule_id, owner, assistant_id, schedule, timezone, next_run_at, "
                "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                row,
            )


async def _idle_poll_ms(store: ScheduleStore, rounds: int = 200) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert await store.claim_due(time.time(), "w", time.time() + 10) == []
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _burst(url: str, processes: int) -> tuple[float, int, int]:
    """Seconds to claim and settle ``BURST`` due schedules with ``processes`` claimers; ticks claimed; twice."""
    claimed: Counter[str] = Counter()
    async with open_storage(_settings(url)) as storage:
        store = ScheduleStore(storage.db)
        await storage.db.execute("DELETE FROM chatplane_schedules")
        await _insert(store, BURST, time.time() - 1)

    async def claimer(name: str) -> None:
        async with open_storage(_settings(url)) as own:
            mine = ScheduleStore(own.db)
            while batch := await mine.claim_due(time.time(), name, time.time() + 30):
                for schedule in batch:
                    claimed[schedule.schedule_id] += 1
                    await mine.settle(schedule, name, next_run_at=time.time() + 86_400, run_id="r", error=None)

    started = time.perf_counter()
    await asyncio.gather(*(claimer(f"w{i}") for i in range(processes)))
    return time.perf_counter() - started, len(claimed), sum(1 for n in claimed.values() if n > 1)


async def main() -> None:
    name = f"chatplane_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    try:
        print("| schedules in the table (none due) | one idle poll, median ms |")
        print("|---:|---:|")
        async with open_storage(_settings(url)) as storage:
            store = ScheduleStore(storage.db)
            have = 0
            for size in (0, 1_000, 10_000):
                await _insert(store, size - have, time.time() + 86_400)
                await storage.db.execute("ANALYZE chatplane_schedules")  # as autovacuum would, soon after
                have = size
                print(f"| {size:,} | {await _idle_poll_ms(store):.2f} |")
        print()
        print(f"| processes claiming {BURST:,} due schedules | seconds | claimed | claimed twice |")
        print("|---:|---:|---:|---:|")
        for processes in (1, 2, 4):
            seconds, claimed, twice = await _burst(url, processes)
            print(f"| {processes} | {seconds:.2f} | {claimed:,} | {twice} |")
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    asyncio.run(main())
