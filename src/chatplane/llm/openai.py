"""``ChatOpenAI`` with a lean path for the call chatplane makes on every turn: a chat completion.

``ChatOpenAI`` hands its request to the openai SDK's ``chat.completions.create``, which first walks the whole body
(every message of the prompt) through the SDK's typed-dict transform, and then builds a pydantic model of every
streamed chunk (or of the whole answer), which ``ChatOpenAI`` turns straight back into a dict — for a whole answer
in a worker thread. With a 20-token answer those two were a fifth of the server's CPU per turn in
``benchmarks/profile.py``. ``langchain_openai`` builds the body as plain JSON already (messages and tools are dicts),
so the lean path sends it as it is and reads the answer or the chunks as dicts.

It sends it on an ``aiohttp.ClientSession`` (``http_session``, opened and closed by ``llm.open_chat_model``), not
through the SDK client: even with ``cast_to=object`` and aiohttp underneath, the SDK's request machinery (options
models, an ``httpx2`` request with its URL and headers objects per call, its response wrapper) was about 60% of the
CPU of one model call in py-spy, aiohttp itself 13%. Posting directly took one call (``LeanChatOpenAI.ainvoke``
against the mock model) from 3.95M to 1.69M instructions under callgrind (1.82M with the standard library's json
instead of orjson for the body and the answer). What the SDK decides is not re-implemented: the URL, the
headers (auth, organization, project, ``default_headers``, its own), the timeouts and the proxy are the ones the SDK
client builds for the same options, asked once per client and kept (per call only when a call carries
``extra_headers``, ``extra_query`` or ``timeout``), and an HTTP error status becomes the SDK's exception, built by the
SDK from the answer (``RateLimitError``, ``InternalServerError``, ``BadRequestError`` ...). A connection failure is
``openai.APIConnectionError``, a connect or read timeout ``openai.APITimeoutError``, and a stream chunk carrying an
``error`` raises the ``openai.APIError`` the SDK's ``AsyncStream`` raises. The SDK client still sends the request
when there is no session, when its HTTP client is not on aiohttp's transport (the proxy comes from there), when it
would retry by itself (``max_retries`` > 0) or authenticate another way (API-key callables, workload identity,
providers).

``stream_chunk_timeout`` (a stall watchdog that wraps every chunk in ``asyncio.wait_for``, a task per chunk) is off:
every model attempt in chatplane runs under ``ModelAttemptMiddleware``'s ``asyncio.timeout``, which bounds a stalled
stream too, and the HTTP client's read timeout still applies.

The request's messages are converted to their JSON dicts once per message object (``_SentMessages``): a thread's
earlier turns come back as the same objects on every run, and converting them again was most of what a long prompt
cost per call.

Anything else — structured output (``response_format``), the Responses API, response headers — goes through
``ChatOpenAI`` unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import httpx2
import openai
import orjson
import pydantic
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import _handle_openai_api_error, _handle_openai_bad_request
from multidict import CIMultiDict, CIMultiDictProxy
from openai import AsyncStream
from openai._base_client import get_platform, make_request_options
from openai._models import FinalRequestOptions
from openai._types import RequestOptions
from openai._utils import asyncify
from openai._utils._json import openapi_dumps
from openai._vendor.httpx_aiohttp import AiohttpTransport
from pydantic import Field, PrivateAttr
from yarl import URL

_OPTIONS = ("extra_headers", "extra_query", "timeout")
"""Payload keys that are the SDK's request options, not body fields (``extra_body`` is merged into the body)."""

_PATH = "/chat/completions"
_NOT_SENT = frozenset({"host", "content-length", "transfer-encoding", "accept-encoding", "connection"})
"""Headers of the SDK's request that aiohttp writes itself (and it asks only for the encodings it can decode)."""
_DRAIN_S = 0.1
"""After ``[DONE]``, how long to wait for the end of the body so the connection can be reused (as the SDK)."""


def _split(payload: dict[str, Any]) -> tuple[RequestOptions, dict[str, Any]]:
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
class _Direct:
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
                async with contextlib.aclosing(_events(response.content)) as events:
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


async def _events(content: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
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


async def _sdk_chunks(stream: AsyncStream[object]) -> AsyncGenerator[Any, None]:
    async with stream:  # each chunk comes as the dict the SDK parsed (cast_to=object)
        async for chunk in stream:
            yield chunk


def _stream_error(error: Any, request: httpx2.Request) -> openai.APIError:
    """What the SDK's ``AsyncStream`` raises for a chunk carrying an ``error``."""
    message = error.get("message") if isinstance(error, dict) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return openai.APIError(message=message, request=request, body=error)


class _SentMessages:
    """The chat-completions dict of each message a model converted, kept while the message lives, by identity.

    A thread's earlier turns are the same message objects on every run (``chatplane.transcript`` caches its tail),
    and a ReAct run sends its state again on every model call; converting costs ``ChatOpenAI`` about 1 µs a user
    message and 5.6 µs an answer, per call: 2 ms a call at 600 messages. A message whose content, extra fields or
    tool calls were replaced since is converted again (LangChain copies messages rather than changing them, and
    chatplane does too)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[weakref.ref[BaseMessage], tuple[Any, ...], dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    @staticmethod
    def _parts(message: BaseMessage) -> tuple[Any, ...]:
        fields = message.__dict__  # (``getattr`` of a field a message type lacks is pydantic's slow path)
        return fields.get("content"), fields.get("additional_kwargs"), fields.get("tool_calls")

    def get(self, message: BaseMessage) -> dict[str, Any] | None:
        entry = self._by_id.get(id(message))
        if entry is None or entry[0]() is not message:
            return None
        content, extra, tool_calls = entry[1]
        fields = message.__dict__
        if (
            fields.get("content") is content
            and fields.get("additional_kwargs") is extra
            and fields.get("tool_calls") is tool_calls
        ):
            return entry[2]
        return None

    def put(self, message: BaseMessage, converted: dict[str, Any]) -> dict[str, Any]:
        key, by_id = id(message), self._by_id

        def forget(ref: weakref.ref[BaseMessage]) -> None:  # the message is gone: so is its entry
            entry = by_id.get(key)
            if entry is not None and entry[0] is ref:
                del by_id[key]

        by_id[key] = (weakref.ref(message, forget), self._parts(message), converted)
        return converted


class LeanChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose chat completions skip the SDK's request transform and response models, and, with an
    ``http_session``, the SDK's HTTP request machinery."""

    stream_chunk_timeout: float | None = None
    http_session: Any = Field(default=None, exclude=True)
    """An open ``aiohttp.ClientSession`` to post chat completions on directly, when the SDK client's
    ``http_async_client`` is on aiohttp's transport too (``llm.open_chat_model`` passes both and closes both)."""

    _direct_request: tuple[Any, Any, _Direct | None] | None = PrivateAttr(default=None)
    """(SDK client, session, how to post on it) for the requests without per-call options."""
    _sent: tuple[int, _SentMessages] | None = PrivateAttr(default=None)
    """(this model's ``id``, its converted messages): a ``model_copy`` shares private attributes, and a copy with
    another model name may convert differently (o-series: system messages become ``developer`` ones)."""

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """``ChatOpenAI``'s payload, converting only the messages this model has not converted before
        (``_SentMessages``); the Responses API's input is upstream's, built from every message."""
        if self._use_responses_api({**self._default_params, **kwargs}):
            return super()._get_request_payload(input_, stop=stop, **kwargs)
        messages = self._convert_input(input_).to_messages()
        if self._sent is None or self._sent[0] != id(self):
            self._sent = (id(self), _SentMessages())
        sent = self._sent[1]
        known = [sent.get(message) for message in messages]
        fresh = {id(m): m for m, converted in zip(messages, known, strict=True) if converted is None}
        payload: dict[str, Any] = super()._get_request_payload(list(fresh.values()), stop=stop, **kwargs)
        new = {key: sent.put(m, c) for (key, m), c in zip(fresh.items(), payload["messages"], strict=True)}
        payload["messages"] = [c if c is not None else new[id(m)] for m, c in zip(messages, known, strict=True)]
        return payload

    def _dict_for_compat(self) -> dict[str, Any]:
        """``asdict()``: LangChain wraps the deprecated ``dict()`` in a ``warnings`` filter change on every model call,
        for subclasses that override ``dict()``; this one does not."""
        return self.asdict()

    def _lean(self, payload: dict[str, Any]) -> bool:
        return not (
            "response_format" in payload
            or self.include_response_headers
            or self._uses_gateway
            or self._use_responses_api(payload)
        )

    async def _direct(self, options: RequestOptions) -> _Direct | None:
        """How to post ``options``'s request on ``http_session``; None: through the SDK client."""
        session = self.http_session
        if not isinstance(session, aiohttp.ClientSession) or session.closed:
            return None
        client = self.root_async_client
        known = self._direct_request
        if known is None or known[0] is not client or known[1] is not session:
            direct = await self._build_direct(client, session, {"security": options["security"]})
            known = self._direct_request = (client, session, direct)
        direct = known[2]
        if direct is None or len(options) == 1:  # only ``security``: the request as built once
            return direct
        request = await self._sdk_request(client, options)  # per call: extra_headers, extra_query or timeout
        return replace(direct, **_request_parts(request))

    async def _build_direct(
        self, client: openai.AsyncOpenAI, session: aiohttp.ClientSession, options: RequestOptions
    ) -> _Direct | None:
        if not _plain(client):
            return None
        request = await self._sdk_request(client, options)
        transport = client._client._transport_for_url(request.url)
        if not isinstance(transport, AiohttpTransport):
            return None
        proxy = transport.proxy
        return _Direct(
            client=client,
            session=session,
            proxy=str(proxy.url) if proxy else None,
            proxy_auth=aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
            proxy_headers=dict(proxy.headers) if proxy else None,
            **_request_parts(request),
        )

    @staticmethod
    async def _sdk_request(client: openai.AsyncOpenAI, options: RequestOptions) -> httpx2.Request:
        """The request the SDK client would send (its URL, headers and timeouts), without a body."""
        if client._platform is None:  # as the SDK's ``request`` does: finding the platform may read files
            client._platform = await asyncify(get_platform)()
        final = FinalRequestOptions.construct(method="post", url=_PATH, **options)
        final = await client._prepare_options(final)
        request = client._build_request(final)
        await client._prepare_request(request)
        return request

    async def _lean_completion(self, payload: dict[str, Any]) -> Any:
        options, body = _split(payload)
        direct = await self._direct(options)
        if direct is not None:
            return await direct.complete(body)
        return await self.root_async_client.post(_PATH, body=body, options=options, cast_to=object)

    async def _lean_chunks(self, payload: dict[str, Any]) -> AsyncGenerator[Any, None]:
        options, body = _split(payload)
        direct = await self._direct(options)
        if direct is not None:
            return direct.chunks(body)
        stream = await self.root_async_client.post(
            _PATH, body=body, options=options, cast_to=object, stream=True, stream_cls=AsyncStream[object]
        )
        return _sdk_chunks(stream)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        if not self._lean(payload):
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        try:
            response = await self._lean_completion(payload)
        except openai.BadRequestError as exc:
            _handle_openai_bad_request(exc)
        except openai.APIError as exc:
            _handle_openai_api_error(exc)
        return self._create_chat_result(response, {})

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        *,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        stream_kwargs = dict(kwargs, stream=True)
        if self._should_stream_usage(stream_usage, **kwargs):
            stream_kwargs["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(messages, stop=stop, **stream_kwargs)
        if not self._lean(payload):
            async for chunk in super()._astream(messages, stop, run_manager, stream_usage=stream_usage, **kwargs):
                yield chunk
            return
        chunk_class: type[BaseMessageChunk] = AIMessageChunk
        try:
            chunks = await self._lean_chunks(payload)
            async with contextlib.aclosing(chunks):
                async for data in chunks:
                    generation = self._convert_chunk_to_generation_chunk(data, chunk_class, {})
                    if generation is None:
                        continue
                    chunk_class = generation.message.__class__
                    if run_manager:
                        logprobs = (generation.generation_info or {}).get("logprobs")
                        await run_manager.on_llm_new_token(generation.text, chunk=generation, logprobs=logprobs)
                    yield generation
        except openai.BadRequestError as exc:
            _handle_openai_bad_request(exc)
        except openai.APIError as exc:
            _handle_openai_api_error(exc)


def _request_parts(request: httpx2.Request) -> dict[str, Any]:
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


# LangChain asks for ``_agenerate``'s signature on every call (does it take ``run_manager``?): worked out once here.
LeanChatOpenAI._agenerate.__signature__ = inspect.signature(LeanChatOpenAI._agenerate)  # type: ignore[attr-defined]
