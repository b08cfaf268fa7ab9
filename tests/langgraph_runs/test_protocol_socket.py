"""The thread protocol's WebSocket taking every command, as the JS client sends them (one JSON frame each, answered
by ``id``), against a real server: ``run.start``, several subscriptions on one socket — one added after the run
ended gets its events again —, ``state.get``, ``subscription.unsubscribe``; refusals as error frames that leave the
socket open; another user's thread the same as a missing one; each frame counted against the rate limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.langgraph_runs.conftest import api_key, demo_env

pytestmark = pytest.mark.e2e

_HI = {"messages": [{"role": "user", "content": "hi there"}]}


class Socket:
    """A protocol WebSocket: ``command`` sends a frame and returns its answer; the events read meanwhile are kept."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.events: list[dict[str, Any]] = []
        self._ids = iter(range(1, 1000))

    async def command(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        command_id = next(self._ids)
        await self.connection.send(json.dumps({"id": command_id, "method": method, "params": params or {}}))
        return await self.answer(command_id)

    async def answer(self, command_id: int | None) -> dict[str, Any]:
        while True:
            frame = json.loads(await asyncio.wait_for(self.connection.recv(), 30))
            if frame["type"] == "event":
                self.events.append(frame)
            elif frame["id"] == command_id:
                return frame

    async def until_completed(self) -> list[dict[str, Any]]:
        """The events up to the root ``lifecycle`` ``completed`` (those already read first)."""
        while not any(_completed(e) for e in self.events):
            frame = json.loads(await asyncio.wait_for(self.connection.recv(), 30))
            assert frame["type"] == "event", frame
            self.events.append(frame)
        return self.events


def _completed(event: dict[str, Any]) -> bool:
    data = event["params"]["data"]
    return event["method"] == "lifecycle" and not event["params"]["namespace"] and data["event"] == "completed"


def _ws(url: str, thread_id: str) -> str:
    return f"{url.replace('http', 'ws', 1)}/threads/{thread_id}/stream/events"


def _text(events: list[dict[str, Any]]) -> str:
    data = [e["params"]["data"] for e in events if e["method"] == "messages"]
    return "".join(d["delta"]["text"] for d in data if d.get("event") == "content-block-delta")


async def test_commands_and_several_subscriptions_share_one_socket(lg_server: Any) -> None:
    async with websockets.connect(_ws(lg_server.url, str(uuid.uuid4()))) as connection:
        socket = Socket(connection)
        started = await socket.command("run.start", {"assistant_id": "support", "input": _HI})
        assert started["type"] == "success" and started["result"]["run_id"]
        assert isinstance(started["meta"]["applied_through_seq"], int)
        first = await socket.command("subscription.subscribe", {"channels": ["values", "lifecycle"]})
        second = await socket.command("subscription.subscribe", {"channels": ["messages"]})
        assert first["result"]["subscription_id"] != second["result"]["subscription_id"]
        events = await socket.until_completed()
        ids = [e["event_id"] for e in events]
        assert len(ids) == len(set(ids))  # each event once, whichever subscriptions want it
        for method in ("values", "messages", "lifecycle"):
            seqs = [e["seq"] for e in events if e["method"] == method]
            assert seqs == sorted(seqs) and seqs and seqs[0] > started["meta"]["applied_through_seq"]
        assert _text(events) == "support says hi there"
        assert events[-1]["method"] in ("lifecycle", "values")

        # A subscription added once the run has ended: its events again, from the run's first.
        socket.events = []
        late = await socket.command("subscription.subscribe", {"channels": ["messages", "lifecycle"]})
        assert _text(await socket.until_completed()) == "support says hi there"

        state = await socket.command("state.get", {"namespace": [], "keys": ["messages"]})
        assert [m["content"] for m in state["result"]["values"]["messages"]] == ["hi there", "support says hi there"]
        for subscription in (first, second, late):
            gone = await socket.command("subscription.unsubscribe", subscription["result"])
            assert gone == {"type": "success", "id": gone["id"], "result": {}}
        again = await socket.command("subscription.unsubscribe", first["result"])
        assert again["type"] == "error" and again["error"] == "no_such_subscription"


async def test_refused_commands_get_error_frames_and_the_socket_stays_open(lg_server: Any) -> None:
    async with websockets.connect(_ws(lg_server.url, str(uuid.uuid4()))) as connection:
        socket = Socket(connection)
        await connection.send("not json")
        assert (await socket.answer(None))["error"] == "invalid_argument"
        cases = [
            ("run.\x1b[31mexplode", {}, "unknown_command"),
            ("run.start", {}, "invalid_argument"),
            ("run.start", {"assistant_id": "support", "multitask_strategy": ["explode"]}, "invalid_argument"),
            ("agent.getTree", {}, "not_supported"),
            ("subscription.reconnect", {"run_id": "r"}, "not_supported"),
            ("state.get", {"namespace": []}, "thread_not_found"),  # the thread has not started yet
        ]
        for method, params, code in cases:
            frame = await socket.command(method, params)
            assert frame == {"type": "error", "id": frame["id"], "error": code, "message": frame["message"]}
            assert "explode" not in frame["message"]  # a value sent is never quoted back
        await socket.command("run.start", {"assistant_id": "counter", "input": {}})
        await socket.command("subscription.subscribe", {"channels": ["lifecycle"]})
        await socket.until_completed()
        bad = await socket.command("subscription.subscribe", {"channels": ["explode"]})
        assert bad["error"] == "invalid_argument" and "explode" not in bad["message"]
        refused = await socket.command("input.respond", {"interrupt_id": "i", "namespace": [], "response": 1})
        assert refused["error"] == "no_such_interrupt"
        assert (await socket.command("state.get"))["result"]["values"] == {"count": 1, "log": ["tick"]}

    # A subscription refused on a socket that has none (the Python client's only frame) ends the socket.
    async with websockets.connect(_ws(lg_server.url, str(uuid.uuid4()))) as connection:
        frame = await Socket(connection).command("subscription.subscribe", {"channels": []})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
    assert frame["error"] == "invalid_argument" and closed.value.rcvd and closed.value.rcvd.code == 4422


async def test_another_user_s_thread_over_the_socket_is_a_missing_one(two_users: tuple[Any, str, str]) -> None:
    server, alice_key, bob_key = two_users
    tid = str(uuid.uuid4())
    async with websockets.connect(_ws(server.url, tid), additional_headers={"x-api-key": alice_key}) as connection:
        alice = Socket(connection)
        await alice.command("run.start", {"assistant_id": "support", "input": _HI})
        await alice.command("subscription.subscribe", {"channels": ["lifecycle"]})
        await alice.until_completed()
    frames = []
    for thread_id in (tid, str(uuid.uuid4())):
        async with websockets.connect(
            _ws(server.url, thread_id), additional_headers={"x-api-key": bob_key}
        ) as connection:
            bob = Socket(connection)
            for method in ("state.get", "state.listCheckpoints", "input.respond"):
                frame = await bob.command(method, {"interrupt_id": "i", "response": 1} if "input" in method else {})
                frames.append((method, frame["error"], frame["message"]))
            if thread_id == tid:  # alice's: bob's run is refused (a missing one would be created)
                frame = await bob.command("run.start", {"assistant_id": "support", "input": _HI})
                assert frame["error"] == "thread_not_found"
    assert frames[:3] == frames[3:] and {f[1] for f in frames} == {"thread_not_found"}
    async with websockets.connect(_ws(server.url, tid), additional_headers={"x-api-key": alice_key}) as connection:
        state = await Socket(connection).command("state.get")
    assert state["result"]["values"]["messages"][-1]["content"] == "support says hi there"


def test_each_frame_counts_against_the_rate_limit(server_factory: Callable[..., Any], tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/limited.db"
    key = api_key("carol", storage, tmp_path)
    server = server_factory(demo_env(storage, CHATPLANE_RATE_LIMIT_PER_MINUTE="3"))

    async def frames() -> list[str]:
        url = _ws(server.url, str(uuid.uuid4()))
        async with websockets.connect(url, additional_headers={"x-api-key": key}) as connection:  # the 1st request
            socket = Socket(connection)
            return [(await socket.command("state.get")).get("error", "") for _ in range(3)]

    assert asyncio.run(frames()) == ["thread_not_found", "thread_not_found", "rate_limited"]
