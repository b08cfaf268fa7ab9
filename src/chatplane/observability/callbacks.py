"""``RunObserver``: a LangChain callback handler on every run — model and tool calls, timed, counted and traced.

It is added to ``RunManager.callbacks``, so it sees each graph execution (its root chain), every model call inside
it (``on_chat_model_start`` … ``on_llm_end`` with the provider's ``usage_metadata``) and every tool call, in the
task that executes the run (``run_inline``): the run's request span and log context are current there.

Per model call it records the latency, the time to the first streamed token and the tokens in and out (by model:
the configured ``provider:model`` id, or ``provider:name`` for a model the settings do not name); per tool call its
latency and outcome; per graph execution the active-runs gauge and the run's span. Message text is logged only with
``CHATPLANE_LOG_CONTENT=true``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

from chatplane.config import Settings
from chatplane.observability import context
from chatplane.observability.tracing import set_error

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from chatplane.observability.metrics import Metrics

log = logging.getLogger("chatplane.model")

_CANCELLED = (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt)


@dataclass
class _Root:
    """One graph execution (a run, or its continuation after an approval or a recovery)."""

    agent: str
    span: Span | None
    members: set[UUID] = field(default_factory=set)


@dataclass
class _Call:
    """A model or tool call in flight."""

    label: str
    started: float
    root: UUID | None
    span: Span | None
    first_token: float | None = None


def _model_ids(settings: Settings) -> dict[str, str]:
    """Provider model name → chatplane model id, for the models the settings name."""
    ids: dict[str, str] = {}
    for model_id in (*settings.fallback_models, settings.model):
        _, _, name = model_id.partition(":")
        ids[name] = model_id
    return ids


def _usage(response: LLMResult) -> tuple[int, int]:
    """Input and output tokens of a model call, from the messages' ``usage_metadata`` (or the provider's
    ``token_usage`` when a model reports only that)."""
    input_tokens = output_tokens = 0
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None) or {}
            input_tokens += int(usage.get("input_tokens") or 0)
            output_tokens += int(usage.get("output_tokens") or 0)
    if not (input_tokens or output_tokens) and response.llm_output:
        usage = response.llm_output.get("token_usage") or {}
        input_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
    return input_tokens, output_tokens


def _answer_text(response: LLMResult) -> str:
    for generations in response.generations:
        for generation in generations:
            return str(generation.text)
    return ""


class RunObserver(AsyncCallbackHandler):
    run_inline = True  # in the run's own task, in order: its context is the run's

    def __init__(self, settings: Settings, *, metrics: Metrics | None, tracer: Tracer | None) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self.log_content = settings.log_content
        self.default_model = settings.model
        self._model_ids = _model_ids(settings)
        self._roots: dict[UUID, _Root] = {}
        self._root_of: dict[UUID, UUID] = {}  # every chain / call of a graph execution → its root
        self._calls: dict[UUID, _Call] = {}

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    # --- graph executions ---------------------------------------------------------------------------------------
    async def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if parent_run_id is not None:
            self._join(run_id, parent_run_id)
            return
        meta = metadata or {}
        agent = str(meta.get("agent") or kwargs.get("name") or "unknown")
        run = meta.get("run_id")
        if isinstance(run, str):
            context.bind_run(run, str(meta.get("thread_id") or ""), str(meta.get("owner") or ""))
        span = None
        if self.tracer is not None:
            attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
            if isinstance(run, str):
                attributes["chatplane.run_id"] = run
            if meta.get("thread_id"):
                attributes["chatplane.thread_id"] = str(meta["thread_id"])
            span = self.tracer.start_span(f"invoke_agent {agent}", attributes=attributes)
        self._roots[run_id] = _Root(agent, span)
        self._root_of[run_id] = run_id
        if self.metrics is not None:
            self.metrics.runs_active.labels(agent).inc()

    async def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._chain_done(run_id, None)

    async def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._chain_done(run_id, error)

    def _join(self, run_id: UUID, parent_run_id: UUID | None) -> UUID | None:
        root = self._root_of.get(parent_run_id) if parent_run_id is not None else None
        if root is not None:
            self._root_of[run_id] = root
            self._roots[root].members.add(run_id)
        return root

    def _chain_done(self, run_id: UUID, error: BaseException | None) -> None:
        root_id = self._root_of.pop(run_id, None)
        root = self._roots.pop(run_id, None) if root_id == run_id else None
        if root is None:
            if root_id is not None and root_id in self._roots:
                self._roots[root_id].members.discard(run_id)
            return
        for member in root.members:  # calls cut short without their end event (cancellation)
            self._root_of.pop(member, None)
            call = self._calls.pop(member, None)
            if call is not None and call.span is not None:
                call.span.end()
        if self.metrics is not None:
            self.metrics.runs_active.labels(root.agent).dec()
        if root.span is not None:
            if isinstance(error, _CANCELLED):
                root.span.set_attribute("chatplane.cancelled", True)
            elif error is not None:
                set_error(root.span, error)
            root.span.end()

    def _start_call(
        self, run_id: UUID, parent_run_id: UUID | None, label: str, span_name: str, *, remote: bool, **attrs: Any
    ) -> None:
        root_id = self._join(run_id, parent_run_id)
        span = None
        if self.tracer is not None:
            from opentelemetry import trace

            root = self._roots.get(root_id) if root_id is not None else None
            parent = trace.set_span_in_context(root.span) if root is not None and root.span is not None else None
            kind = trace.SpanKind.CLIENT if remote else trace.SpanKind.INTERNAL
            span = self.tracer.start_span(span_name, context=parent, kind=kind, attributes=attrs)
        self._calls[run_id] = _Call(label, time.perf_counter(), root_id, span)

    def _end_call(self, run_id: UUID) -> tuple[_Call, float] | None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return None
        root = self._root_of.pop(run_id, None)
        if root is not None and root in self._roots:
            self._roots[root].members.discard(run_id)
        return call, time.perf_counter() - call.started

    # --- model calls --------------------------------------------------------------------------------------------
    def _model_label(self, metadata: dict[str, Any] | None) -> str:
        meta = metadata or {}
        name = meta.get("ls_model_name")
        if not name:
            return self.default_model
        return self._model_ids.get(str(name)) or f"{meta.get('ls_provider') or 'unknown'}:{name}"

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        model = self._model_label(metadata)
        self._start_call(
            run_id,
            parent_run_id,
            model,
            f"chat {model}",
            remote=True,
            **{"gen_ai.operation.name": "chat", "gen_ai.request.model": model},
        )
        if self.log_content and messages and messages[0]:
            log.info("model request", extra={"model": model, "content": messages[0][-1].text})

    async def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        call = self._calls.get(run_id)
        if call is None or call.first_token is not None:
            return
        message = getattr(chunk, "message", None)
        if token or getattr(message, "tool_call_chunks", None):
            call.first_token = time.perf_counter()
            if self.metrics is not None:
                self.metrics.llm_first_token.labels(call.label).observe(call.first_token - call.started)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        ended = self._end_call(run_id)
        if ended is None:
            return
        call, seconds = ended
        input_tokens, output_tokens = _usage(response)
        if self.metrics is not None:
            if call.first_token is None:  # a whole answer, not streamed: its first token came with the rest
                self.metrics.llm_first_token.labels(call.label).observe(seconds)
            self.metrics.llm_duration.labels(call.label, "ok").observe(seconds)
            if input_tokens:
                self.metrics.llm_tokens.labels(call.label, "input").inc(input_tokens)
            if output_tokens:
                self.metrics.llm_tokens.labels(call.label, "output").inc(output_tokens)
        if call.span is not None:
            call.span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            call.span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
            call.span.end()
        fields = {"model": call.label, "duration_s": round(seconds, 4), "input_tokens": input_tokens}
        fields["output_tokens"] = output_tokens
        if self.log_content:
            log.info("model response", extra={**fields, "content": _answer_text(response)})
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("model call", extra=fields)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        ended = self._end_call(run_id)
        if ended is None:
            return
        call, seconds = ended
        cancelled = isinstance(error, _CANCELLED)
        if self.metrics is not None:
            self.metrics.llm_duration.labels(call.label, "cancelled" if cancelled else "error").observe(seconds)
        if call.span is not None:
            if cancelled:
                call.span.set_attribute("chatplane.cancelled", True)
            else:
                set_error(call.span, error)
            call.span.end()

    # --- tool calls ---------------------------------------------------------------------------------------------
    async def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = str((serialized or {}).get("name") or kwargs.get("name") or "unknown")
        self._start_call(
            run_id,
            parent_run_id,
            name,
            f"execute_tool {name}",
            remote=False,
            **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name},
        )
        if self.log_content:
            log.info("tool call", extra={"tool": name, "content": input_str})

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        failed = isinstance(output, ToolMessage) and output.status == "error"
        self._tool_done(run_id, "error" if failed else "ok", output=output)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        cancelled = isinstance(error, _CANCELLED)
        self._tool_done(run_id, "cancelled" if cancelled else "error", error=None if cancelled else error)

    def _tool_done(self, run_id: UUID, outcome: str, *, output: Any = None, error: BaseException | None = None) -> None:
        ended = self._end_call(run_id)
        if ended is None:
            return
        call, seconds = ended
        if self.metrics is not None:
            self.metrics.tool_duration.labels(call.label, outcome).observe(seconds)
        if call.span is not None:
            if error is not None:
                set_error(call.span, error)
            elif outcome == "error":  # the tool's failure became a message for the model
                call.span.set_attribute("error.type", "tool_error")
            call.span.end()
        if self.log_content and output is not None:
            text = output.text if isinstance(output, BaseMessage) else str(output)
            log.info("tool result", extra={"tool": call.label, "outcome": outcome, "content": text})
