"""``CHATPLANE_EMBEDDINGS=openai:<model>`` on chatplane's own client (``EndpointEmbeddings``): vectors asked for and
read as base64 (a list of floats taken too), and each way an endpoint fails — down, overloaded, erroring, silent,
answering nonsense — a clear 502/503/504 with nothing stored, and neither the key nor the endpoint's text in the
answer or the logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import numpy as np
import orjson
import pytest

from benchmarks.mock_embeddings import embed, embeddings_response
from chatplane.errors import EmbeddingsError, EmbeddingsTimeoutError, EmbeddingsUnavailableError
from chatplane.llm.openai_embeddings import EndpointEmbeddings, parse
from tests.conftest import make_settings

SECRET = "sk-test-embeddings-secret-4242"
Handler = Callable[[bytes], Awaitable[bytes | None]]


@pytest.fixture
async def endpoint() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """A raw HTTP/1.1 server on a free port answering each request with what ``handler`` returns for its body (the
    whole response; None: never answers); the base URL."""
    servers: list[asyncio.Server] = []
    seen: list[bytes] = []
    stop = asyncio.Event()
    serving: set[asyncio.Task[None]] = set()

    async def start(handler: Handler) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            serving.add(task)
            try:
                await answer(reader, writer)
            finally:
                writer.close()
                serving.discard(task)

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            body = await reader.readexactly(length)
            seen.append(head + body)
            response = await handler(body)
            if response is None:
                await stop.wait()
            else:
                writer.write(response)
                await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    start.seen = seen  # type: ignore[attr-defined]
    yield start
    stop.set()
    for server in servers:
        server.close()
    await asyncio.gather(*serving, return_exceptions=True)


def _http(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


async def _client(base_url: str, timeout_s: float = 5.0) -> tuple[aiohttp.ClientSession, EndpointEmbeddings]:
    session = aiohttp.ClientSession()
    return session, EndpointEmbeddings(session, "m", base_url=base_url, api_key=SECRET, timeout_s=timeout_s)


async def test_vectors_are_asked_for_as_base64_and_floats_are_taken_too(endpoint) -> None:
    async def mock(body: bytes) -> bytes:
        return _http(200, orjson.dumps(embeddings_response(orjson.loads(body))))

    async def floats(body: bytes) -> bytes:
        request = orjson.loads(body)
        return _http(200, orjson.dumps(embeddings_response({"input": request["input"]})))  # ignores the format

    for handler in (mock, floats):
        session, client = await _client(await endpoint(handler))
        async with session:
            vectors = await client.aembed_documents(["I live in Lisbon", "tea"])
            assert np.allclose(vectors, [embed("I live in Lisbon"), embed("tea")], atol=1e-6)
            assert np.allclose(await client.aembed_query("tea"), embed("tea"), atol=1e-6)
    sent = endpoint.seen[0]
    assert b'"encoding_format":"base64"' in sent and f"Bearer {SECRET}".encode() in sent


def test_a_malformed_answer_is_an_embeddings_error() -> None:
    for raw in (b"not json", b'{"data": [{"index": 0}]}', b'{"data": [{"index": 0, "embedding": "@@"}]}', b"{}"):
        with pytest.raises(EmbeddingsError):
            parse(raw, 1)
    with pytest.raises(EmbeddingsError):  # fewer vectors than texts
        parse(orjson.dumps(embeddings_response({"input": ["a"]})), 2)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, EmbeddingsUnavailableError),
        (429, EmbeddingsUnavailableError),
        (500, EmbeddingsError),
        (401, EmbeddingsError),
    ],
)
async def test_error_statuses(endpoint, status: int, error: type[Exception]) -> None:
    async def failing(body: bytes) -> bytes:
        return _http(status, b'{"error": {"message": "Injected: your key ' + SECRET.encode() + b' is wrong"}}')

    session, client = await _client(await endpoint(failing))
    async with session:
        with pytest.raises(error) as raised:
            await client.aembed_query("tea")
    assert SECRET not in str(raised.value) and "Injected" not in str(raised.value)


async def test_an_endpoint_down_or_silent(endpoint) -> None:
    async def silent(body: bytes) -> None:
        return None

    session, client = await _client(await endpoint(silent), timeout_s=0.3)
    async with session:
        with pytest.raises(EmbeddingsTimeoutError):
            await client.aembed_query("tea")
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens there now
    session, client = await _client(f"http://127.0.0.1:{port}/v1")
    async with session:
        with pytest.raises(EmbeddingsUnavailableError):
            await client.aembed_documents(["tea"])


async def test_over_http_each_failure_is_a_clear_error_with_nothing_stored(
    client_for, endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[int] = [200]

    async def switchable(body: bytes) -> bytes | None:
        if answers[0] == 0:
            return None
        if answers[0] != 200:
            return _http(answers[0], b'{"error": {"message": "Injected upstream text"}}')
        return _http(200, orjson.dumps(embeddings_response(orjson.loads(body))))

    base_url = await endpoint(switchable)
    settings = make_settings(
        embeddings="openai:mock", embeddings_base_url=base_url, embeddings_api_key=SECRET, model_timeout_s=0.5
    )
    client = await client_for(settings)
    put = await client.put("/v1/store/items", json={"namespace": ["m"], "key": "k", "value": {"text": "tea"}})
    assert put.status_code == 204
    for status, expected, code in (
        (503, 503, "embeddings_unavailable"),
        (500, 502, "embeddings_error"),
        (0, 504, "embeddings_timeout"),
    ):
        answers[0] = status
        failed = await client.put("/v1/store/items", json={"namespace": ["m"], "key": "new", "value": {"text": "x"}})
        assert failed.status_code == expected and failed.json()["error"]["code"] == code, failed.text
        searched = await client.post("/v1/store/items/search", json={"query": "tea"})
        assert searched.status_code == expected
        for text in (failed.text, searched.text):
            assert "Injected" not in text and SECRET not in text
    assert (await client.get("/v1/store/items", params={"namespace": "m", "key": "new"})).status_code == 404
    assert SECRET not in caplog.text and "Injected" not in caplog.text


async def test_through_a_proxy_the_request_goes_on_aiohttp(endpoint) -> None:
    async def mock(body: bytes) -> bytes:
        return _http(200, orjson.dumps(embeddings_response(orjson.loads(body))))

    base_url = await endpoint(mock)  # the test server answers as the proxy too: it reads any request line
    async with aiohttp.ClientSession() as session:
        proxied = EndpointEmbeddings(session, "m", base_url=base_url, api_key=SECRET, proxy=base_url.rsplit("/", 1)[0])
        assert np.allclose(await proxied.aembed_query("tea"), embed("tea"), atol=1e-6)
        proxied.close()
    assert endpoint.seen[-1].startswith(f"POST {base_url}/embeddings HTTP/1.1".encode())
