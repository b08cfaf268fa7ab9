"""Delayed runs (``after_seconds``) through LangGraph's own client against a real server: pending until their time,
then run; cancelled while they wait; not in the way of the thread's other runs; kept across a restart, on SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError

from tests.langgraph_runs.conftest import demo_env

pytestmark = pytest.mark.e2e


def _new() -> str:
    return str(uuid.uuid4())


async def test_a_delayed_run_is_pending_until_its_time_then_runs(lg_client: Any) -> None:
    client = lg_client
    tid = _new()
    run = await client.runs.create(tid, "counter", input={"count": 1}, after_seconds=1, if_not_exists="create")
    assert run["status"] == "pending"
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "pending"
    assert (await client.threads.get(tid))["status"] == "busy"
    assert await client.runs.join(tid, run["run_id"]) == {"count": 2, "log": ["tick"]}
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    streamed = [p async for p in client.runs.stream(tid, "counter", input={"count": 5}, after_seconds=1)]
    assert streamed[0].event == "metadata" and streamed[-1].data == {"count": 6, "log": ["tick"] * 2}
    waited = await client.runs.wait(tid, "counter", input={"count": 7}, after_seconds=1)
    assert waited == {"count": 8, "log": ["tick"] * 3}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def either_client(request: pytest.FixtureRequest, server_factory: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """``langgraph_sdk.get_client`` on the demo project, on SQLite and on PostgreSQL."""
    storage = f"sqlite:///{tmp_path}/either.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    async with get_client(url=server_factory(demo_env(storage)).url, api_key=None) as client:
        yield client


async def test_a_delayed_run_is_cancelled_while_it_waits_and_lets_others_go_first(either_client: Any) -> None:
    client = either_client
    tid = _new()
    later = await client.runs.create(tid, "counter", input={"count": 1}, after_seconds=600, if_not_exists="create")
    with pytest.raises(APIStatusError) as busy:  # a pending run makes the thread busy for `reject`
        await client.runs.create(tid, "counter", input={"count": 1})
    assert busy.value.response.status_code == 409
    # `enqueue`: a run due now does not wait for one that is not
    now = await client.runs.wait(tid, "counter", input={"count": 10}, multitask_strategy="enqueue")
    assert now == {"count": 11, "log": ["tick"]}
    assert (await client.runs.get(tid, later["run_id"]))["status"] == "pending"
    cancelled = await client.runs.cancel(tid, later["run_id"], wait=True)
    assert cancelled["status"] == "interrupted"
    assert (await client.threads.get(tid))["status"] == "idle"
    assert await client.runs.wait(tid, "counter", input={"count": 0}) == {"count": 1, "log": ["tick"] * 2}
    # cancel many by status: a delayed run is pending
    other = await client.runs.create(tid, "counter", input={"count": 1}, after_seconds=600)
    await client.runs.cancel_many(status="pending")
    assert (await client.runs.get(tid, other["run_id"]))["status"] == "interrupted"


async def test_a_stateless_delayed_run_and_what_is_refused(lg_client: Any) -> None:
    client = lg_client
    assert await client.runs.wait(None, "counter", input={"count": 3}, after_seconds=1) == {"count": 4, "log": ["tick"]}
    tid = _new()
    await client.runs.wait(tid, "counter", input={"count": 1}, if_not_exists="create")
    for bad in ({"after_seconds": -1}, {"after_seconds": 1, "checkpoint_id": "turn.0"}):
        with pytest.raises(APIStatusError) as refused:
            await client.runs.create(tid, "counter", input={"count": 1}, **bad)
        assert refused.value.response.status_code == 422
        assert "after_seconds" in refused.value.response.json()["error"]["message"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_delayed_run_survives_a_restart(
    backend: str, server_factory: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    storage = f"sqlite:///{tmp_path}/delayed.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    first = server_factory(demo_env(storage))
    tid = _new()
    async with get_client(url=first.url, api_key=None) as client:
        run = await client.runs.create(tid, "counter", input={"count": 1}, after_seconds=2, if_not_exists="create")
        assert run["status"] == "pending"
    first.stop()
    second = server_factory(demo_env(storage))
    async with get_client(url=second.url, api_key=None) as client:
        assert await client.runs.join(tid, run["run_id"]) == {"count": 2, "log": ["tick"]}
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
