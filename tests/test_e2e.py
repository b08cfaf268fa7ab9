"""End to end: a real ``chatplane serve`` process (uvicorn) over real HTTP."""

from __future__ import annotations

import json
import signal

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _chat(url: str, message: str, **extra: str) -> httpx.Response:
    return httpx.post(f"{url}/chat", json={"user_id": "alice", "message": message, **extra}, timeout=60)


def test_history_survives_a_server_restart(server_factory, persistent_storage_url: str) -> None:
    env = {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": persistent_storage_url}
    server = server_factory(env)
    assert _chat(server.url, "before restart").json()["response"] == "echo: before restart"
    assert server.stop() == -signal.SIGTERM
    assert "Application shutdown complete" in server.log()  # SIGTERM: a clean shutdown

    server = server_factory(env, port=server.port)
    assert _chat(server.url, "after restart").status_code == 200
    history = httpx.get(f"{server.url}/history/session-alice").json()["messages"]
    assert history == ["before restart", "echo: before restart", "after restart", "echo: after restart"]


def test_streaming_over_real_http(server_factory, tmp_path) -> None:
    server = server_factory(
        {"CHATPLANE_MODEL": "fake:alpha beta gamma?token_delay=0.05", "CHATPLANE_STORAGE_URL": "memory://"}
    )
    events: list[tuple[str, dict]] = []
    with httpx.stream(
        "POST", f"{server.url}/chat/stream", json={"user_id": "s", "message": "go"}, timeout=30
    ) as response:
        assert response.status_code == 200
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, json.loads(line.removeprefix("data: "))))
    assert [e for e, _ in events] == ["token", "token", "token", "done"]
    assert "".join(d["text"] for e, d in events if e == "token") == "alpha beta gamma"


def test_default_settings_write_sqlite_under_data(server_factory, tmp_path) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo"})
    assert _chat(server.url, "where am I stored?").status_code == 200
    assert (tmp_path / "data" / "chatplane.storage.database").exists()


def test_misconfigured_server_exits_with_a_clear_message(tmp_path) -> None:
    from tests.servers import ServerProcess, free_port

    server = ServerProcess({"CHATPLANE_MODEL": "openai:gpt-4o"}, free_port(), tmp_path)
    with pytest.raises(RuntimeError, match="server exited"):
        server.start(timeout=30)
    assert "OPENAI_API_KEY" in server.log()
    assert "Traceback" not in server.log()
