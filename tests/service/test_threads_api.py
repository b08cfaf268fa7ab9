"""/v1/threads, messages and runs in-process (waiting and background runs, errors)."""

from __future__ import annotations

import asyncio

import pytest

from chatplane.errors import StorageUnavailableError
from chatplane.storage.threads import ThreadStore
from chatplane.storage.turns import TurnStore
from tests.conftest import make_settings


async def _wait_done(client, run_id: str) -> dict:
    for _ in range(200):
        run = (await client.get(f"/v1/runs/{run_id}")).json()
        if run["status"] in ("succeeded", "failed", "cancelled", "waiting"):
            return run
        await asyncio.sleep(0.02)
    raise AssertionError("run did not finish")


async def test_thread_lifecycle(client_for, storage_url: str) -> None:
    client = await client_for(make_settings(storage_url=storage_url))
    created = await client.post("/v1/threads", json={"title": "Trip", "metadata": {"k": "v"}})
    assert created.status_code == 201
    thread = created.json()
    assert thread["agent"] == "chat" and thread["title"] == "Trip" and thread["metadata"] == {"k": "v"}
    tid = thread["thread_id"]

    assert (await client.get(f"/v1/threads/{tid}")).json()["thread_id"] == tid
    patched = await client.patch(f"/v1/threads/{tid}", json={"title": "Paris trip", "metadata": {"x": 1}})
    assert patched.json()["title"] == "Paris trip" and patched.json()["metadata"] == {"k": "v", "x": 1}

    run = await client.post(f"/v1/threads/{tid}/runs", json={"message": "hello"})
    assert run.status_code == 200
    body = run.json()
    assert body["status"] == "succeeded"
    assert body["output"]["content"] == "echo: hello"
    assert body["usage"]["output_tokens"] > 0 and body["usage"]["total_tokens"] > 0

    messages = (await client.get(f"/v1/threads/{tid}/messages")).json()
    assert [(m["role"], m["content"]) for m in messages["messages"]] == [
        ("user", "hello"),
        ("assistant", "echo: hello"),
    ]
    assert all(m["id"] for m in messages["messages"])
    assert messages["messages"][0]["created_at"] is not None

    assert (await client.delete(f"/v1/threads/{tid}")).status_code == 204
    assert (await client.get(f"/v1/threads/{tid}")).status_code == 404
    assert (await client.get(f"/v1/threads/{tid}/messages")).status_code == 404
    assert (await client.get(f"/v1/runs/{body['run_id']}")).status_code == 404


async def test_threads_list_newest_first_with_cursor(client_for) -> None:
    client = await client_for(make_settings())
    ids = [(await client.post("/v1/threads", json={"title": f"t{i}"})).json()["thread_id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/threads", params=params)).json()
        seen += [t["thread_id"] for t in page["threads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert (await client.get("/v1/threads", params={"cursor": "garbage!"})).status_code == 422


async def test_messages_are_paginated(client_for) -> None:
    client = await client_for(make_settings())
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    for i in range(3):
        await client.post(f"/v1/threads/{tid}/runs", json={"message": f"m{i}"})
    first = (await client.get(f"/v1/threads/{tid}/messages", params={"limit": 4})).json()
    assert len(first["messages"]) == 4 and first["next_cursor"] == "4"
    rest = (await client.get(f"/v1/threads/{tid}/messages", params={"limit": 4, "cursor": "4"})).json()
    assert [m["content"] for m in rest["messages"]] == ["m2", "echo: m2"] and rest["next_cursor"] is None


async def test_background_run_is_202_then_observable(client_for) -> None:
    client = await client_for(make_settings(model="fake:echo?delay=0.1"))
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    accepted = await client.post(f"/v1/threads/{tid}/runs", json={"message": "later", "background": True})
    assert accepted.status_code == 202
    assert accepted.json()["status"] in ("pending", "running")
    run = await _wait_done(client, accepted.json()["run_id"])
    assert run["status"] == "succeeded" and run["started_at"] and run["finished_at"]
    runs = (await client.get(f"/v1/threads/{tid}/runs")).json()
    assert [r["run_id"] for r in runs] == [run["run_id"]]


async def test_failed_run_keeps_the_message_and_reports_its_code(client_for) -> None:
    client = await client_for(make_settings(model="fake:echo?fail=error"))
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    failed = await client.post(f"/v1/threads/{tid}/runs", json={"message": "keep me"})
    assert failed.status_code == 502
    error = failed.json()["error"]
    assert error["code"] == "model_error" and error["run_id"]
    run = (await client.get(f"/v1/runs/{error['run_id']}")).json()
    assert run["status"] == "failed" and run["error"]["code"] == "model_error"
    messages = (await client.get(f"/v1/threads/{tid}/messages")).json()["messages"]
    assert [m["content"] for m in messages] == ["keep me"]


async def test_a_waited_for_run_whose_outcome_cannot_be_recorded_answers_with_its_error(
    client_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails every time the run's success is committed: after its retries the run is left as
    ``running`` for recovery (never recorded as a failure that keeps its answer), and the caller that waited is told
    the outcome recovery records — here ``worker_lost`` (``CHATPLANE_RUN_RECOVERY=fail``), a 503 naming the run."""
    settings = make_settings(storage_timeout_s=0.2, run_lease_s=1.0, run_recovery="fail")
    client = await client_for(settings)
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]

    async def outcome_not_recorded(*args: object, **kwargs: object) -> None:
        raise StorageUnavailableError()

    monkeypatch.setattr(TurnStore, "finish", outcome_not_recorded)
    failed = await client.post(f"/v1/threads/{tid}/runs", json={"message": "hello"})
    assert failed.status_code == 503
    error = failed.json()["error"]
    assert error["code"] == "worker_lost" and error["run_id"]


async def test_reject_policy_gives_409_while_busy(client_for) -> None:
    client = await client_for(make_settings(model="fake:echo?delay=0.3"))
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    first = await client.post(f"/v1/threads/{tid}/runs", json={"message": "one", "background": True})
    busy = await client.post(f"/v1/threads/{tid}/runs", json={"message": "two"})
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "thread_busy"
    await _wait_done(client, first.json()["run_id"])


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/threads/nope", None),
        ("patch", "/v1/threads/nope", {"title": "x"}),
        ("delete", "/v1/threads/nope", None),
        ("get", "/v1/threads/nope/messages", None),
        ("post", "/v1/threads/nope/runs", {"message": "x"}),
        ("post", "/v1/threads/nope/runs/stream", {"message": "x"}),
        ("get", "/v1/runs/nope", None),
        ("post", "/v1/runs/nope/cancel", None),
        ("get", "/v1/runs/nope/stream", None),
        ("post", "/v1/runs/nope/resume", {"decisions": [{"type": "approve"}]}),
    ],
)
async def test_unknown_ids_are_404(client_for, method: str, path: str, body: dict | None) -> None:
    client = await client_for(make_settings())
    response = await client.request(method, path, json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] in ("thread_not_found", "run_not_found")


async def test_bad_thread_and_run_bodies_are_422(client_for) -> None:
    client = await client_for(make_settings(max_message_chars=10))
    assert (await client.post("/v1/threads", json={"agent": "nope"})).status_code == 422
    assert (await client.post("/v1/threads", json={"metadata": {"x": "y" * 20_000}})).status_code == 422
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    for body in ({}, {"message": ""}, {"message": "x" * 11}, {"message": "x", "multitask": "never"}):
        assert (await client.post(f"/v1/threads/{tid}/runs", json=body)).status_code == 422
    assert (await client.post("/v1/runs/x/resume", json={"decisions": []})).status_code == 422


async def test_resuming_a_run_that_is_not_waiting_is_409(client_for) -> None:
    client = await client_for(make_settings())
    tid = (await client.post("/v1/threads", json={})).json()["thread_id"]
    run = (await client.post(f"/v1/threads/{tid}/runs", json={"message": "hi"})).json()
    response = await client.post(f"/v1/runs/{run['run_id']}/resume", json={"decisions": [{"type": "approve"}]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_state_conflict"


async def test_agents_are_listed(client_for) -> None:
    client = await client_for(make_settings())
    agents = (await client.get("/agents")).json()["agents"]
    assert "chat" in [a["name"] for a in agents]
    assert all(a["description"] for a in agents)


async def test_seed_sessions_are_threads_too(client_for) -> None:
    client = await client_for(make_settings())
    await client.post("/chat", json={"user_id": "alice", "message": "hi", "session_id": "s1"})
    threads = (await client.get("/v1/threads")).json()["threads"]
    assert [t["session_id"] for t in threads] == ["s1"]


async def test_thread_store_is_scoped_by_owner(storage_url: str) -> None:
    from chatplane.storage.engine import open_storage

    async with open_storage(make_settings(storage_url=storage_url)) as storage:
        store = ThreadStore(storage.db)
        mine = await store.create("alice", "chat", title="mine")
        assert await store.find(mine.thread_id, "bob") is None
        assert (await store.list("bob"))[0] == []
        assert await store.delete(mine.thread_id, "bob") is False
        assert (await store.get(mine.thread_id, "alice")).title == "mine"


async def test_a_thread_may_use_a_model_from_the_allowlist_only(client_for) -> None:
    client = await client_for(make_settings(model_allowlist=["fake:the other model"]))
    chosen = await client.post("/v1/threads", json={"model": "fake:the other model"})
    assert chosen.status_code == 201 and chosen.json()["model"] == "fake:the other model"
    run = (await client.post(f"/v1/threads/{chosen.json()['thread_id']}/runs", json={"message": "hi"})).json()
    assert run["output"]["content"] == "the other model"
    default = (await client.post("/v1/threads", json={})).json()
    assert default["model"] is None
    run = (await client.post(f"/v1/threads/{default['thread_id']}/runs", json={"message": "hi"})).json()
    assert run["output"]["content"] == "echo: hi"
    refused = await client.post("/v1/threads", json={"model": "openai:gpt-4o"})
    assert refused.status_code == 422 and "ALLOWLIST" in refused.json()["error"]["message"]
    assert (await client.post("/v1/threads", json={"model": "fake:echo"})).status_code == 201  # the server's own


async def test_without_an_allowlist_no_model_can_be_chosen(client_for) -> None:
    client = await client_for(make_settings())
    assert (await client.post("/v1/threads", json={"model": "fake:anything"})).status_code == 422


async def test_a_ttl_that_is_not_a_number_is_refused(client_for) -> None:
    """``ttl_days: true`` is not a number of days (pydantic's lax mode would have taken it for 1): a 422."""
    client = await client_for(make_settings())
    refused = await client.post("/v1/threads", json={"ttl_days": True})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request"
    assert (await client.post("/v1/threads", json={"ttl_days": 2})).status_code == 201
