"""``LeanPost`` (the embeddings endpoint's HTTP/1.1 client) against a raw server: connections kept alive and reused,
an idle one the server closed replaced without a failure, each way an answer's body can be framed, and what must
not be reused (``Connection: close``, a body read to the end, a request cut off by a timeout)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from yarl import URL

from chatplane.llm.lean_post import LeanPost

Answer = Callable[[bytes], Awaitable[bytes | None]]


class _Server:
    """Reads requests (by ``Content-Length``) on each connection in turn and writes what ``answer`` returns
    (None: closes the connection without answering)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-l"))
                self.requests.append(head + await reader.readexactly(length))
                response = await self.answer(self.requests[-1])
                if response is None:
                    return
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def url(self) -> URL:
        assert self.server is not None
        return URL(f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/embeddings")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[_Server]]]:
    servers: list[_Server] = []

    async def start(answer: Answer) -> _Server:
        server = _Server(answer)
        server.server = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()
        for writer in server.writers:
            writer.close()


def _ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


async def test_requests_share_one_kept_alive_connection(serve) -> None:
    async def echo(request: bytes) -> bytes:
        return _ok(request.split(b"\r\n\r\n", 1)[1])

    server = await serve(echo)
    client = LeanPost(server.url(), {"Content-Type": "application/json", "Authorization": "Bearer k"})
    try:
        for i in range(3):
            assert await client.post(b'{"n": %d}' % i) == (200, b'{"n": %d}' % i)
    finally:
        client.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer k\r\n" in first and b"\r\nContent-Length: 8\r\n\r\n" in first


async def test_an_idle_connection_the_server_closed_is_replaced(serve) -> None:
    async def once(request: bytes) -> bytes:
        return _ok(b"fine")

    server = await serve(once)
    client = LeanPost(server.url(), {})
    try:
        assert await client.post(b"{}") == (200, b"fine")
        for writer in server.writers:  # the server drops the idle connection
            writer.close()
        await asyncio.sleep(0.05)
        assert await client.post(b"{}") == (200, b"fine")
    finally:
        client.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("response", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n", b"abcde"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", b"zipped"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)
async def test_each_framing_of_a_body_is_read_and_the_connection_kept(serve, response: bytes, body: bytes) -> None:
    if b"gzip" in response:
        zipped = gzip.compress(body)
        response = response % len(zipped) + zipped

    async def answer(request: bytes) -> bytes:
        return response

    server = await serve(answer)
    client = LeanPost(server.url(), {})
    try:
        assert (await client.post(b"{}"))[1] == body
        assert (await client.post(b"{}"))[1] == body
    finally:
        client.close()
    assert server.connections == 1


async def test_what_is_not_reused(serve) -> None:
    async def closing(request: bytes) -> bytes:
        return _ok(b"bye", "Connection: close")

    server = await serve(closing)
    client = LeanPost(server.url(), {})
    try:
        assert await client.post(b"{}") == (200, b"bye")
        assert await client.post(b"{}") == (200, b"bye")
    finally:
        client.close()
    assert server.connections == 2

    async def unframed(request: bytes) -> bytes:  # a body without a length: read to the connection's end
        return b"HTTP/1.1 200 OK\r\n\r\nall of it"

    server = await serve(unframed)
    client = LeanPost(server.url(), {})
    try:
        task = asyncio.create_task(client.post(b"{}"))
        await asyncio.sleep(0.05)
        for writer in server.writers:
            writer.close()
        assert await task == (200, b"all of it")
        assert not client._idle
    finally:
        client.close()

    async def silent(request: bytes) -> bytes:
        await asyncio.sleep(10)
        return _ok(b"late")

    server = await serve(silent)
    client = LeanPost(server.url(), {})
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.post(b"{}")
        assert not client._idle  # cut off mid-request: closed, never reused
    finally:
        client.close()


async def test_an_answer_that_is_not_http_is_a_value_error(serve) -> None:
    async def garbage(request: bytes) -> bytes:
        return b"SSH-2.0-nope\r\n\r\n"

    server = await serve(garbage)
    client = LeanPost(server.url(), {})
    try:
        with pytest.raises(ValueError):
            await client.post(b"{}")
    finally:
        client.close()
