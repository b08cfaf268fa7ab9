"""The thread protocol through ``@langchain/langgraph-sdk``'s own ``client.threads.stream`` (the JS client, pinned in
``package-lock.json``; ``protocol_client.mjs`` run by Node), against a real chatplane server, over SSE and over the
WebSocket — where the client sends every command on its socket and a subscription per projection: a run's tokens
and values to its end, then ``state.get``; an interrupt answered with ``input.respond`` — the same run goes on —,
and one answered twice refused; ``state.listCheckpoints``, then ``state.fork`` from the thread's start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client

from tests.conftest import IN_CI
from tests.langgraph_runs.conftest import api_key, demo_env

pytestmark = pytest.mark.e2e

UI = Path(__file__).parent
SCRIPT = UI / "protocol_client.mjs"
TRANSPORTS = ["sse", "websocket"]


@pytest.fixture(scope="module")
def node() -> list[str]:
    """``node`` with what it needs for the script: a ``WebSocket`` global (behind a flag in Node 20)."""
    found = shutil.which("node")
    missing = (
        "node is not installed"
        if found is None
        else "@langchain/langgraph-sdk is not installed (`make test`, or `npm ci` in tests/langgraph_ui)"
        if not (UI / "node_modules" / "@langchain" / "langgraph-sdk").is_dir()
        else None
    )
    if missing:
        if IN_CI:
            pytest.fail(missing + " — CI requires it.")
        pytest.skip(missing)
    assert found is not None
    probe = subprocess.run([found, "-p", "typeof WebSocket"], capture_output=True, text=True, check=True, timeout=30)
    return [found] if probe.stdout.strip() == "function" else [found, "--experimental-websocket"]


@dataclass
class Server:
    url: str
    key: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, server_factory: Any, tmp_path: Path) -> Server:
    """The demo project with an API key (the script sends it: a header over SSE, the socket's handshake's over the
    WebSocket), on SQLite or PostgreSQL."""
    storage = f"sqlite:///{tmp_path}/js.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    key = api_key("alice", storage, tmp_path)
    return Server(server_factory(demo_env(storage)).url, key)


def run_script(node: list[str], server: Server, transport: str, scenario: str, key: str = "") -> dict[str, Any]:
    """The script's JSON; its output in the failure message if it fails."""
    env = {**os.environ, "CHATPLANE_KEY": key or server.key}
    args = [*node, str(SCRIPT), server.url, transport, scenario]
    done = subprocess.run(args, cwd=UI, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"protocol_client.mjs failed:\n{done.stdout}\n{done.stderr}"
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"protocol_client.mjs printed no JSON:\n{done.stdout}\n{done.stderr}")
    return result


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_run_streams_its_tokens_and_values_to_the_end(node: list[str], server: Server, transport: str) -> None:
    result = run_script(node, server, transport, "tokens")
    assert result["messages"] == [["support", " ", "says", " ", "hi", " ", "there"]]  # the fake model, word by word
    answer = [{"type": "human", "content": "hi there"}, {"type": "ai", "content": "support says hi there"}]
    assert result["values"][-1] == result["output"] == {"messages": answer}
    state = result["state"]
    assert [m["content"] for m in state["values"]["messages"]] == ["hi there", "support says hi there"]
    assert state["checkpoint"]["id"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_interrupt_is_answered_and_the_same_run_goes_on(node: list[str], server: Server, transport: str) -> None:
    result = run_script(node, server, transport, "interrupt")
    (asked,) = result["interrupts"]
    assert asked["payload"] == {"question": "approve x?"} and asked["interruptId"]
    done = {"request": "x", "decision": "yes", "done": True}
    assert result["values"][-1] == done and result["state"]["values"] == done
    # Answered again, nothing waits: the SSE transport's command fails with the 409, the WebSocket's with the code.
    refused = result["refused"]
    assert refused["status"] == 409 if transport == "sse" else refused["code"] == "no_such_interrupt"
    with get_sync_client(url=server.url, api_key=server.key) as client:
        (run,) = client.runs.list(result["thread_id"])
    assert run["run_id"] == result["run_id"] and run["status"] == "success"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_run_forks_from_a_listed_checkpoint(node: list[str], server: Server, transport: str) -> None:
    result = run_script(node, server, transport, "fork")
    assert [c["id"] for c in result["checkpoints"]][-1] == "turn.0"  # the thread's start, then its latest state
    assert result["forked"]["thread_id"] == result["thread_id"] and result["forked"]["run_id"]
    messages = result["state"]["values"]["messages"]
    assert [m["content"] for m in messages] == ["edited", "support says edited"]  # a new branch from the start


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_wrong_key_is_refused_for_good(node: list[str], server: Server, transport: str) -> None:
    result = run_script(node, server, transport, "refused", key="cp_wrong")
    assert result["refused"]["status"] == 401  # the WebSocket's close code 4401, read by the client as the 401
