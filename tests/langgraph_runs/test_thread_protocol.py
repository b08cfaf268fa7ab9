"""The thread protocol (``client.threads.stream``: ``/threads/{id}/commands`` and ``/threads/{id}/stream/events``)
through langgraph-sdk's own client, against a real server: values and message tokens, an interrupt answered with
``run.respond``, a second subscriber and a reconnect ``since`` a seq, another user's thread, malformed commands."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
import websockets
from langgraph_sdk import get_client

pytestmark = pytest.mark.e2e

_HI = {"messages": [{"role": "user", "content": "hi there"}]}
_VALUES = {"channels": ["values"]}


async def _until(events: AsyncIterator[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    """The events up to the root ``lifecycle`` event ``status``."""
    seen = []
    async for event in events:
        seen.append(event)
        if event["method"] == "lifecycle" and not event["params"]["namespace"]:
            if event["params"]["data"]["event"] == status:
                return seen
    return seen


async def _eventually(condition: Any) -> None:
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def test_a_run_streams_its_values_and_message_tokens(lg_client: Any) -> None:
    async with lg_client.threads.stream(assistant_id="support") as thread:
        await thread.run.start(input=_HI)

        async def tokens() -> list[list[str]]:
            # Each message's stream is fed while the projection is iterated: its text is read once it has ended.
            streams = [message async for message in thread.messages]
            return [[delta async for delta in message.text] for message in streams]

        async def values() -> list[Any]:
            return [v async for v in thread.values]

        texts, states = await asyncio.wait_for(asyncio.gather(tokens(), values()), 30)
        output = await thread.output.with_timeout(30)
        state = await thread._send_command(
            "state.get", {"namespace": [], "keys": ["messages"]}
        )  # what the JS client sends
    assert state["values"] == output and state["checkpoint"]["id"]
    assert texts == [["support", " ", "says", " ", "hi", " ", "there"]]  # the fake model streams word by word
    assert output["messages"][-1]["content"] == "support says hi there"
    assert states[-1] == output  # the last values event is the state the run ended with
    assert [m["content"] for m in states[-1]["messages"]] == ["hi there", "support says hi there"]


async def test_an_interrupt_is_surfaced_and_run_respond_resumes_the_same_run(lg_client: Any) -> None:
    async with lg_client.threads.stream(assistant_id="approval") as thread:
        started = await thread.run.start(input={"request": "x"})
        await _eventually(lambda: thread.interrupted)  # the client's lifecycle watcher saw `input.requested`
        assert [i["value"] for i in thread.interrupts] == [{"question": "approve x?"}]
        state = await lg_client.threads.get_state(thread.thread_id)  # paused inside a subgraph (was a 500)
        assert state["values"] == {"request": "x"} and state["next"] == ["review"]
        assert state["tasks"][0]["checkpoint"]["checkpoint_ns"].startswith("review:")

        await thread.run.respond("yes")
        output = await thread.output.with_timeout(30)
    assert output == {"request": "x", "decision": "yes", "done": True}
    (run,) = await lg_client.runs.list(thread.thread_id)  # resumed, not a second run
    assert run["run_id"] == started["run_id"] and run["status"] == "success"


async def test_a_second_subscriber_and_a_reconnect_since_a_seq_get_each_event_once(lg_client: Any) -> None:
    tid = str(uuid.uuid4())
    everything = ["values", "updates", "messages", "lifecycle", "custom", "input", "tools"]
    async with lg_client.threads.stream(tid, assistant_id="support") as first:
        await first.run.start(input=_HI)
        whole = await asyncio.wait_for(_until(first.subscribe(everything), "completed"), 30)
    seqs = [e["seq"] for e in whole]
    assert seqs == sorted(set(seqs)) and len({e["event_id"] for e in whole}) == len(whole)

    # Another client on the same thread: without `since`, the newest run from its start — the same events.
    async with lg_client.threads.stream(tid, assistant_id="support") as second:
        again = await asyncio.wait_for(_until(second.subscribe(everything), "completed"), 30)
    assert [e["event_id"] for e in again] == [e["event_id"] for e in whole]

    # A reconnect `since` a seq halfway: exactly the events after it, then the next run's from its first.
    half = whole[len(whole) // 2]["seq"]
    async with lg_client.http.client.stream(
        "POST", f"/threads/{tid}/stream/events", json={"channels": everything, "since": half}
    ) as response:
        assert response.status_code == 200
        async with lg_client.threads.stream(tid, assistant_id="support") as third:  # its stream opens first
            await third.run.start(input={"messages": [{"role": "user", "content": "again"}]})
            output = await third.output.with_timeout(30)  # this run's end, not the previous one's
        assert output["messages"][-1]["content"] == "support says again"
        resumed = await asyncio.wait_for(_read_sse(response, runs=2), 30)
    first_run = [e for e in resumed if e["seq"] <= whole[-1]["seq"]]
    assert [e["event_id"] for e in first_run] == [e["event_id"] for e in whole if e["seq"] > half]
    second_run = resumed[len(first_run) :]
    assert second_run[0]["params"]["data"] == {"event": "started", "graph_name": "support"}
    assert all(e["seq"] > whole[-1]["seq"] for e in second_run)


async def _read_sse(response: httpx.Response, *, runs: int) -> list[dict[str, Any]]:
    """The protocol events of a raw SSE response, until ``runs`` runs have completed."""
    out: list[dict[str, Any]] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            event = json.loads(line[5:])
            out.append(event)
            if event["method"] == "lifecycle" and event["params"]["data"]["event"] == "completed":
                runs -= 1
                if not runs:
                    return out
    return out


async def test_malformed_and_unsupported_commands_are_refused_with_the_api_s_error_and_their_id(lg_client: Any) -> None:
    tid = str(uuid.uuid4())
    http = lg_client.http.client
    cases = [
        (b"not json", None, "invalid_argument"),
        (b'{"method": "run.start", "params": {}}', None, "invalid_argument"),
        (b'{"id": 1, "method": "run.start", "params": {}}', 1, "invalid_argument"),
        (b'{"id": 2, "method": "run.start", "params": {"assistant_id": "support", "input": 3}}', 2, "invalid_argument"),
        (b'{"id": 3, "method": "run.\\u001b[31mexplode", "params": {}}', 3, "unknown_command"),
        (b'{"id": 4, "method": "input.inject", "params": {"content": "x"}}', 4, "not_supported"),
    ]
    for body, command_id, code in cases:
        response = await http.post(
            f"/threads/{tid}/commands", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert response.json() == {"type": "error", "id": command_id, "error": {"code": code, "message": ANY}}
        assert "explode" not in error["message"]  # a value sent is never quoted back
    response = await http.post("/threads/a%01b/commands", json={"id": 1, "method": "run.start", "params": {}})
    assert response.status_code == 422 and "thread_id" in response.json()["error"]["message"]
    response = await http.post(f"/threads/{tid}/stream/events", json={"channels": ["nonsense"]})
    assert response.status_code == 422

    async with lg_client.threads.stream(tid, assistant_id="counter") as thread:
        await thread.run.start(input={})
        await thread.output.with_timeout(30)
        with pytest.raises(httpx.HTTPStatusError) as refused:  # nothing waits for input on this thread
            await thread._send_command("input.respond", {"interrupt_id": "i", "namespace": [], "response": 1})
    assert refused.value.response.status_code == 409
    assert refused.value.response.json()["error"]["code"] == "no_such_interrupt"


async def test_another_user_s_thread_is_the_same_404_as_a_missing_one(two_users: tuple[Any, str, str]) -> None:
    server, alice_key, bob_key = two_users
    async with (
        get_client(url=server.url, api_key=alice_key) as alice,
        get_client(url=server.url, api_key=bob_key) as bob,
    ):
        tid = str(uuid.uuid4())
        async with alice.threads.stream(tid, assistant_id="support") as thread:
            await thread.run.start(input=_HI)
            await thread.output.with_timeout(30)
        missing = str(uuid.uuid4())
        bodies = set()
        for thread_id in (tid, missing):
            response = await bob.http.client.post(f"/threads/{thread_id}/stream/events", json={"channels": ["values"]})
            assert response.status_code == 404
            bodies.add(response.content)
        respond = {"id": 1, "method": "input.respond", "params": {"interrupt_id": "i", "namespace": [], "response": 1}}
        response = await bob.http.client.post(f"/threads/{tid}/commands", json=respond)
        assert response.status_code == 404
        bodies.add(response.content)
        with pytest.raises(httpx.HTTPStatusError) as refused:
            async with bob.threads.stream(tid, assistant_id="support") as theirs:
                await theirs.run.start(input=_HI)
        assert refused.value.response.status_code == 404
        bodies.add(refused.value.response.content)
        assert len(bodies) == 1
        for thread_id in (tid, missing):  # the WebSocket transport: its subscription refused alike, close code 4404
            url = f"{server.url.replace('http', 'ws', 1)}/threads/{thread_id}/stream/events"
            async with websockets.connect(url, additional_headers={"x-api-key": bob_key}) as socket:
                await socket.send(json.dumps({"id": 1, "method": "subscription.subscribe", "params": _VALUES}))
                frame = json.loads(await socket.recv())
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await socket.recv()
            assert frame["type"] == "error" and closed.value.rcvd is not None and closed.value.rcvd.code == 4404
        assert (await alice.threads.get_state(tid))["values"]["messages"][-1]["content"] == "support says hi there"


def test_the_sync_client_starts_a_run_and_reads_its_output(lg_sync_client: Any) -> None:
    with lg_sync_client.threads.stream(assistant_id="counter") as thread:
        thread.run.start(input={}, config={"configurable": {}})
        assert thread.output == {"count": 1, "log": ["tick"]}
    (run,) = lg_sync_client.runs.list(thread.thread_id)
    assert run["status"] == "success"


async def test_the_websocket_transport_carries_the_same_events(lg_client: Any) -> None:
    async with lg_client.threads.stream(assistant_id="approval", transport="websocket") as thread:
        await thread.run.start(input={"request": "x"})
        await _eventually(lambda: thread.interrupted)
        assert [i["value"] for i in thread.interrupts] == [{"question": "approve x?"}]
        await thread.run.respond("yes")
        assert await thread.output.with_timeout(30) == {"request": "x", "decision": "yes", "done": True}

    async with lg_client.threads.stream(assistant_id="support", transport="websocket") as thread:
        await thread.run.start(input=_HI)
        events = await asyncio.wait_for(_until(thread.subscribe(["messages", "lifecycle"]), "completed"), 30)
    deltas = [
        e["params"]["data"]["delta"]["text"]
        for e in events
        if e["params"]["data"].get("event") == "content-block-delta"
    ]
    assert "".join(deltas) == "support says hi there"


async def test_checkpoints_are_listed_and_a_run_forks_from_one(lg_client: Any) -> None:
    async with lg_client.threads.stream(assistant_id="support") as thread:
        await thread.run.start(input=_HI)
        await thread.output.with_timeout(30)
        listed = await thread._send_command("state.listCheckpoints", {"namespace": [], "limit": 10})
        latest, start = listed["checkpoints"]  # a messages graph's history: its branch points, then the latest
        assert start == {"id": "turn.0", "step": -1, "metadata": {"source": "branch", "step": -1}}
        assert latest["timestamp"] and latest["metadata"]["source"] == "loop"
        older = await thread._send_command("state.listCheckpoints", {"namespace": [], "before": latest["id"]})
        assert older["checkpoints"] == [start]

        edited = {"messages": [{"role": "user", "content": "edited"}]}
        forked = await thread._send_command("state.fork", {"checkpoint_id": "turn.0", "input": edited})
    assert forked["thread_id"] == thread.thread_id
    await lg_client.runs.join(thread.thread_id, forked["run_id"])
    state = await lg_client.threads.get_state(thread.thread_id)  # a new branch from the start
    assert [m["content"] for m in state["values"]["messages"]] == ["edited", "support says edited"]

    async with lg_client.threads.stream(assistant_id="counter") as counter:  # a graph without messages
        await counter.run.start(input={})
        await counter.output.with_timeout(30)
        listed = await counter._send_command("state.listCheckpoints", {"limit": 2})
        assert [c["step"] for c in listed["checkpoints"]] == [1, 0]  # LangGraph's checkpoints, newest first
        for params in ({"checkpoint_id": listed["checkpoints"][1]["id"]}, {}, {"checkpoint_id": 3}):
            with pytest.raises(httpx.HTTPStatusError) as refused:  # it forks from branch points only
                await counter._send_command("state.fork", params)
            assert refused.value.response.json()["error"]["code"] == "invalid_argument"
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await counter._send_command("state.listCheckpoints", {"limit": 0})
        assert refused.value.response.status_code == 422
