"""Re-attaching to a run that has finished: at once, on every process, with the ids the run's events really have.

Two apps on one database stand for two processes (each has its own in-process event log, as without Redis); with
Redis, two apps share the run's stream.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.conftest import make_settings


async def _stream(client: httpx.AsyncClient, run_id: str, after: int | None) -> list[tuple[str | None, dict[str, Any]]]:
    """(SSE id, event) of each frame of the run's stream after ``after``; a stream that does not end fails."""
    headers = {} if after is None else {"Last-Event-ID": str(after)}

    async def read() -> list[tuple[str | None, dict[str, Any]]]:
        frames: list[tuple[str | None, dict[str, Any]]] = []
        async with aconnect_sse(client, "GET", f"/v1/runs/{run_id}/stream", headers=headers) as source:
            assert source.response.status_code == 200
            async for sse in source.aiter_sse():
                if sse.data:
                    frames.append((sse.id or None, json.loads(sse.data)))
        return frames

    return await asyncio.wait_for(read(), 15)


async def _finished_run(client: httpx.AsyncClient) -> tuple[str, list[dict[str, Any]]]:
    thread_id = (await client.post("/v1/threads", json={})).json()["thread_id"]
    run = (await client.post(f"/v1/threads/{thread_id}/runs", json={"message": "hello"})).json()
    assert run["status"] == "succeeded"
    events = [event for _, event in await _stream(client, run["run_id"], None)]
    assert events[-1]["type"] == "run_completed"
    return run["run_id"], events


async def test_reattaching_at_or_past_the_end_on_the_process_that_ran_it_gives_the_end_at_once(
    client_for, persistent_storage_url: str
) -> None:
    client = await client_for(make_settings(storage_url=persistent_storage_url))
    run_id, events = await _finished_run(client)
    last = events[-1]["id"]
    assert [e["id"] for e in events] == list(range(1, last + 1))
    for after in (last, last + 5):
        frames = await _stream(client, run_id, after)
        assert frames == [(str(last), events[-1])]  # the run's end, with its own id
    frames = await _stream(client, run_id, last - 1)
    assert frames == [(str(last), events[-1])]


async def test_reattaching_through_another_process_gives_the_outcome_without_inventing_an_id(
    client_for, persistent_storage_url: str
) -> None:
    settings = make_settings(storage_url=persistent_storage_url)
    ran_it, other = await client_for(settings), await client_for(settings)
    run_id, events = await _finished_run(ran_it)
    for after in (None, 1, events[-1]["id"], events[-1]["id"] + 5):
        frames = await _stream(other, run_id, after)
        assert len(frames) == 1
        sse_id, event = frames[0]
        assert sse_id is None  # no id: a client's Last-Event-ID stays the last one it really received
        assert (event["id"], event["type"], event["data"]["status"]) == (0, "run_completed", "succeeded")


@pytest.mark.postgres
async def test_with_redis_every_process_answers_past_the_end_at_once_even_once_the_stream_expired(
    client_for, pg_url: str, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    settings = make_settings(storage_url=pg_url, redis_url=redis_url)
    ran_it, other = await client_for(settings), await client_for(settings)
    run_id, events = await _finished_run(ran_it)
    last = events[-1]["id"]
    for client in (ran_it, other):
        assert await _stream(client, run_id, last) == [(str(last), events[-1])]
        assert [int(sse_id or 0) for sse_id, _ in await _stream(client, run_id, 0)] == list(range(1, last + 1))
    direct = aioredis.Redis.from_url(redis_url)
    await direct.delete(f"chatplane:run:{run_id}", f"chatplane:run:{run_id}:seq")  # expired
    await direct.aclose()
    frames = await _stream(other, run_id, last)
    assert [(sse_id, event["id"], event["type"]) for sse_id, event in frames] == [(None, 0, "run_completed")]
