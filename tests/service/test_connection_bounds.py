"""Client connections are bounded in requests and in age, in a real server (``chatplane serve``): the response at
the bound says ``Connection: close`` and the connection ends after it, so the client's next connection is accepted
by whichever worker takes it — clients spread over the workers again after one restarts."""

from __future__ import annotations

import socket
import time
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.e2e

_GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _exchange(sock: socket.socket) -> bytes | None:
    """One request on an open connection: the response's head (lower-cased), or None when the server had closed."""
    try:
        sock.sendall(_GET)
    except OSError:
        return None
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b'{"status":"ok"}'):
        chunk = sock.recv(65536)
        if not chunk:
            return None if not answer else answer.lower()
        answer += chunk
    return answer.partition(b"\r\n\r\n")[0].lower()


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _worker_of(server: Any, sock: socket.socket) -> int:
    """The pid of the worker process holding the server side of ``sock``."""
    local_port = sock.getsockname()[1]
    for child in psutil.Process(server.proc.pid).children(recursive=True):
        if any(c.raddr and c.raddr.port == local_port for c in child.net_connections(kind="tcp")):
            return int(child.pid)
    raise AssertionError("no worker holds this connection")


@pytest.fixture
def two_workers(server_factory, pg_url: str, redis_url: str) -> Any:  # type: ignore[no-untyped-def]
    env = {
        "CHATPLANE_MODEL": "fake:echo",
        "CHATPLANE_STORAGE_URL": pg_url,
        "CHATPLANE_REDIS_URL": redis_url,
        "CHATPLANE_CONNECTION_MAX_REQUESTS": "4",
        "CHATPLANE_CONNECTION_MAX_AGE_S": "0",
    }
    return server_factory(env, args=["--workers", "2"])


def test_a_connection_is_closed_after_its_requests_bound_and_the_client_lands_anew(two_workers: Any) -> None:
    port = int(two_workers.url.rsplit(":", 1)[1])
    workers: list[int] = []
    for _ in range(96):  # a client that keeps its connection, reconnecting only when the server closes it
        if len(set(workers)) == 2 and len(workers) >= 8:
            break  # the kernel hands each new connection to a waiting worker: a busy machine may favour one a while
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            heads = [_exchange(sock)]
            workers.append(_worker_of(two_workers, sock))  # accepted by now: it answered
            heads += [_exchange(sock) for _ in range(3)]
            assert all(head is not None and head.startswith(b"http/1.1 200") for head in heads)
            assert [b"connection: close" in (head or b"") for head in heads] == [False, False, False, True]
            assert _closed_by_server(sock)  # ended after the fourth response, nothing lost
    assert len(set(workers)) == 2, workers  # new connections reached both workers
    assert "Traceback" not in two_workers.log()


def test_a_connection_older_than_its_age_bound_is_closed_after_its_next_response(server_factory, tmp_path) -> None:
    env = {
        "CHATPLANE_MODEL": "fake:echo",
        "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path}/age.db",
        "CHATPLANE_CONNECTION_MAX_AGE_S": "1",
    }
    server = server_factory(env)
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        first = _exchange(sock)
        assert first is not None and b"connection: close" not in first
        time.sleep(1.3)  # past the age bound, within keep-alive (5 s): the connection is still open
        late = _exchange(sock)
        assert late is not None and late.startswith(b"http/1.1 200") and b"connection: close" in late
        assert _closed_by_server(sock)


def test_no_bounds_keep_a_connection_open(server_factory, tmp_path) -> None:
    env = {
        "CHATPLANE_MODEL": "fake:echo",
        "CHATPLANE_STORAGE_URL": f"sqlite:///{tmp_path}/open.db",
        "CHATPLANE_CONNECTION_MAX_REQUESTS": "0",
        "CHATPLANE_CONNECTION_MAX_AGE_S": "0",
    }
    server = server_factory(env)
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        heads = [_exchange(sock) for _ in range(30)]
        assert all(head is not None and b"connection: close" not in head for head in heads)
