"""The mock model's ASGI app: its settings (``MockConfig``), its statistics (``Stats``) and ``MockOpenAI``.

Run and controlled through ``benchmarks.mock_openai`` (command line, ``MockOpenAIServer``); the module docstring there
describes the routes and the control API.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from benchmarks import openai_wire as wire
from benchmarks.mock_embeddings import embeddings_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FAULTS = ("none", "429", "500", "503", "hang", "drop")
REPLIES = ("words", "echo", "text")


@dataclasses.dataclass(frozen=True)
class MockConfig:
    """How the mock answers. Every field can be set by flag, by ``POST /_control`` and by an ``X-Mock-*`` header."""

    ttft: float = 0.2
    """Seconds before the first token (non-streaming: the whole answer comes at ttft + tokens × token_interval)."""
    token_interval: float = 0.01
    """Seconds between tokens (and after the last one, before the end of the stream)."""
    tokens: int = 20
    """Length of a ``words`` reply, in tokens."""
    reply: str = "words"
    """``words``: ``tokens`` filler words; ``echo``: the last user message; ``text``: ``reply_text``."""
    reply_text: str = "Hello from the mock."
    fault: str = "none"
    """``429`` (with Retry-After), ``500``, ``503``, ``hang`` (never answer), ``drop`` (close the connection midway)."""
    fail_first: int = 0
    """0: the fault hits every request; N: only the first N requests (counted per ``fail_key``), then answers."""
    fail_key: str = "default"
    retry_after: float = 1.0
    """Seconds in the ``Retry-After`` header of a 429."""
    drop_after: int = 3
    """Chunks sent before a ``drop`` closes the connection (non-streaming: half the body)."""
    tool_call: dict[str, Any] | None = None
    """``{"name": ..., "arguments": {...}}``: when the request offers tools and its last message is not a tool
    result, answer with this call instead of text."""

    def updated(self, changes: dict[str, Any]) -> MockConfig:
        """A copy with ``changes`` applied (strings are converted, as they come from headers); ValueError if bad."""
        values = {}
        for name, raw in changes.items():
            name = name.replace("-", "_").lower()
            if name not in _CONVERTERS:
                raise ValueError(f"unknown mock setting {name!r}; known: {', '.join(_CONVERTERS)}")
            values[name] = _CONVERTERS[name](raw)
        new = dataclasses.replace(self, **values)
        if new.fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        if new.reply not in REPLIES:
            raise ValueError(f"reply must be one of {REPLIES}")
        if min(new.ttft, new.token_interval, new.retry_after) < 0 or min(new.tokens, new.fail_first) < 0:
            raise ValueError("times and counts must not be negative")
        return new

    @property
    def model_latency(self) -> float:
        """Seconds the mock takes to answer a request completely."""
        return self.ttft + self.tokens * self.token_interval


def _tool_call(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() not in ("", "null", "none") else None
    if value is not None and not (isinstance(value, dict) and isinstance(value.get("name"), str)):
        raise ValueError('tool_call must be {"name": ..., "arguments": {...}} or null')
    return value


def _str(value: Any) -> str:
    return str(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "ttft": float,
    "token_interval": float,
    "tokens": int,
    "reply": _str,
    "reply_text": _str,
    "fault": _str,
    "fail_first": int,
    "fail_key": _str,
    "retry_after": float,
    "drop_after": int,
    "tool_call": _tool_call,
}
_HEADERS = {f"x-mock-{name.replace('_', '-')}".encode(): name for name in _CONVERTERS}


class Stats:
    """What the mock saw since the last reset (in-flight requests survive a reset)."""

    def __init__(self, max_prompts: int = 200_000) -> None:
        self.in_flight = 0
        self._max_prompts = max_prompts
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.completed = 0
        self.streamed = 0
        self.completion_tokens = 0
        self.in_flight_peak = self.in_flight
        self.faults: collections.Counter[str] = collections.Counter()
        self.prompts: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=self._max_prompts)

    def begin(self, messages: int, body_bytes: int, chars: int) -> None:
        self.requests += 1
        self.in_flight += 1
        self.in_flight_peak = max(self.in_flight_peak, self.in_flight)
        self.prompts.append((messages, body_bytes, chars))

    def end(self) -> None:
        self.in_flight -= 1

    def as_dict(self, prompts: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requests": self.requests,
            "completed": self.completed,
            "streamed": self.streamed,
            "completion_tokens": self.completion_tokens,
            "in_flight": self.in_flight,
            "in_flight_peak": self.in_flight_peak,
            "faults": dict(self.faults),
        }
        if prompts:
            data["prompt_messages"] = [p[0] for p in self.prompts]
            data["prompt_bytes"] = [p[1] for p in self.prompts]
            data["prompt_chars"] = [p[2] for p in self.prompts]
        return data


class _DropConnection(Exception):
    """Raised inside a response to make uvicorn close the connection (the only way to do it in ASGI)."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for every connection the mock drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DropConnection))


def _install_quiet_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


class MockOpenAI:
    """The ASGI application."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.defaults = config or MockConfig()
        self.config = self.defaults
        self.stats = Stats()
        self._failures: collections.Counter[str] = collections.Counter()
        _install_quiet_drops()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path in ("/v1/chat/completions", "/chat/completions") and method == "POST":
            await self._chat(scope, receive, send)
        elif path in ("/v1/embeddings", "/embeddings") and method == "POST":
            await self._embeddings(scope, receive, send)
        elif path in ("/v1/models", "/models"):
            await _json(send, 200, {"object": "list", "data": [_model("mock")]})
        elif path == "/health":
            await _json(send, 200, {"status": "ok"})
        elif path == "/_stats" and method == "GET":
            await _json(send, 200, self.stats.as_dict(prompts=b"prompts=0" not in scope.get("query_string", b"")))
        elif path == "/_stats/reset" and method == "POST":
            self.stats.reset()
            await _json(send, 200, self.stats.as_dict())
        elif path == "/_control":
            await self._control(method, receive, send)
        else:
            await _raw(send, 404, wire.error_body(404, f"No route {method} {path}"))

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self._fault(self._request_config(scope))
        if fault in ("429", "500", "503"):
            await _raw(send, int(fault), wire.error_body(int(fault), f"Injected fault {fault}"))
            return
        try:
            await _json(send, 200, embeddings_response(json.loads(await _read_body(receive))))
        except (ValueError, KeyError, TypeError) as exc:
            await _raw(send, 400, wire.error_body(400, f"Bad request: {exc}"))

    async def _control(self, method: str, receive: Receive, send: Send) -> None:
        if method == "POST":
            try:
                changes = json.loads(await _read_body(receive) or b"{}")
                if changes.pop("reset", False):
                    self.config = self.defaults
                self.config = self.config.updated(changes)
            except (ValueError, TypeError, AttributeError) as exc:
                await _raw(send, 400, wire.error_body(400, str(exc)))
                return
            self._failures.clear()
        await _json(send, 200, dataclasses.asdict(self.config))

    def _request_config(self, scope: Scope) -> MockConfig:
        overrides = {_HEADERS[k]: v.decode() for k, v in scope["headers"] if k in _HEADERS}
        return self.config.updated(overrides) if overrides else self.config

    def _fault(self, config: MockConfig) -> str:
        if config.fault == "none":
            return "none"
        if config.fail_first:
            if self._failures[config.fail_key] >= config.fail_first:
                return "none"
            self._failures[config.fail_key] += 1
        self.stats.faults[config.fault] += 1
        return config.fault

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        try:
            request = json.loads(body)
            messages = request["messages"]
            config = self._request_config(scope)
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            await _raw(send, 400, wire.error_body(400, f"Bad request: {exc}"))
            return
        self.stats.begin(len(messages), len(body), sum(len(wire.message_text(m)) for m in messages))
        try:
            await self._answer(request, messages, len(body), config, receive, send)
        finally:
            self.stats.end()

    async def _answer(
        self,
        request: dict[str, Any],
        messages: list[dict[str, Any]],
        body_bytes: int,
        config: MockConfig,
        receive: Receive,
        send: Send,
    ) -> None:
        fault = self._fault(config)
        if fault == "hang":
            await _wait_disconnect(receive)
            return
        if fault in ("429", "500", "503"):
            headers = []
            if fault == "429":
                headers = [
                    (b"retry-after", f"{config.retry_after:g}".encode()),
                    (b"retry-after-ms", f"{config.retry_after * 1000:.0f}".encode()),
                ]
            await _raw(send, int(fault), wire.error_body(int(fault), f"Mock fault {fault}"), headers)
            return
        model = str(request.get("model") or "mock")
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        prompt_tokens = max(1, body_bytes // 4)
        call = _wanted_tool_call(config, request, messages)
        pieces = _reply(config, messages) if call is None else []
        drop = fault == "drop"
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            writer = wire.ChunkWriter(completion_id, created, model, include_usage)
            await self._stream(send, writer, config, pieces, call, prompt_tokens, drop)
        else:
            await asyncio.sleep(config.model_latency if call is None else config.ttft)
            calls = [wire.tool_call_payload(*call)] if call else None
            text = "".join(pieces) if call is None else None
            body = wire.completion(completion_id, created, model, text, wire.usage(prompt_tokens, len(pieces)), calls)
            if drop:
                await _start(send, 200, [(b"content-length", str(len(body)).encode())])
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                raise _DropConnection()
            await _raw(send, 200, body)
        self.stats.completed += 1
        self.stats.completion_tokens += len(pieces)

    async def _stream(
        self,
        send: Send,
        writer: wire.ChunkWriter,
        config: MockConfig,
        pieces: list[str],
        call: tuple[str, str, str] | None,
        prompt_tokens: int,
        drop: bool,
    ) -> None:
        self.stats.streamed += 1
        await _start(send, 200, [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")])
        if call is not None:
            frames = [writer.tool_call_start(call[0], call[1]), writer.tool_call_arguments(call[2])]
        else:
            frames = [writer.content(piece, first=i == 0) for i, piece in enumerate(pieces)]
        # Paced by deadlines from the start, not by one sleep after another: each sleep ends a little late (the
        # event loop's timers have a resolution of 1 ms), and 21 such delays would make a "400 ms" answer take ~410.
        start = asyncio.get_running_loop().time()
        await _sleep_until(start + config.ttft)
        for i, frame in enumerate(frames):
            if drop and i >= config.drop_after:
                raise _DropConnection()
            if i:
                await _sleep_until(start + config.ttft + i * config.token_interval)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if drop:
            raise _DropConnection()
        await _sleep_until(start + config.ttft + len(frames) * config.token_interval)
        tail = writer.finish("tool_calls" if call else "stop")
        if writer.include_usage:
            tail += writer.usage(wire.usage(prompt_tokens, len(pieces)))
        await send({"type": "http.response.body", "body": tail + wire.DONE, "more_body": False})


async def _sleep_until(deadline: float) -> None:
    delay = deadline - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


def _reply(config: MockConfig, messages: list[dict[str, Any]]) -> list[str]:
    if config.reply == "echo":
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        return wire.split_tokens(wire.message_text(users[-1]) if users else "")
    if config.reply == "text":
        return wire.split_tokens(config.reply_text)
    return wire.words_reply(config.tokens)


def _wanted_tool_call(
    config: MockConfig, request: dict[str, Any], messages: list[dict[str, Any]]
) -> tuple[str, str, str] | None:
    """(id, name, arguments JSON) when the config asks for a tool call and the request can take one."""
    if config.tool_call is None or not request.get("tools"):
        return None
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None
    arguments = json.dumps(config.tool_call.get("arguments", {}))
    return f"call_{uuid.uuid4().hex[:16]}", str(config.tool_call["name"]), arguments


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "mock"}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _start(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _raw(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await _start(send, status, base + (headers or []))
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, data: Any) -> None:
    await _raw(send, status, json.dumps(data, separators=(",", ":")).encode())
