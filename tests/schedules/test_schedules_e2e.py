"""Schedules across two real server processes on one PostgreSQL: a schedule every second runs exactly once per
tick, whichever process claims it; after both processes were stopped for several ticks, it runs once on return."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests.servers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _ticks(pg_url: str, schedule_id: str) -> list[float]:
    """The tick of every run the schedule started (one entry per run)."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT input FROM chatplane_runs").fetchall()
    ticks = []
    for (raw,) in rows:
        metadata = json.loads(raw).get("metadata") or {}
        if metadata.get("schedule_id") == schedule_id:
            ticks.append(float(metadata["schedule_tick"]))
    return sorted(ticks)


def test_a_schedule_every_second_runs_once_per_tick_on_two_processes_and_once_after_both_stopped(
    server_factory: Any, pg_url: str
) -> None:
    env = {
        "CHATPLANE_STORAGE_URL": pg_url,
        "CHATPLANE_MODEL": "fake:echo",
        "CHATPLANE_SCHEDULE_POLL_S": "0.1",
        "CHATPLANE_RUN_LEASE_S": "2",
    }
    a, b = server_factory(env), server_factory(env)
    with httpx.Client(base_url=a.url, timeout=30) as on_a:
        created = on_a.post("/v1/crons", json={"schedule": "* * * * * *", "message": "tick"})
        assert created.status_code == 201, created.text
        sid = created.json()["schedule_id"]
    # both processes poll ten times a tick: each tick is claimed by exactly one of them
    wait_for(lambda: len(set(_ticks(pg_url, sid))) >= 8, timeout=60)
    a.stop()
    b.stop()
    ran = _ticks(pg_url, sid)
    assert len(ran) == len(set(ran)) >= 8 and all(t == int(t) for t in ran), ran
    last = ran[-1]
    time.sleep(4.5)  # every process down: at least four ticks missed
    restarted_at = time.time()
    assert restarted_at - last >= 4
    c, d = server_factory(env), server_factory(env)
    wait_for(lambda: [t for t in _ticks(pg_url, sid) if t > restarted_at + 1], timeout=60)
    with httpx.Client(base_url=c.url, timeout=30) as on_c:
        assert on_c.patch(f"/v1/crons/{sid}", json={"enabled": False}).status_code == 200
    c.stop()
    d.stop()
    after = _ticks(pg_url, sid)
    assert len(after) == len(set(after)), after  # never two runs of one tick
    missed = [t for t in after if last < t < restarted_at]
    assert missed == [last + 1], (last, restarted_at, after)  # the first missed tick, once; not one per tick
    with psycopg.connect(pg_url) as conn:
        statuses = {s for (s,) in conn.execute("SELECT status FROM chatplane_runs").fetchall()}
    assert "failed" not in statuses, statuses
