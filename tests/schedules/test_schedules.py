"""/v1/crons in-process: a schedule's ticks become ordinary runs of its owner, a missed tick runs once, the claim,
the cap, bad input as a 422 naming the field, and another user reaching nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from chatplane.schedules.expression import check_schedule, next_tick
from chatplane.schedules.scheduler import Scheduler
from chatplane.storage.database import loads
from chatplane.storage.engine import open_storage
from chatplane.storage.schedules import Schedule, ScheduleStore
from tests.conftest import make_settings
from tests.schedules.test_webhooks import ALICE, BOB, settings


async def schedule_runs(client: httpx.AsyncClient, schedule_id: str) -> list[dict[str, Any]]:
    """The runs a schedule started, read from the runs table: (run id, owner, tick, status)."""
    db = client.app.state.agent.storage.db  # type: ignore[attr-defined]
    rows = await db.fetchall("SELECT run_id, owner, input, status, thread_id FROM chatplane_runs")
    found = []
    for row in rows:
        metadata = loads(row["input"]).get("metadata") or {}
        if metadata.get("schedule_id") == schedule_id:
            found.append({**row, "tick": metadata["schedule_tick"]})
    return found


async def test_a_schedule_every_second_starts_ordinary_runs(client_for, storage_url: str) -> None:
    client = await client_for(settings(storage_url=storage_url))
    created = await client.post(
        "/v1/crons",
        json={"schedule": "* * * * * *", "timezone": "Europe/Paris", "message": "report", "metadata": {"k": 1}},
        headers=ALICE,
    )
    assert created.status_code == 201, created.text
    cron = created.json()
    sid = cron["schedule_id"]
    assert (cron["schedule"], cron["timezone"], cron["enabled"], cron["thread_id"]) == (
        "* * * * * *",
        "Europe/Paris",
        True,
        None,
    )
    assert cron["next_run_at"] > cron["created_at"] - 1
    for _ in range(200):
        runs = await schedule_runs(client, sid)
        if len({r["tick"] for r in runs}) >= 2:
            break
        await asyncio.sleep(0.05)
    ticks = [r["tick"] for r in runs]
    assert len(ticks) == len(set(ticks)) >= 2 and all(t == int(t) for t in ticks)  # once per whole-second tick
    assert {r["owner"] for r in runs} == {"alice"} and len({r["thread_id"] for r in runs}) == len(runs)
    first = runs[0]
    assert (await client.get(f"/v1/runs/{first['run_id']}", headers=ALICE)).status_code == 200  # an ordinary run
    thread = first["thread_id"]
    for _ in range(100):
        messages = (await client.get(f"/v1/threads/{thread}/messages", headers=ALICE)).json()["messages"]
        if len(messages) == 2:
            break
        await asyncio.sleep(0.05)
    assert [m["content"] for m in messages] == ["report", "echo: report"]
    shown = (await client.get(f"/v1/crons/{sid}", headers=ALICE)).json()
    assert shown["last_run_id"] in {r["run_id"] for r in runs} and shown["last_error"] is None
    paused = await client.patch(f"/v1/crons/{sid}", json={"enabled": False}, headers=ALICE)
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    await asyncio.sleep(0.3)
    count = len(await schedule_runs(client, sid))
    await asyncio.sleep(1.5)
    assert len(await schedule_runs(client, sid)) == count  # disabled: no more runs
    assert [c["schedule_id"] for c in (await client.get("/v1/crons", headers=ALICE)).json()["schedules"]] == [sid]
    assert (await client.delete(f"/v1/crons/{sid}", headers=ALICE)).status_code == 204
    assert (await client.get(f"/v1/crons/{sid}", headers=ALICE)).status_code == 404


async def test_a_schedule_on_a_thread_and_its_webhook(client_for) -> None:
    from tests.schedules.receiver import webhook_receiver

    with webhook_receiver() as receiver:
        client = await client_for(settings())
        thread = (await client.post("/v1/threads", json={}, headers=ALICE)).json()["thread_id"]
        body = {"schedule": "* * * * * *", "thread_id": thread, "message": "tick", "webhook": f"{receiver.url}/ok"}
        sid = (await client.post("/v1/crons", json=body, headers=ALICE)).json()["schedule_id"]
        for _ in range(200):
            if len(receiver.at("/ok")) >= 2:
                break
            await asyncio.sleep(0.05)
        await client.delete(f"/v1/crons/{sid}", headers=ALICE)
        runs = await schedule_runs(client, sid)
        assert {r["thread_id"] for r in runs} == {thread}
        assert {r.headers["webhook-id"] for r in receiver.at("/ok")} <= {r["run_id"] for r in runs}


async def test_a_missed_tick_runs_once_not_once_per_tick(storage_url: str) -> None:
    """All processes were down for a minute of an every-second schedule: on return, one run, and the next tick is
    the first one after now."""
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = ScheduleStore(storage.db)
        now = time.time()
        created = await store.create(
            "alice",
            {"assistant_id": "chat", "schedule": "* * * * * *", "timezone": "UTC", "next_run_at": float(int(now) - 60)},
            cap=0,
        )
        started: list[tuple[str, float]] = []

        async def start_tick(schedule: Schedule, tick: float) -> str:
            started.append((schedule.schedule_id, tick))
            return f"run-{len(started)}"

        one = Scheduler(store, make_settings(), "worker-1", start_tick)
        two = Scheduler(store, make_settings(), "worker-2", start_tick)
        assert await one.run_due() + await two.run_due() == 1
        assert started == [(created.schedule_id, float(int(now) - 60))]
        after = await store.get(created.schedule_id, "alice")
        assert after.next_run_at is not None and after.next_run_at > now and after.last_run_id == "run-1"
        assert await one.run_due() + await two.run_due() == 0  # the next tick is not due yet


async def test_only_one_process_claims_a_tick(storage_url: str) -> None:
    """Claims race: each due schedule goes to exactly one of the processes asking at once, and a lease it holds
    keeps others off until it lapses."""
    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = ScheduleStore(storage.db)
        now = time.time()
        ids = set()
        for _ in range(10):
            fields = {"assistant_id": "chat", "schedule": "0 9 * * *", "timezone": "UTC", "next_run_at": now - 1}
            ids.add((await store.create("alice", fields, cap=0)).schedule_id)
        claims = await asyncio.gather(*(store.claim_due(now, f"w{i}", now + 30, limit=3) for i in range(6)))
        claimed = [s.schedule_id for batch in claims for s in batch]
        assert sorted(claimed) == sorted(ids)  # every one, once
        assert await store.claim_due(now + 1, "late", now + 30) == []  # leases held
        assert len(await store.claim_due(now + 31, "late", now + 60)) == 10  # lapsed: taken over


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schedule": "every day", "message": "x"}, "schedule"),
        ({"schedule": "61 * * * *", "message": "x"}, "schedule"),
        ({"schedule": "* * * * * * * *", "message": "x"}, "schedule"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus", "message": "x"}, "timezone"),
        ({"schedule": "0 9 * * *", "timezone": "../../etc/passwd", "message": "x"}, "timezone"),
        ({"schedule": "0 9 * * *", "message": "x", "webhook": "gopher://x/"}, "webhook"),
        ({"schedule": "0 9 * * *", "message": "x", "end_time": "2001-01-01T00:00:00Z"}, "end_time"),
        ({"schedule": "0 9 * * *", "message": "x", "assistant_id": "nope"}, "nope"),
        ({"schedule": "0 9 * * *"}, "message"),
        ({"schedule": "0 9 * * *", "message": "x", "surprise": 1}, "surprise"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(client_for, body: dict[str, Any], field: str) -> None:
    client = await client_for(settings())
    answer = await client.post("/v1/crons", json=body, headers=ALICE)
    assert answer.status_code == 422 and field in answer.json()["error"]["message"], answer.text


async def test_patch_checks_its_fields_too(client_for) -> None:
    client = await client_for(settings())
    sid = (await client.post("/v1/crons", json={"schedule": "0 9 * * *", "message": "x"}, headers=ALICE)).json()[
        "schedule_id"
    ]
    for body, field in (({"schedule": "nope"}, "schedule"), ({"timezone": "Nowhere/Land"}, "timezone")):
        answer = await client.patch(f"/v1/crons/{sid}", json=body, headers=ALICE)
        assert answer.status_code == 422 and field in answer.json()["error"]["message"]
    change = {"schedule": "30 7 * * *", "timezone": "Asia/Tokyo"}
    moved = (await client.patch(f"/v1/crons/{sid}", json=change, headers=ALICE)).json()
    assert moved["next_run_at"] == next_tick("30 7 * * *", "Asia/Tokyo", moved["updated_at"] - 5)


async def test_the_cap_per_user(client_for) -> None:
    client = await client_for(settings(max_schedules_per_user=2))
    body = {"schedule": "0 9 * * *", "message": "x"}
    for _ in range(2):
        assert (await client.post("/v1/crons", json=body, headers=ALICE)).status_code == 201
    refused = await client.post("/v1/crons", json=body, headers=ALICE)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "schedule_limit_reached"
    assert (await client.post("/v1/crons", json=body, headers=BOB)).status_code == 201  # the cap is per user


async def test_another_user_reaches_nothing(client_for) -> None:
    client = await client_for(settings())
    thread = (await client.post("/v1/threads", json={}, headers=ALICE)).json()["thread_id"]
    body = {"schedule": "0 9 * * *", "message": "x", "thread_id": thread}
    sid = (await client.post("/v1/crons", json=body, headers=ALICE)).json()["schedule_id"]
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"enabled": False}} if method == "PATCH" else {}
        theirs = await client.request(method, f"/v1/crons/{sid}", headers=BOB, **kwargs)
        missing = await client.request(method, "/v1/crons/no-such-schedule", headers=BOB, **kwargs)
        assert theirs.status_code == missing.status_code == 404 and theirs.content == missing.content
    assert (await client.get("/v1/crons", headers=BOB)).json() == {"schedules": []}
    on_alices_thread = await client.post("/v1/crons", json=body, headers=BOB)
    assert on_alices_thread.status_code == 404  # her thread is a missing one to him
    assert (await client.get(f"/v1/crons/{sid}", headers=ALICE)).json()["enabled"] is True  # nothing changed


def test_expressions() -> None:
    assert check_schedule("  0   9 * * 1-5 ") == "0 9 * * 1-5"
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer
    winter = next_tick("0 9 * * *", "Europe/Paris", 1_767_225_600.0)  # 2026-01-01T00:00Z
    summer = next_tick("0 9 * * *", "Europe/Paris", 1_782_864_000.0)  # 2026-07-01T00:00Z
    assert winter is not None and summer is not None
    assert (winter - 1_767_225_600.0, summer - 1_782_864_000.0) == (8 * 3600, 7 * 3600)
    assert next_tick("*/10 * * * * *", "UTC", 100.0) == 110.0  # seconds first
