"""OpenAI's chat-completions wire format, as the mock server writes it: bodies, stream chunks, errors, usage.

Shapes follow what api.openai.com sends (``chat.completion`` / ``chat.completion.chunk`` objects, a first chunk
with the assistant role, a last chunk with ``finish_reason``, with ``stream_options.include_usage`` a final chunk
with empty ``choices`` and the usage, then ``data: [DONE]``), so the official ``openai`` SDK and ``langchain-openai``
parse them as they parse the real thing.
"""

from __future__ import annotations

import json
import re
from typing import Any

DONE = b"data: [DONE]\n\n"
_WORDS = ("lorem", " ipsum", " dolor", " sit", " amet", ",", " consectetur", " adipiscing", " elit", ".")
_TOKEN_RE = re.compile(r"\s*\S+|\s+")


def words_reply(tokens: int) -> list[str]:
    """``tokens`` pieces of filler text (each piece one token), the same every time."""
    return [_WORDS[i % len(_WORDS)] for i in range(tokens)]


def split_tokens(text: str) -> list[str]:
    """``text`` in word-sized pieces that join back to exactly ``text``."""
    return _TOKEN_RE.findall(text) or [""]


def message_text(message: dict[str, Any]) -> str:
    """The text of an OpenAI message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def tool_call_payload(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion(
    completion_id: str,
    created: int,
    model: str,
    text: str | None,
    usage_: dict[str, Any],
    tool_calls: list[dict[str, Any]] | None = None,
) -> bytes:
    """A whole ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_mock",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": usage_,
    }
    return json.dumps(body, separators=(",", ":")).encode()


class ChunkWriter:
    """Builds the ``data: {...}\\n\\n`` frames of one streamed completion."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_mock",
        }
        self.include_usage = include_usage

    def _frame(self, choices: list[dict[str, Any]], usage_: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {**self._head, "choices": choices}
        if self.include_usage:
            chunk["usage"] = usage_
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return self._frame([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def content(self, text: str, *, first: bool = False) -> bytes:
        """A content delta; the first one also carries the assistant role."""
        return self.delta({"role": "assistant", "content": text} if first else {"content": text})

    def tool_call_start(self, call_id: str, name: str) -> bytes:
        call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return self.delta({"role": "assistant", "content": None, "tool_calls": [call]})

    def tool_call_arguments(self, arguments: str) -> bytes:
        return self.delta({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})

    def finish(self, reason: str) -> bytes:
        return self.delta({}, reason)

    def usage(self, usage_: dict[str, Any]) -> bytes:
        return self._frame([], usage_)


def error_body(status: int, message: str) -> bytes:
    kinds = {
        400: ("invalid_request_error", None),
        404: ("invalid_request_error", "not_found"),
        429: ("rate_limit_exceeded", "rate_limit_exceeded"),
        500: ("server_error", None),
        503: ("service_unavailable", None),
    }
    kind, code = kinds.get(status, ("server_error", None))
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json.dumps(body, separators=(",", ":")).encode()
