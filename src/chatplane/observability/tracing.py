"""Tracing with OpenTelemetry: spans for requests, runs, model calls and tool calls, exported over OTLP/HTTP.

Off unless ``CHATPLANE_OTEL_ENDPOINT`` is set (e.g. ``http://collector:4318``): then nothing is installed — no
tracer provider, no middleware span, no callback work — so switched off it costs nothing. Switched on, the app gets
its own ``TracerProvider`` (service name ``CHATPLANE_OTEL_SERVICE_NAME``) with a batching OTLP exporter that sends
from its own thread, and flushes it on shutdown. The global provider is left alone: chatplane never takes over an
embedding application's tracing.

Spans follow OpenTelemetry's HTTP and GenAI conventions::

    POST /v1/threads/{thread_id}/runs            SERVER  http.request.method, http.route, http.response.status_code
      └ invoke_agent chat                                gen_ai.agent.name, chatplane.run_id, chatplane.thread_id
          ├ chat fake:echo                      CLIENT  gen_ai.request.model, gen_ai.usage.input/output_tokens
          └ execute_tool calculator                      gen_ai.tool.name

An incoming W3C ``traceparent`` header makes the request span a child of the caller's. No span carries message
text, prompts or tool arguments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chatplane.config import Settings
from chatplane.errors import describe_exception

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("chatplane.tracing")


def traces_url(endpoint: str) -> str:
    """``http://collector:4318`` → ``http://collector:4318/v1/traces`` (a full traces URL is kept as it is)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


class Tracing:
    """The app's tracer, or ``None`` when tracing is off. ``version``: the version of the service traced."""

    def __init__(self, settings: Settings, *, version: str) -> None:
        self.settings = settings
        self.version = version
        self.tracer: Tracer | None = None
        self._provider: TracerProvider | None = None
        self.exporter_override: SpanExporter | None = None
        """Test hook: export to this exporter (synchronously) instead of OTLP, even without an endpoint."""

    @property
    def enabled(self) -> bool:
        return self.settings.otel_endpoint is not None or self.exporter_override is not None

    def start(self) -> None:
        if not self.enabled:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        resource = Resource.create({"service.name": self.settings.otel_service_name, "service.version": self.version})
        provider = TracerProvider(resource=resource)
        if self.exporter_override is not None:
            provider.add_span_processor(SimpleSpanProcessor(self.exporter_override))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            assert self.settings.otel_endpoint is not None
            exporter = OTLPSpanExporter(endpoint=traces_url(self.settings.otel_endpoint))
            provider.add_span_processor(BatchSpanProcessor(exporter))
            log.info("tracing: OTLP/HTTP to %s", traces_url(self.settings.otel_endpoint))
        self._provider = provider
        self.tracer = provider.get_tracer("chatplane", self.version)

    async def shutdown(self) -> None:
        """Export what is left and stop (in a worker thread: flushing is network I/O)."""
        provider, self._provider, self.tracer = self._provider, None, None
        if provider is not None:
            try:
                await asyncio.to_thread(provider.shutdown)
            except Exception as exc:
                log.warning("tracing: shutdown failed (%s)", describe_exception(exc))


def start_request_span(
    tracer: Tracer, headers: Iterable[tuple[bytes, bytes]], method: str, path: str, scheme: str, request_id: str
) -> tuple[Span, Token[Context]]:
    """A SERVER span for a request, the child of its ``traceparent`` header if any, made current; returns it and
    the token ``end_request_span`` detaches."""
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace

    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
    parent = propagate.extract(carrier)
    span = tracer.start_span(
        method,
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scheme,
            "chatplane.request_id": request_id,
        },
    )
    return span, otel_context.attach(trace.set_span_in_context(span, parent))


def end_request_span(span: Span, token: Token[Context], method: str, route: str, status: int) -> None:
    """Name the span by its route template, record the status (5xx: an error), end it and detach it."""
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    otel_context.detach(token)


def error_type(error: BaseException) -> str:
    return type(error).__qualname__


def set_error(span: Any, error: BaseException) -> None:
    """Mark ``span`` failed with the error's type only (its text may quote secrets or prompts)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type(error))
    span.set_status(Status(StatusCode.ERROR, error_type(error)))
