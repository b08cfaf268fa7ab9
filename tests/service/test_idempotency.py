"""Idempotency keys: a request sent again with its key gets the first one's run — never a second message — on
every way in that creates a run, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import make_settings


@pytest.fixture
async def api(client_for, persistent_storage_url: str) -> httpx.AsyncClient:
    return await client_for(make_settings(storage_url=persistent_storage_url, model="fake:echo?token_delay=0.01"))


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def _messages(api: httpx.AsyncClient, tid: str) -> list[str]:
    return [m["content"] for m in (await api.get(f"/v1/threads/{tid}/messages")).json()["messages"]]


async def test_a_request_sent_again_gets_the_first_run(api: httpx.AsyncClient) -> None:
    tid = (await api.post("/v1/threads", json={})).json()["thread_id"]
    body = {"message": "once", "background": True}
    first = await api.post(f"/v1/threads/{tid}/runs", json=body, headers=_key("k-1"))
    again = await api.post(f"/v1/threads/{tid}/runs", json=body, headers=_key("k-1"))
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    waited = await api.post(f"/v1/threads/{tid}/runs", json={"message": "once"}, headers=_key("k-1"))
    assert waited.json()["run_id"] == first.json()["run_id"] and waited.json()["output"]["content"] == "echo: once"
    assert await _messages(api, tid) == ["once", "echo: once"]
    other = await api.post(f"/v1/threads/{tid}/runs", json={"message": "twice"}, headers=_key("k-1"))
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    fresh = await api.post(f"/v1/threads/{tid}/runs", json={"message": "twice"}, headers=_key("k-2"))
    assert fresh.json()["run_id"] != first.json()["run_id"]
    assert await _messages(api, tid) == ["once", "echo: once", "twice", "echo: twice"]


async def test_a_refused_request_keeps_no_key(api: httpx.AsyncClient) -> None:
    """A run refused (the thread busy, policy reject) stores nothing — its key neither: sent again later, it runs."""
    tid = (await api.post("/v1/threads", json={})).json()["thread_id"]
    slow = await api.post(f"/v1/threads/{tid}/runs", json={"message": "a b c d e f g", "background": True})
    busy = await api.post(f"/v1/threads/{tid}/runs", json={"message": "next"}, headers=_key("k-busy"))
    assert busy.status_code == 409
    await api.post(f"/v1/runs/{slow.json()['run_id']}/cancel")
    ran = await api.post(f"/v1/threads/{tid}/runs", json={"message": "next"}, headers=_key("k-busy"))
    assert ran.status_code == 200 and ran.json()["output"]["content"] == "echo: next"


async def test_interrupt_and_stream_and_the_seed_api_are_idempotent(api: httpx.AsyncClient) -> None:
    tid = (await api.post("/v1/threads", json={})).json()["thread_id"]
    body = {"message": "jump in", "multitask": "interrupt", "background": True}
    first = await api.post(f"/v1/threads/{tid}/runs", json=body, headers=_key("k-int"))
    again = await api.post(f"/v1/threads/{tid}/runs", json=body, headers=_key("k-int"))
    assert again.json()["run_id"] == first.json()["run_id"]
    async with api.stream(
        "POST",
        f"/v1/threads/{tid}/runs/stream",
        json={"message": "jump in", "multitask": "interrupt"},
        headers=_key("k-int"),
    ) as streamed:
        text = "".join([line async for line in streamed.aiter_lines()])
    assert first.json()["run_id"] in text  # the first run's events, not a new run's
    seed = {"user_id": "local", "message": "seed once", "session_id": "s-idem"}
    answers = [(await api.post("/chat", json=seed, headers=_key("k-seed"))).json() for _ in range(2)]
    assert answers[0] == answers[1] and answers[0]["response"] == "echo: seed once"
    history = (await api.get("/history/s-idem")).json()["messages"]
    assert history == ["seed once", "echo: seed once"]


async def test_concurrent_requests_with_one_key_make_one_run(api: httpx.AsyncClient) -> None:
    tid = (await api.post("/v1/threads", json={})).json()["thread_id"]
    body = {"message": "all at once", "multitask": "enqueue"}
    answers = await asyncio.gather(
        *(api.post(f"/v1/threads/{tid}/runs", json=body, headers=_key("k-many")) for _ in range(20))
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["run_id"] for a in answers}) == 1
    assert {a.json()["output"]["content"] for a in answers} == {"echo: all at once"}
    assert await _messages(api, tid) == ["all at once", "echo: all at once"]


async def test_a_key_expires(client_for, persistent_storage_url: str) -> None:
    settings = make_settings(storage_url=persistent_storage_url, idempotency_ttl_s=0.2)
    api = await client_for(settings)
    tid = (await api.post("/v1/threads", json={})).json()["thread_id"]
    first = await api.post(f"/v1/threads/{tid}/runs", json={"message": "m"}, headers=_key("k-old"))
    await asyncio.sleep(0.3)
    later = await api.post(f"/v1/threads/{tid}/runs", json={"message": "m"}, headers=_key("k-old"))
    assert later.json()["run_id"] != first.json()["run_id"]


async def test_a_bad_key_is_a_422(api: httpx.AsyncClient) -> None:
    tid = (await api.post("/v1/threads", json={})).json()["thread_id"]
    refused = await api.post(f"/v1/threads/{tid}/runs", json={"message": "m"}, headers=_key("no spaces allowed"))
    assert refused.status_code == 422
