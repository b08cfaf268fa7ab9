"""LangGraph's crons API through the official ``langgraph-sdk`` client (``client.crons``) against chatplane: create
on a thread and stateless, search, count, update, delete — and each cron's runs are the caller's ordinary runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError

from chatplane.core.schedules import tick_thread_id
from tests.schedules.test_schedules import schedule_runs
from tests.schedules.test_webhooks import ALICE, BOB, settings


def sdk(client: httpx.AsyncClient, headers: dict[str, str]) -> LangGraphClient:
    """``langgraph-sdk``'s client over the in-process app, as a user."""
    transport = client._transport  # the app's ASGI transport
    return LangGraphClient(httpx.AsyncClient(transport=transport, base_url=str(client.base_url), headers=headers))


async def test_crons_through_the_sdk(client_for, storage_url: str) -> None:
    client = await client_for(settings(storage_url=storage_url))
    alice, bob = sdk(client, ALICE), sdk(client, BOB)
    thread = await alice.threads.create()
    end = datetime.now(UTC) + timedelta(days=30)
    on_thread = await alice.crons.create_for_thread(
        thread["thread_id"],
        "chat",
        schedule="* * * * * *",
        input={"messages": [{"role": "user", "content": "tick"}]},
        metadata={"team": "ops"},
        timezone="America/New_York",
        end_time=end,
    )
    cron_id = on_thread["cron_id"]
    assert (on_thread["thread_id"], on_thread["schedule"], on_thread["timezone"]) == (
        thread["thread_id"],
        "* * * * * *",
        "America/New_York",
    )
    assert on_thread["metadata"] == {"team": "ops"} and on_thread["enabled"] is True
    assert datetime.fromisoformat(on_thread["end_time"]) == end.replace(microsecond=end.microsecond)
    assert on_thread["next_run_date"] is not None and on_thread["user_id"] == "alice"
    stateless = await alice.crons.create("chat", schedule="0 9 * * 1-5", input={"messages": []}, enabled=False)
    assert stateless["thread_id"] is None and stateless["enabled"] is False

    found = await alice.crons.search()
    assert {c["cron_id"] for c in found} == {cron_id, stateless["cron_id"]}
    assert [c["cron_id"] for c in await alice.crons.search(thread_id=thread["thread_id"])] == [cron_id]
    assert [c["cron_id"] for c in await alice.crons.search(enabled=False)] == [stateless["cron_id"]]
    picked = await alice.crons.search(select=["cron_id", "schedule"], sort_by="created_at", sort_order="desc")
    assert picked == [
        {"cron_id": stateless["cron_id"], "schedule": "0 9 * * 1-5"},
        {"cron_id": cron_id, "schedule": "* * * * * *"},
    ]
    assert await alice.crons.count() == 2 and await alice.crons.count(assistant_id="chat") == 2
    assert await bob.crons.search() == [] and await bob.crons.count() == 0

    for _ in range(200):  # the thread cron runs every second, as alice
        runs = await alice.runs.list(thread["thread_id"])
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(runs) >= 2
    assert {r["run_id"] for r in runs} <= {r["run_id"] for r in await schedule_runs(client, cron_id)}

    updated = await alice.crons.update(cron_id, schedule="0 0 1 1 *", timezone="UTC", enabled=True)
    assert updated["schedule"] == "0 0 1 1 *" and updated["timezone"] == "UTC"
    assert updated["next_run_date"].startswith(f"{datetime.now(UTC).year + 1}-01-01T00:00:00")

    with pytest.raises(APIStatusError) as not_theirs:
        await bob.crons.update(cron_id, enabled=False)
    assert not_theirs.value.response.status_code == 404
    with pytest.raises(APIStatusError) as not_theirs:
        await bob.crons.delete(cron_id)
    assert not_theirs.value.response.status_code == 404
    with pytest.raises(APIStatusError) as bad:
        await alice.crons.create("chat", schedule="not a cron", input={})
    assert bad.value.response.status_code == 422 and "schedule" in bad.value.response.json()["error"]["message"]
    with pytest.raises(APIStatusError) as bad:
        await alice.crons.create("chat", schedule="0 9 * * *", input={}, timezone="Atlantis/Capital")
    assert bad.value.response.status_code == 422 and "timezone" in bad.value.response.json()["error"]["message"]

    await alice.crons.delete(cron_id)
    await alice.crons.delete(stateless["cron_id"])
    assert await alice.crons.count() == 0


async def test_a_langgraph_run_takes_a_webhook(client_for) -> None:
    from tests.schedules.receiver import webhook_receiver
    from tests.schedules.test_webhooks import settled

    with webhook_receiver() as receiver:
        client = await client_for(settings())
        alice = sdk(client, ALICE)
        thread = await alice.threads.create()
        run = await alice.runs.create(
            thread["thread_id"],
            "chat",
            input={"messages": [{"role": "user", "content": "hi"}]},
            webhook=f"{receiver.url}/ok",
        )
        delivery = await settled(client, run["run_id"])
        assert delivery["status"] == "delivered" and [r.headers["webhook-id"] for r in receiver.at("/ok")] == [
            run["run_id"]
        ]


async def _last_tick(client: httpx.AsyncClient, cron_id: str) -> str:
    """The thread of the cron's last tick, once it has started a run."""
    db = client.app.state.agent.storage.db  # type: ignore[attr-defined]
    for _ in range(200):
        row = await db.fetchone(
            "SELECT last_tick, last_run_id, last_error FROM chatplane_schedules WHERE schedule_id = %s", (cron_id,)
        )
        if row and row["last_run_id"]:
            assert row["last_error"] is None
            return tick_thread_id(cron_id, row["last_tick"])
        await asyncio.sleep(0.05)
    raise AssertionError("the cron never ran")


async def test_a_cron_s_breakpoints_and_what_becomes_of_its_threads(client_for, storage_url: str) -> None:
    client = await client_for(settings(storage_url=storage_url))
    alice = sdk(client, ALICE)
    hello = {"messages": [{"role": "user", "content": "hi"}]}
    deleting = await alice.crons.create("chat", schedule="* * * * * *", input=hello)  # LangGraph's default: delete
    keeping = await alice.crons.create("chat", schedule="* * * * * *", input=hello, on_run_completed="keep")
    assert (deleting["on_run_completed"], keeping["on_run_completed"]) == ("delete", "keep")
    gone, kept = await _last_tick(client, deleting["cron_id"]), await _last_tick(client, keeping["cron_id"])
    await alice.crons.update(deleting["cron_id"], enabled=False)
    await alice.crons.update(keeping["cron_id"], enabled=False)
    for _ in range(200):
        status = (await client.get(f"/threads/{gone}", headers=ALICE)).status_code
        if status == 404:
            break
        await asyncio.sleep(0.05)
    assert status == 404  # deleted once its run ended
    runs = await alice.runs.list(kept)
    assert runs and (await alice.runs.join(kept, runs[-1]["run_id"]))["messages"][-1]["content"] == "echo: hi"

    thread = await alice.threads.create(graph_id="chat")
    paused = await alice.crons.create_for_thread(
        thread["thread_id"],
        "chat",
        schedule="* * * * * *",
        input=hello,
        interrupt_before="*",
    )
    assert paused["on_run_completed"] is None and paused["payload"]["interrupt_before"] == "*"
    for _ in range(200):
        runs = await alice.runs.list(thread["thread_id"])
        if runs:
            break
        await asyncio.sleep(0.05)
    await alice.runs.join(thread["thread_id"], runs[-1]["run_id"])
    await alice.crons.delete(paused["cron_id"])
    state = await alice.threads.get_state(thread["thread_id"])
    assert state["next"] and (await alice.threads.get(thread["thread_id"]))["status"] == "interrupted"
    with pytest.raises(APIStatusError) as bad:
        await alice.crons.create("chat", schedule="* * * * *", input=hello, interrupt_after="everything")
    assert bad.value.response.status_code == 422 and "interrupt_after" in bad.value.response.json()["error"]["message"]
