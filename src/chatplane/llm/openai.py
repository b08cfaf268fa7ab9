"""``ChatOpenAI`` with a lean path for the call chatplane makes on every turn: a chat completion.

``ChatOpenAI`` hands its request to the openai SDK's ``chat.completions.create``, which first walks the whole body
(every message of the prompt) through the SDK's typed-dict transform, and then builds a pydantic model of every
streamed chunk (or of the whole answer), which ``ChatOpenAI`` turns straight back into a dict — for a whole answer
in a worker thread. With a 20-token answer those two were a fifth of the server's CPU per turn in
``benchmarks/profile.py``. ``langchain_openai`` builds the body as plain JSON already (messages and tools are dicts),
so the lean path sends it as it is and reads the answer or the chunks as dicts.

It posts it on an ``aiohttp.ClientSession`` (``http_session``, opened and closed by ``chatplane.llm.open_chat_model``)
as the SDK client would send it (``chatplane.llm.openai_direct``), or, without a session or when the SDK client must
send it itself, through the SDK client's ``post`` with ``cast_to=object``.

``stream_chunk_timeout`` (a stall watchdog that wraps every chunk in ``asyncio.wait_for``, a task per chunk) is off:
every model attempt in chatplane runs under ``ModelAttemptMiddleware``'s ``asyncio.timeout``, which bounds a stalled
stream too, and the HTTP client's read timeout still applies.

The request's messages are converted to their JSON dicts once per message object (``_SentMessages``): a thread's
earlier turns come back as the same objects on every run, and converting them again was most of what a long prompt
cost per call.

Anything else — structured output (``response_format``), the Responses API, response headers — goes through
``ChatOpenAI`` unchanged.

**Upstream internals.** ``LeanChatOpenAI`` overrides or calls ``ChatOpenAI``'s private methods
(``_get_request_payload``, ``_use_responses_api``, ``_default_params``, ``_convert_input``, ``_uses_gateway``,
``_create_chat_result``, ``_convert_chunk_to_generation_chunk``, ``_should_stream_usage``, ``_dict_for_compat``) and
raises errors through langchain-openai's ``_handle_openai_bad_request`` / ``_handle_openai_api_error``;
``openai_direct`` uses the openai SDK's private request machinery. ``UPSTREAM_VERSIONS`` names the releases all of
it was checked against: a test fails when an installed one differs, so an upgrade re-reads these against the new
release (and the copied behaviour: the SDK's headers, timeouts, errors and stream errors; ``ChatOpenAI``'s payload).
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import _handle_openai_api_error, _handle_openai_bad_request
from openai import AsyncStream
from openai._types import RequestOptions
from pydantic import Field, PrivateAttr

from chatplane.llm.openai_direct import (
    CHAT_COMPLETIONS,
    DirectRequest,
    build_direct,
    request_parts,
    sdk_chunks,
    sdk_request,
    split_payload,
)

UPSTREAM_VERSIONS = {"openai": "3.57.0", "langchain-openai": "1.7.4"}
"""The releases whose private API this module and ``openai_direct`` were written against (see the module docstring)."""


class _SentMessages:
    """The chat-completions dict of each message a model converted, kept while the message lives, by identity.

    A thread's earlier turns are the same message objects on every run (``storage.transcript`` caches its tail),
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
    ``http_async_client`` is on aiohttp's transport too (``chatplane.llm.open_chat_model`` passes both and closes
    both)."""

    _direct_request: tuple[Any, Any, DirectRequest | None] | None = PrivateAttr(default=None)
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

    async def _direct(self, options: RequestOptions) -> DirectRequest | None:
        """How to post ``options``'s request on ``http_session``; None: through the SDK client."""
        session = self.http_session
        if not isinstance(session, aiohttp.ClientSession) or session.closed:
            return None
        client = self.root_async_client
        known = self._direct_request
        if known is None or known[0] is not client or known[1] is not session:
            direct = await build_direct(client, session, {"security": options["security"]})
            known = self._direct_request = (client, session, direct)
        direct = known[2]
        if direct is None or len(options) == 1:  # only ``security``: the request as built once
            return direct
        request = await sdk_request(client, options)  # per call: extra_headers, extra_query or timeout
        return replace(direct, **request_parts(request))

    async def _lean_completion(self, payload: dict[str, Any]) -> Any:
        options, body = split_payload(payload)
        direct = await self._direct(options)
        if direct is not None:
            return await direct.complete(body)
        return await self.root_async_client.post(CHAT_COMPLETIONS, body=body, options=options, cast_to=object)

    async def _lean_chunks(self, payload: dict[str, Any]) -> AsyncGenerator[Any, None]:
        options, body = split_payload(payload)
        direct = await self._direct(options)
        if direct is not None:
            return direct.chunks(body)
        stream = await self.root_async_client.post(
            CHAT_COMPLETIONS, body=body, options=options, cast_to=object, stream=True, stream_cls=AsyncStream[object]
        )
        return sdk_chunks(stream)

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


# LangChain asks for ``_agenerate``'s signature on every call (does it take ``run_manager``?): worked out once here.
LeanChatOpenAI._agenerate.__signature__ = inspect.signature(LeanChatOpenAI._agenerate)  # type: ignore[attr-defined]
