"""OpenAI Chat Completions on the wire ↔ chatplane: request schema, message conversion, chunks. No FastAPI here.

Agents are offered as models named ``chatplane-<agent>``. Requests are stateless by default (the client sends the
whole conversation); naming a chatplane thread (header ``X-Chatplane-Thread``, or ``metadata.chatplane_thread``)
makes them stateful: only the last user message is appended to that thread.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field

from chatplane.errors import InvalidInputError

MODEL_PREFIX = "chatplane-"


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatCompletionRequest(BaseModel):
    """The fields chatplane reads; sampling options (temperature, top_p …) are accepted and left to the agent.
    Options that change what the answer must be (``max_tokens``, ``response_format``) are honoured or refused
    (``check_request``), never ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatCompletionMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    n: int | None = Field(None, ge=1)
    metadata: dict[str, Any] | None = None
    user: str | None = None
    max_tokens: int | None = Field(None, ge=1, description="Honoured where the server's own cap is no higher.")
    max_completion_tokens: int | None = Field(None, ge=1, description="As `max_tokens`.")
    response_format: dict[str, Any] | None = Field(None, description='Only `{"type": "text"}` (the default).')


def agent_of(model: str, known: list[str]) -> str | None:
    """``chatplane-react`` (or ``react``) → ``react``; None when it names no agent."""
    name = model.removeprefix(MODEL_PREFIX)
    return name if name in known else None


def _text(message: ChatCompletionMessage, max_chars: int) -> str:
    content = message.content
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        parts = []
        for part in content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InvalidInputError("Only text content parts are supported.")
            parts.append(part["text"])
        text = "".join(parts)
    if len(text) > max_chars:
        raise InvalidInputError(f"A message is longer than the limit of {max_chars} characters.")
    if "\x00" in text:
        raise InvalidInputError("Messages must not contain NUL characters.")
    return text


def check_request(request: ChatCompletionRequest, *, max_messages: int, max_output_tokens: int | None) -> None:
    """Refuse what chatplane cannot do as asked. ``max_output_tokens``: the server's cap on every model call
    (``CHATPLANE_MAX_OUTPUT_TOKENS``), which honours any ``max_tokens`` at least as large."""
    _check_answer_options(request, max_output_tokens)
    if request.tools:
        raise InvalidInputError("This model runs its own tools; client-provided `tools` are not supported.")
    if request.n not in (None, 1):
        raise InvalidInputError("Only n=1 is supported.")
    if len(request.messages) > max_messages:
        raise InvalidInputError(f"At most {max_messages} messages per request.")
    if request.messages[-1].role != "user":
        raise InvalidInputError("The last message must be from the user.")


def _check_answer_options(request: ChatCompletionRequest, cap: int | None) -> None:
    for name, asked in (("max_tokens", request.max_tokens), ("max_completion_tokens", request.max_completion_tokens)):
        if asked is None or (cap is not None and cap <= asked):
            continue
        if cap is None:
            raise InvalidInputError(
                f"{name} cannot be honoured: this server does not limit answers per request (its operator can cap "
                "every answer with CHATPLANE_MAX_OUTPUT_TOKENS). Leave it out."
            )
        raise InvalidInputError(
            f"{name} must be at least {cap} here: every answer is capped at {cap} tokens, and cannot be cut shorter "
            "per request."
        )
    kind = (request.response_format or {}).get("type", "text")
    if kind != "text":
        raise InvalidInputError(
            f"response_format {kind!r} is not supported: the agents answer in text (leave response_format out)."
        )


def to_langchain(messages: list[ChatCompletionMessage], max_chars: int) -> list[BaseMessage]:
    converted: list[BaseMessage] = []
    for message in messages:
        if message.role == "tool" or message.tool_calls:
            raise InvalidInputError("Tool messages and tool calls from the client are not supported.")
        text = _text(message, max_chars)
        if message.role in ("system", "developer"):
            converted.append(SystemMessage(text))
        elif message.role == "user":
            if not text.strip():
                raise InvalidInputError("User messages must not be empty.")
            converted.append(HumanMessage(text))
        else:
            converted.append(AIMessage(text))
    return converted


def last_user_text(request: ChatCompletionRequest, max_chars: int) -> str:
    text = _text(request.messages[-1], max_chars)
    if not text.strip():
        raise InvalidInputError("User messages must not be empty.")
    return text


class CompletionIds:
    """The id, creation time and model name every chunk of one completion repeats."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": openai_usage(usage),
        }

    def completion(self, text: str, usage: dict[str, int]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": openai_usage(usage),
        }


def openai_usage(usage: dict[str, int]) -> dict[str, int]:
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, code: str, message: str) -> dict[str, Any]:
    """OpenAI's error body, so OpenAI clients classify and retry as they do against OpenAI."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
