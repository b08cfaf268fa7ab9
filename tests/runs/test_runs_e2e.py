"""Runs over a real uvicorn process: token streaming, re-attach, cancel, double-texting, WebSocket."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.sse import iter_events

pytestmark = pytest.mark.e2e

LONG_REPLY = " ".join(f"word{i}" for i in range(60))


@pytest.fixture
def slow_server(server_factory):
    """A server whose model streams a 60-word answer, 50 ms per word."""
    return server_factory(
        {
            "CHATPLANE_MODEL": f"fake:{LONG_REPLY}?token_delay=0.05",
            "CHATPLANE_STORAGE_URL": "memory://",
            "CHATPLANE_SSE_PING_S": "0.2",
        }
    )


def _thread(client: httpx.Client) -> str:
    return str(client.post("/v1/threads", json={}).json()["thread_id"])


def test_tokens_arrive_before_the_run_ends(slow_server) -> None:
    with httpx.Client(base_url=slow_server.url, timeout=30) as client:
        tid = _thread(client)
        arrivals: list[tuple[str, float]] = []
        for event in iter_events(client, "POST", f"/v1/threads/{tid}/runs/stream", json={"message": "go"}):
            arrivals.append((event["type"], time.monotonic()))
        kinds = [k for k, _ in arrivals]
        assert kinds[0] == "run_started" and kinds[-1] == "run_completed"
        assert kinds.count("token") == 60
        first_token = next(t for k, t in arrivals if k == "token")
        assert first_token < arrivals[-1][1]  # streamed, not delivered at the end
        assert "message" in kinds


def test_dropped_stream_reattaches_and_gets_every_event_once(slow_server) -> None:
    with httpx.Client(base_url=slow_server.url, timeout=30) as client:
        tid = _thread(client)
        received: list[dict] = []
        for event in iter_events(client, "POST", f"/v1/threads/{tid}/runs/stream", json={"message": "go"}):
            received.append(event)
            if len(received) == 10:
                break  # the connection drops mid-run
        run_id = received[0]["run_id"]
        time.sleep(0.5)  # the run goes on without a listener
        last = str(received[-1]["id"])
        for event in iter_events(client, "GET", f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": last}):
            received.append(event)
        ids = [e["id"] for e in received]
        assert ids == list(range(1, len(ids) + 1))  # contiguous, no duplicates
        assert received[-1]["type"] == "run_completed"
        text = "".join(e["data"]["text"] for e in received if e["type"] == "token")
        assert text == LONG_REPLY
        # a late re-attach from the start replays everything
        replay = list(iter_events(client, "GET", f"/v1/runs/{run_id}/stream"))
        assert [e["id"] for e in replay] == ids


def test_cancel_stops_the_stream_and_keeps_the_partial_answer(slow_server) -> None:
    with httpx.Client(base_url=slow_server.url, timeout=30) as client:
        tid = _thread(client)
        run = client.post(f"/v1/threads/{tid}/runs", json={"message": "go", "background": True}).json()
        tokens = 0
        for event in iter_events(client, "GET", f"/v1/runs/{run['run_id']}/stream"):
            if event["type"] == "token":
                tokens += 1
                if tokens == 5:
                    cancelled = client.post(f"/v1/runs/{run['run_id']}/cancel").json()
                    assert cancelled["status"] == "cancelled"
            last = event
        assert last["type"] == "run_cancelled"
        messages = client.get(f"/v1/threads/{tid}/messages").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        partial = messages[1]
        assert partial["status"] == "cancelled"
        assert LONG_REPLY.startswith(partial["content"]) and 5 <= len(partial["content"].split()) < 60
        # the thread goes on normally afterwards
        after = client.post(f"/v1/threads/{tid}/runs", json={"message": "again"}).json()
        assert after["status"] == "succeeded"


async def _post_many(url: str, tid: str, policy: str, n: int = 20) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/v1/threads/{tid}/runs", json={"message": f"m{i}", "multitask": policy, "background": True}
                )
                for i in range(n)
            )
        )


def _wait_idle(client: httpx.Client, tid: str) -> list[dict]:
    for _ in range(600):
        runs = client.get(f"/v1/threads/{tid}/runs").json()
        if all(r["status"] in ("succeeded", "failed", "cancelled") for r in runs):
            return list(reversed(runs))  # oldest first
        time.sleep(0.05)
    raise AssertionError("runs did not finish")


def _turns(messages: list[dict]) -> list[tuple[str, str | None]]:
    """(user message, the assistant message right after it or None)."""
    turns = []
    for i, m in enumerate(messages):
        if m["role"] == "user":
            following = messages[i + 1] if i + 1 < len(messages) and messages[i + 1]["role"] == "assistant" else None
            turns.append((m["content"], following["content"] if following else None))
    return turns


@pytest.mark.parametrize("policy", ["reject", "enqueue", "interrupt"])
def test_twenty_concurrent_messages_into_one_thread(server_factory, policy: str) -> None:
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:echo?delay=0.1&token_delay=0.01", "CHATPLANE_STORAGE_URL": "memory://"}
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tid = _thread(client)
        responses = asyncio.run(_post_many(server.url, tid, policy))
        accepted = {
            r.json()["run_id"]: (f"m{i}", r.json()["created_at"])
            for i, r in enumerate(responses)
            if r.status_code == 202
        }
        statuses = sorted({r.status_code for r in responses})
        runs = _wait_idle(client, tid)
        messages = client.get(f"/v1/threads/{tid}/messages", params={"limit": 500}).json()["messages"]
        turns = _turns(messages)
        assert set(accepted) == {r["run_id"] for r in runs}
        if policy == "reject":
            assert statuses == [202, 409] and len(accepted) >= 1
            assert all(r.json()["error"]["code"] == "thread_busy" for r in responses if r.status_code == 409)
        else:
            assert statuses == [202] and len(accepted) == 20
        # nothing lost, nothing reordered: one user message per accepted run, in acceptance order
        in_acceptance_order = [message for message, _ in sorted(accepted.values(), key=lambda v: v[1])]
        assert [user for user, _ in turns] == in_acceptance_order
        assert [r["status"] for r in runs][-1] == "succeeded"
        if policy in ("reject", "enqueue"):
            assert all(r["status"] == "succeeded" for r in runs)
            assert all(answer == f"echo: {user}" for user, answer in turns)
        else:  # interrupt: every answer belongs to its question, cut short or whole
            for user, answer in turns:
                assert answer is None or f"echo: {user}".startswith(answer)
            assert turns[-1][1] == f"echo: {turns[-1][0]}"


def test_enqueue_keeps_acceptance_order(server_factory) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo?delay=0.05", "CHATPLANE_STORAGE_URL": "memory://"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tid = _thread(client)
        responses = asyncio.run(_post_many(server.url, tid, "enqueue"))
        order = [r.json() for r in responses]
        order.sort(key=lambda r: r["created_at"])
        _wait_idle(client, tid)
        messages = client.get(f"/v1/threads/{tid}/messages", params={"limit": 500}).json()["messages"]
        users = [m["content"] for m in messages if m["role"] == "user"]
        runs = {r["run_id"]: r for r in client.get(f"/v1/threads/{tid}/runs").json()}
        assert len(users) == 20 == len(runs)
        started = sorted(runs.values(), key=lambda r: r["started_at"])
        assert [r["run_id"] for r in started] == [r["run_id"] for r in order]


async def test_websocket_sends_messages_streams_events_and_cancels(slow_server) -> None:
    async with httpx.AsyncClient(base_url=slow_server.url) as http:
        tid = (await http.post("/v1/threads", json={})).json()["thread_id"]
    ws_url = slow_server.url.replace("http://", "ws://") + f"/v1/threads/{tid}/ws"
    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "message", "message": "hello"}))
        accepted = json.loads(await ws.recv())
        assert accepted["type"] == "accepted"
        run_id = accepted["run"]["run_id"]
        tokens = 0
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "event" and frame["event"]["type"] == "token":
                tokens += 1
                if tokens == 3:
                    await ws.send(json.dumps({"type": "cancel", "run_id": run_id}))
            if frame["type"] == "event" and frame["event"]["type"] == "run_cancelled":
                break
        await ws.send(json.dumps({"type": "bogus"}))
        while (frame := json.loads(await ws.recv()))["type"] != "error":
            pass
        assert frame["error"]["code"] == "invalid_request"
        await ws.send(json.dumps({"type": "message", "message": ""}))
        while (frame := json.loads(await ws.recv()))["type"] != "error":
            pass
        assert frame["error"]["code"] == "invalid_request"


async def test_websocket_to_unknown_thread_is_closed_with_404(server_factory) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    async with connect(server.url.replace("http://", "ws://") + "/v1/threads/nope/ws") as ws:
        frame = json.loads(await ws.recv())
        assert frame["error"]["code"] == "thread_not_found"
        await ws.wait_closed()
        assert ws.close_code == 4404


def test_heartbeats_while_the_model_is_silent(server_factory) -> None:
    server = server_factory(
        {
            "CHATPLANE_MODEL": "fake:late?delay=1.0",
            "CHATPLANE_STORAGE_URL": "memory://",
            "CHATPLANE_SSE_PING_S": "0.2",
        }
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tid = _thread(client)
        with client.stream("POST", f"/v1/threads/{tid}/runs/stream", json={"message": "go"}) as response:
            lines = list(response.iter_lines())
        assert sum(1 for line in lines if line.startswith(":")) >= 2
