"""A client that sends its headers or its body slowly is answered 408 and let go, in a real server (``chatplane
serve``), in one process and with several workers. Raw sockets: no HTTP client library sends this slowly."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.e2e

DEADLINES = {"CHATPLANE_REQUEST_HEADER_TIMEOUT_S": "1", "CHATPLANE_REQUEST_BODY_TIMEOUT_S": "1"}


def _slow_exchange(port: int, parts: list[bytes], pause_s: float) -> bytes:
    """Send ``parts`` with a pause between them, as long as the server listens; everything it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        for part in parts:
            try:
                sock.sendall(part)
            except OSError:  # the server closed the connection: read what it said
                break
            time.sleep(pause_s)
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes (a socket timeout fails the test)
            answer += chunk
        return answer


def _error(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def server(request: pytest.FixtureRequest, server_factory, tmp_path) -> Any:  # type: ignore[no-untyped-def]
    env = {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path}/slow.db", **DEADLINES}
    if request.param == 1:
        return server_factory(env)
    # Several workers need PostgreSQL and Redis; each reads its deadline from the environment.
    env["CHATPLANE_STORAGE_URL"] = request.getfixturevalue("pg_url")
    env["CHATPLANE_REDIS_URL"] = request.getfixturevalue("redis_url")
    return server_factory(env, args=["--workers", "2"])


def test_headers_sent_slowly_get_a_408_and_the_connection_closed(server) -> None:  # type: ignore[no-untyped-def]
    port = int(server.url.rsplit(":", 1)[1])
    trickle = [b"GET /healthz HTTP/1.1\r\nHost: x\r\n"] + [b"X-Slow: yes\r\n"] * 40 + [b"\r\n"]
    status, body = _error(_slow_exchange(port, trickle, 0.2))
    assert (status, body["error"]["code"]) == (408, "request_timeout")
    assert _slow_exchange(port, [], 0).startswith(b"HTTP/1.1 408")  # a connection that says nothing


def test_a_body_sent_slowly_gets_a_408(server) -> None:  # type: ignore[no-untyped-def]
    port = int(server.url.rsplit(":", 1)[1])
    head = b"POST /v1/threads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n"
    status, body = _error(_slow_exchange(port, [head] + [b" "] * 40, 0.2))
    assert (status, body["error"]["code"]) == (408, "request_timeout")


def test_prompt_clients_and_long_lived_connections_are_untouched(server) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, timeout=15) as client:  # one keep-alive connection
        thread = client.post("/v1/threads", json={"title": "t"}).json()["thread_id"]
        time.sleep(1.5)  # longer than both deadlines, between two requests and after them
        assert client.get(f"/v1/threads/{thread}").status_code == 200
    ws_url = server.url.replace("http://", "ws://") + f"/v1/threads/{thread}/ws"
    with connect(ws_url) as ws:
        time.sleep(1.5)  # a WebSocket lives on past the header deadline
        ws.send(json.dumps({"type": "message", "message": "hi"}))
        assert json.loads(ws.recv(timeout=15))["type"] == "accepted"
