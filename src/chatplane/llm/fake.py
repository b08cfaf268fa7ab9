"""A scripted, deterministic chat model for tests and demos (``fake:<script>``).

It streams word by word, can wait before its first token and between tokens (``asyncio.sleep``, so it never blocks
the event loop), can fail on purpose, reports token usage, and counts how many calls it is serving at once
(``peak_in_flight``) so tests can prove requests really ran concurrently.

Spec grammar (what follows ``fake:`` in a model id)::

    echo                      answer "echo: <last user message>"
    Hello|How can I help?     answer these replies in turn, cycling
    ...?delay=0.3             wait 0.3 s before the first token
    ...?token_delay=0.01      wait between tokens
    ...?fail=error            raise a provider-style error (with a fake secret in its text)
    ...?fail=hang             never answer (for timeout tests)
    ...?fail=drop             the first streamed answer stops halfway with a dropped connection (retried: the
                              retry answers with the next reply)
    tool:calculator:{"expression":"2*21"}|It is 42.
                              a tool call (name, JSON arguments), then, on the next call, an answer

Built directly, ``replies`` may also hold ``AIMessage`` objects (tool calls included, streamed as tool-call chunks)
and callables ``reply(prompt) -> str | AIMessage`` that answer from the messages the model was called with.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from chatplane.errors import ConfigError

FAKE_SECRET = "sk-fake-SECRET-0123456789"
"""Appears in the text of the fake's provider errors, so tests can check it never leaks."""

_TOKEN = re.compile(r"\S+\s*|\s+")


Reply = Annotated[
    str | Callable[[list[BaseMessage]], str | AIMessage] | AIMessage,
    Field(union_mode="left_to_right"),  # a function is tried as a callable before AIMessage's validators see it
]
"""One scripted answer: its text, a whole ``AIMessage`` (tool calls included), or ``reply(prompt)``."""


def _scripted_reply(part: str, spec: str) -> str | AIMessage:
    """``tool:<name>:<json args>`` → an AIMessage calling that tool; anything else is the reply's text."""
    if not part.startswith("tool:"):
        return part
    name, _, arguments = part.removeprefix("tool:").partition(":")
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        raise ConfigError(f"Bad fake model spec {spec!r}: tool arguments must be JSON.") from exc
    if not name or not isinstance(args, dict):
        raise ConfigError(f"Bad fake model spec {spec!r}: use tool:<name>:<JSON object>.")
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{name}", "type": "tool_call"}])


class FakeProviderError(RuntimeError):
    """What the fake raises for ``fail=error``: text that must never reach a client or a log line."""


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script. Build it directly or through ``make_chat_model("fake:...")``."""

    replies: list[Reply] = []
    echo: bool = False
    delay: float = 0.0
    token_delay: float = 0.0
    fail: str | None = None
    gather: int = 0
    """Hold every call until this many are in flight together (at most ``gather_timeout`` s), then ``delay``:
    proves concurrency without depending on how fast the machine is. A server that serialises calls never
    gathers them, so its peak stays 1."""
    gather_timeout: float = 10.0
    drops: int = 0
    """How many streamed answers (the first ones) stop halfway with a ``ConnectionError``, as a dropped stream
    does: a transient failure, so chatplane's model retry tries again (and gets the script's next reply)."""

    _gathered: asyncio.Event | None = PrivateAttr(default=None)
    _cycle: Iterator[Reply] | None = PrivateAttr(default=None)
    _in_flight: int = PrivateAttr(default=0)
    _peak: int = PrivateAttr(default=0)
    _calls: int = PrivateAttr(default=0)
    _dropped: int = PrivateAttr(default=0)
    _prompts: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @classmethod
    def from_spec(cls, spec: str) -> ScriptedChatModel:
        script, _, query = spec.partition("?")
        options: dict[str, Any] = {}
        try:
            for key, value in parse_qsl(query, strict_parsing=bool(query)):
                if key in ("delay", "token_delay"):
                    options[key] = float(value)
                elif key == "fail" and value in ("error", "hang"):
                    options[key] = value
                elif key == "fail" and value == "drop":
                    options["drops"] = 1
                else:
                    raise ValueError(key)
        except ValueError as exc:
            raise ConfigError(
                f"Bad fake model spec {spec!r}: options are delay=<s>, token_delay=<s>, fail=error|hang|drop."
            ) from exc
        if script == "echo":
            return cls(echo=True, **options)
        return cls(replies=[_scripted_reply(part, spec) for part in script.split("|")], **options)

    # --- what tests read ------------------------------------------------------------------------------------------
    @property
    def peak_in_flight(self) -> int:
        """Most calls this model was serving at the same moment."""
        return self._peak

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def prompts(self) -> list[list[BaseMessage]]:
        """Every prompt the model was called with, in order."""
        return self._prompts

    # --- BaseChatModel --------------------------------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "chatplane-scripted-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        # Tool calls come from the script (AIMessages with tool_calls); binding changes nothing.
        return self

    def _next_reply(self, messages: list[BaseMessage]) -> AIMessage:
        self._calls += 1
        self._prompts.append(list(messages))
        if self.echo:
            last = next((m for m in reversed(messages) if m.type == "human"), None)
            return AIMessage(content=f"echo: {last.text if last else ''}")
        if self._cycle is None:
            self._cycle = itertools.cycle(self.replies or ["ok"])
        reply = next(self._cycle)
        if callable(reply):
            reply = reply(list(messages))
        return AIMessage(content=reply) if isinstance(reply, str) else reply.model_copy()

    def _usage(self, messages: list[BaseMessage], reply: AIMessage) -> dict[str, int]:
        prompt = sum(len(_TOKEN.findall(m.text)) for m in messages)
        completion = len(_TOKEN.findall(reply.text))
        return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}

    def _enter(self) -> None:
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        if self.gather and self._in_flight >= self.gather:
            self._gathering().set()

    def _gathering(self) -> asyncio.Event:
        if self._gathered is None:
            self._gathered = asyncio.Event()
        return self._gathered

    async def _wait(self, seconds: float) -> None:
        if self.gather:
            try:
                await asyncio.wait_for(self._gathering().wait(), self.gather_timeout)
            except TimeoutError:
                pass
        await asyncio.sleep(seconds)

    def _raise_if_failing(self) -> None:
        if self.fail == "error":
            raise FakeProviderError(f"upstream said 500 for key {FAKE_SECRET}")

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self._enter()
        try:
            await self._wait(self.delay)
            if self.fail == "hang":
                await asyncio.Event().wait()
            self._raise_if_failing()
            reply = self._next_reply(messages)
            tokens = _TOKEN.findall(reply.text) or [""]
            dropping = self._dropped < self.drops
            if dropping:
                self._dropped += 1
                tokens = tokens[: max(1, len(tokens) // 2)]
            for i, token in enumerate(tokens):
                if i and self.token_delay:
                    await asyncio.sleep(self.token_delay)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=reply.id))
                if run_manager:
                    await run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk
            if dropping:
                raise ConnectionError("the fake model's stream dropped")
            if reply.tool_calls:
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        id=reply.id,
                        tool_call_chunks=[
                            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                            for i, c in enumerate(reply.tool_calls)
                        ],
                    )
                )
            usage = self._usage(messages, reply)
            yield ChatGenerationChunk(
                message=AIMessageChunk(content="", id=reply.id, usage_metadata=usage, chunk_position="last")
            )
        finally:
            self._in_flight -= 1

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._enter()
        try:
            await self._wait(self.delay + self.token_delay * 5)
            if self.fail == "hang":
                await asyncio.Event().wait()
            self._raise_if_failing()
            reply = self._next_reply(messages)
            reply.usage_metadata = self._usage(messages, reply)  # type: ignore[assignment]
            return ChatResult(generations=[ChatGeneration(message=reply)])
        finally:
            self._in_flight -= 1

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.fail == "hang":
            raise ConfigError("fail=hang is only supported on the async path")
        time.sleep(self.delay)
        self._raise_if_failing()
        reply = self._next_reply(messages)
        reply.usage_metadata = self._usage(messages, reply)  # type: ignore[assignment]
        return ChatResult(generations=[ChatGeneration(message=reply)])
