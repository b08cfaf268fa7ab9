"""Chat completions posted on aiohttp as the openai SDK's client would post them (``LeanChatOpenAI``'s direct path).

``LeanChatOpenAI`` sends a chat completion on an ``aiohttp.ClientSession`` (``http_session``, opened and closed by
``chatplane.llm.open_chat_model``), not through the SDK client: even with ``cast_to=object`` and aiohttp underneath,
the SDK's request machinery (options models, an ``httpx2`` request with its URL and headers objects per call, its
response wrapper) was about 60% of the CPU of one model call in py-spy, aiohttp itself 13%. Posting directly took one
call (``LeanChatOpenAI.ainvoke`` against the mock model) from 3.95M to 1.69M instructions under callgrind (1.82M with
the standard library's json instead of orjson for the body and the answer).

What the SDK decides is not re-implemented: the URL, the headers (auth, organization, project, ``default_headers``,
its own), the timeouts and the proxy are the ones the SDK client builds for the same options (``sdk_request``), asked
once per client and kept (per call only when a call carries ``extra_headers``, ``extra_query`` or ``timeout``), and an
HTTP error status becomes the SDK's exception, built by the SDK from the answer (``RateLimitError``,
``InternalServerError``, ``BadRequestError`` ...). A connection failure is ``openai.APIConnectionError``, a connect or
read timeout ``openai.APITimeoutError``, and a stream chunk carrying an ``error`` raises the ``openai.APIError`` the
SDK's ``AsyncStream`` raises. ``build_direct`` says None — the SDK client sends the request — when its HTTP client is
not on aiohttp's transport (the proxy comes from there), when it would retry by itself (``max_retries`` > 0) or
authenticate another way (API-key callables, workload identity, providers).

This module reaches into the openai SDK's private API (``openai._base_client``, ``_models``, ``_types``,
``_utils._json``, ``_vendor.httpx_aiohttp``, ``_constants`` and the client's ``_build_request`` family): it is checked
against the release in ``chatplane.llm.openai.UPSTREAM_VERSIONS``, and a test fails when the installed one differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
import openai
import orjson
import pydantic
from multidict import CIMultiDict, CIMultiDictProxy
from openai import AsyncStream
from openai._base_client import get_platform, make_request_options
from openai._models import FinalRequestOptions
from openai._types import RequestOptions
from openai._utils._json import openapi_dumps
from openai._vendor.httpx_aiohttp import AiohttpTransport
from yarl import URL

CHAT_COMPLETIONS = "/chat/completions"
_OPTIONS = ("extra_headers", "extra_query", "timeout")
"""Payload keys that are the SDK's request options, not body fields (``extra_body`` is merged into the body)."""
_NOT_SENT = frozenset({"host", "content-length", "transfer-encoding", "accept-encoding", "connection"})
"""Headers of the SDK's request that aiohttp writes itself (and it asks only for the encodings it can decode)."""
_DRAIN_S = 0.1
"""After ``[DONE]``, how long to wait for the end of the body so the connection can be reused (as the SDK)."""


def model_http_client() -> Any:
    """The ``openai`` SDK's client on aiohttp's transport (its ``aiohttp`` extra), which reads responses with a
    parser in C; the SDK's default (``httpx2`` over ``httpcore2`` and ``anyio``) spent about a tenth of a turn's CPU
    on one model call in ``benchmarks/profile.py``. Same timeouts, limits and errors. Chat completions go around it
    (``model_http_session``); it serves the rest (structured output, the Responses API ...) and sets the proxy."""
    return openai.DefaultAioHttpClient()


@functools.cache
def _ssl_context() -> Any:
    """The TLS settings of the SDK's clients (reads the CA bundle: a fifth of a second; made once)."""
    return httpx2.create_ssl_context()


async def model_http_session(*, keepalive: bool = True) -> aiohttp.ClientSession:
    """The ``aiohttp.ClientSession`` that ``LeanChatOpenAI`` posts chat completions on: the connection limits,
    keep-alive and TLS verification of the SDK's aiohttp client (``DefaultAioHttpClient``). Proxies are the SDK
    client's (from the environment, like ``httpx``), passed per request; the session's own ``trust_env`` is off, as
    it would look them up in a worker thread on every request.

    ``keepalive=False`` for the embedded llama.cpp server: its HTTP library closes kept-alive connections on its own
    terms, and a request posted on one just then fails as a dropped connection (seen every few turns once the tool
    middleware made three requests a turn); a loopback connect costs far less than a model call."""
    from openai._constants import DEFAULT_CONNECTION_LIMITS

    ssl_context = await asyncio.to_thread(_ssl_context)
    if not keepalive:  # a new loopback connection per request: the embedded server closes idle ones on its own
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, ssl=ssl_context))
    connector = aiohttp.TCPConnector(
        limit=DEFAULT_CONNECTION_LIMITS.max_connections or 0,
        keepalive_timeout=DEFAULT_CONNECTION_LIMITS.keepalive_expiry,
        ssl=ssl_context,
    )
    return aiohttp.ClientSession(connector=connector)


def split_payload(payload: dict[str, Any]) -> tuple[RequestOptions, dict[str, Any]]:
    """``ChatOpenAI``'s request payload → (the SDK's request options, the JSON body)."""
    options = make_request_options(**{k: payload[k] for k in _OPTIONS if k in payload}, security={"bearer_auth": True})
    body = {k: v for k, v in payload.items() if v is not None and k not in _OPTIONS and k != "extra_body"}
    body.update(payload.get("extra_body") or {})
    return options, body


def _pydantic(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(exclude_unset=True, mode="json", by_alias=True)
    raise TypeError


def _dumps(body: dict[str, Any]) -> bytes:
    """The body as JSON, like the SDK's ``openapi_dumps`` (which anything orjson cannot encode falls back to)."""
    try:
        return orjson.dumps(body, default=_pydantic)
    except TypeError:
        return openapi_dumps(body)


def _plain(client: openai.AsyncOpenAI) -> bool:
    """The SDK client sends what ``_build_request`` builds, once, with a static key (nothing per attempt)."""
    return (
        client.max_retries == 0
        and getattr(client, "_provider_runtime", None) is None
        and getattr(client, "_workload_identity_auth", None) is None
        and getattr(client, "_api_key_provider", None) is None
        and getattr(client, "_idempotency_header", None) is None
        and client.custom_auth is None
    )


@dataclass(frozen=True, slots=True)
class DirectRequest:
    """A chat completion request as the SDK client would send it, to post on aiohttp (``request``: the SDK's own,
    without a body, for the exceptions to carry as the SDK's do)."""

    client: openai.AsyncOpenAI
    session: aiohttp.ClientSession
    url: URL
    headers: CIMultiDictProxy[str]
    timeout: aiohttp.ClientTimeout
    proxy: str | None
    proxy_auth: aiohttp.BasicAuth | None
    proxy_headers: dict[str, str] | None
    request: httpx2.Request

    async def _post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """The answer's status and headers (an HTTP error status raises the SDK's exception for it)."""
        response = await self.session.post(
            self.url,
            data=_dumps(body),
            headers=self.headers,
            timeout=self.timeout,
            proxy=self.proxy,
            proxy_auth=self.proxy_auth,
            proxy_headers=self.proxy_headers,
        )
        if response.status >= 400:
            try:
                content = await response.read()
            finally:
                response.release()
            # aiohttp has decoded the body already: the headers must not make httpx decode it again
            headers = [(k, v) for k, v in response.raw_headers if k.lower() != b"content-encoding"]
            error = httpx2.Response(response.status, headers=headers, content=content, request=self.request)
            raise self.client._make_status_error_from_response(error)
        return response

    async def complete(self, body: dict[str, Any]) -> Any:
        """A whole answer, as the dict the JSON body is."""
        try:
            response = await self._post(body)
            try:
                content = await response.read()
            finally:
                response.release()
        except aiohttp.ServerTimeoutError as exc:
            raise openai.APITimeoutError(request=self.request) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(request=self.request) from exc
        return orjson.loads(content)

    async def chunks(self, body: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """The streamed answer's chunks, as the dicts their server-sent events carry, up to ``[DONE]``."""
        try:
            response = await self._post(body)
            try:
                async with contextlib.aclosing(sse_events(response.content)) as events:
                    async for data in events:
                        if data.startswith(b"[DONE]"):
                            await _drain(response.content)
                            return
                        chunk = orjson.loads(data)
                        if isinstance(chunk, dict) and chunk.get("error"):
                            raise _stream_error(chunk["error"], self.request)
                        yield chunk
            finally:
                response.release()
        except aiohttp.ServerTimeoutError as exc:
            raise openai.APITimeoutError(request=self.request) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(request=self.request) from exc


async def build_direct(
    client: openai.AsyncOpenAI, session: aiohttp.ClientSession, options: RequestOptions
) -> DirectRequest | None:
    """How to post ``options``'s request on ``session`` as ``client`` would send it; None: through the client."""
    if not _plain(client):
        return None
    request = await sdk_request(client, options)
    transport = client._client._transport_for_url(request.url)
    if not isinstance(transport, AiohttpTransport):
        return None
    proxy = transport.proxy
    return DirectRequest(
        client=client,
        session=session,
        proxy=str(proxy.url) if proxy else None,
        proxy_auth=aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
        proxy_headers=dict(proxy.headers) if proxy else None,
        **request_parts(request),
    )


async def sdk_request(client: openai.AsyncOpenAI, options: RequestOptions) -> httpx2.Request:
    """The request the SDK client would send (its URL, headers and timeouts), without a body."""
    if client._platform is None:  # as the SDK's ``request`` does: finding the platform may read files
        client._platform = await asyncio.to_thread(get_platform)
    final = FinalRequestOptions.construct(method="post", url=CHAT_COMPLETIONS, **options)
    final = await client._prepare_options(final)
    request = client._build_request(final)
    await client._prepare_request(request)
    return request


def request_parts(request: httpx2.Request) -> dict[str, Any]:
    """URL, headers, timeouts and the request itself, from the SDK's request (timeouts mapped to aiohttp's as the
    SDK's aiohttp transport maps them)."""
    timeout = request.extensions.get("timeout", {})
    encoding = request.headers.encoding
    headers: CIMultiDict[str] = CIMultiDict(
        (key.decode(encoding), value.decode(encoding))
        for key, value in request.headers.raw
        if key.lower().decode(encoding) not in _NOT_SENT
    )
    return {
        "url": URL(str(request.url), encoded=True),
        "headers": CIMultiDictProxy(headers),
        "timeout": aiohttp.ClientTimeout(
            sock_connect=timeout.get("connect"), sock_read=timeout.get("read"), connect=timeout.get("pool")
        ),
        "request": request,
    }


async def sse_events(content: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
    """The data of each server-sent event (lines end in LF, CRLF or CR; fields other than ``data`` and comments are
    nothing a chat completion uses; an event without data is not dispatched, as the SSE spec says)."""
    data: list[bytes] = []
    pending = b""
    skip_lf = False
    async for received in content.iter_any():
        chunk = received
        if skip_lf:  # the last chunk ended in CR: an LF starting this one ends no second line
            skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if pending:
            chunk = pending + chunk
            pending = b""
        lines = chunk.splitlines(keepends=True)
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            pending = lines.pop()
        elif chunk.endswith(b"\r"):
            skip_lf = True
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line:
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)


async def _drain(content: aiohttp.StreamReader) -> None:
    """Read what follows ``[DONE]`` for a moment: at the end of the body aiohttp keeps the connection for reuse."""
    if content.at_eof():
        return
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(_DRAIN_S):
            await content.read()


async def sdk_chunks(stream: AsyncStream[object]) -> AsyncGenerator[Any, None]:
    """The chunks of a stream the SDK client sent, each as the dict the SDK parsed (``cast_to=object``)."""
    async with stream:
        async for chunk in stream:
            yield chunk


def _stream_error(error: Any, request: httpx2.Request) -> openai.APIError:
    """What the SDK's ``AsyncStream`` raises for a chunk carrying an ``error``."""
    message = error.get("message") if isinstance(error, dict) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return openai.APIError(message=message, request=request, body=error)
