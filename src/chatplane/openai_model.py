"""``ChatOpenAI`` with a lean path for the call chatplane makes on every turn: a chat completion.

``ChatOpenAI`` hands its request to the openai SDK's ``chat.completions.create``, which first walks the whole body
(every message of the prompt) through the SDK's typed-dict transform, and then builds a pydantic model of every
streamed chunk (or of the whole answer), which ``ChatOpenAI`` turns straight back into a dict — for a whole answer
in a worker thread. With a 20-token answer those two were a fifth of the server's CPU per turn in
``benchmarks/profile.py``. ``langchain_openai`` builds the body as plain JSON already (messages and tools are dicts),
so this posts it through the same SDK client as it is (same URL, headers, auth, timeouts, error types) and reads
the answer or the chunks as dicts.

``stream_chunk_timeout`` (a stall watchdog that wraps every chunk in ``asyncio.wait_for``, a task per chunk) is off:
every model attempt in chatplane runs under ``ModelAttemptMiddleware``'s ``asyncio.timeout``, which bounds a stalled
stream too, and the HTTP client's read timeout still applies.

Anything else — structured output (``response_format``), the Responses API, response headers — goes through
``ChatOpenAI`` unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import _handle_openai_api_error, _handle_openai_bad_request
from openai import AsyncStream
from openai._base_client import make_request_options
from openai._types import RequestOptions

_OPTIONS = ("extra_headers", "extra_query", "timeout")
"""Payload keys that are the SDK's request options, not body fields (``extra_body`` is merged into the body)."""


def _split(payload: dict[str, Any]) -> tuple[RequestOptions, dict[str, Any]]:
    """``ChatOpenAI``'s request payload → (the SDK's request options, the JSON body)."""
    options = make_request_options(**{k: payload[k] for k in _OPTIONS if k in payload}, security={"bearer_auth": True})
    body = {k: v for k, v in payload.items() if v is not None and k not in _OPTIONS and k != "extra_body"}
    body.update(payload.get("extra_body") or {})
    return options, body


class LeanChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose chat completions skip the SDK's request transform and response models."""

    stream_chunk_timeout: float | None = None

    def _lean(self, payload: dict[str, Any]) -> bool:
        return not (
            "response_format" in payload
            or self.include_response_headers
            or self._uses_gateway
            or self._use_responses_api(payload)
        )

    async def _post(self, payload: dict[str, Any], *, stream: bool) -> Any:
        options, body = _split(payload)
        if stream:  # each chunk comes as the dict the SDK parsed (cast_to=object)
            return await self.root_async_client.post(
                "/chat/completions",
                body=body,
                options=options,
                cast_to=object,
                stream=True,
                stream_cls=AsyncStream[object],
            )
        return await self.root_async_client.post("/chat/completions", body=body, options=options, cast_to=object)

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
            response = await self._post(payload, stream=False)
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
            async with await self._post(payload, stream=True) as stream:
                async for data in stream:
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
