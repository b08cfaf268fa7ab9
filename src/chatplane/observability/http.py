"""``ObservedRequest``: what is recorded of one HTTP request or WebSocket — its log context, span, metrics, access line.

The ASGI middleware that sees every request is the service's (``chatplane.service.observe.RequestObserver``): it
reads the request id and the status off the wire and hands them here. This module knows the ASGI scope only as a
mapping (headers, path, scheme, client) and imports no web framework.

* **Log context.** The request id (and, through the scope, the user once authenticated and the thread / run of the
  path) is on every log line written while the request is handled, and by the runs it starts.
* **Metrics.** Requests by method, route *template* (``/v1/threads/{thread_id}``, never the raw path) and status,
  their duration, and open event streams (SSE responses, accepted WebSockets).
* **Access line.** One ``chatplane.access`` line per request when it ends: method, path (no query string), route,
  status, duration, client address — never headers or bodies. Probes and scrapes (``/healthz``, ``/readyz``,
  ``/metrics``) are logged at debug level; 5xx at warning.
* **Span.** With tracing on, a SERVER span around the request, the child of an incoming ``traceparent``; runs the
  request starts are its children.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from chatplane.observability import context
from chatplane.observability.tracing import end_request_span, start_request_span

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

    from chatplane.observability.metrics import Metrics

access_log = logging.getLogger("chatplane.access")

_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ObservedRequest:
    """One request from its arrival (``__init__``: binds its log context, opens its span) to the end of its answer
    (``finish``: records it and unbinds). ``finish`` must be called exactly once, in the task that created it."""

    __slots__ = ("_metrics", "_method", "_scope", "_span", "_span_token", "_started", "_stream", "_tokens")

    def __init__(
        self,
        scope: MutableMapping[str, Any],
        method: str,
        request_id: str,
        *,
        metrics: Metrics | None,
        tracer: Tracer | None,
    ) -> None:
        self._scope = scope
        self._method = method
        self._metrics = metrics
        self._stream: str | None = None
        self._tokens = context.bind_request(request_id, scope)
        self._span: Span | None = None
        self._span_token: Token[Context] | None = None
        if tracer is not None:
            self._span, self._span_token = start_request_span(
                tracer,
                scope.get("headers", ()),
                method,
                str(scope.get("path", "")),
                str(scope.get("scheme", "http")),
                request_id,
            )
        self._started = time.perf_counter()

    def stream_opened(self, kind: str) -> None:
        """The answer is an event stream (``sse``) or an accepted ``websocket``: open until ``finish``."""
        self._stream = kind
        if self._metrics is not None:
            self._metrics.streams_active.labels(kind).inc()

    def finish(self, route: str, status: int) -> None:
        """The answer ended with ``status`` (499: the client went away) on ``route`` (the matched template)."""
        seconds = time.perf_counter() - self._started
        method = self._method
        metrics = self._metrics
        if metrics is not None:
            metrics.http_requests.labels(method, route, str(status)).inc()
            metrics.http_duration.labels(method, route).observe(seconds)
            if self._stream is not None:
                metrics.streams_active.labels(self._stream).dec()
        if self._span is not None and self._span_token is not None:
            end_request_span(self._span, self._span_token, method, route, status)
        self._access_line(route, status, seconds)
        context.unbind_request(self._tokens)

    def _access_line(self, route: str, status: int, seconds: float) -> None:
        path = str(self._scope.get("path", ""))
        level = logging.DEBUG if path in _QUIET_PATHS else logging.WARNING if status >= 500 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        client = self._scope.get("client")
        duration_ms = round(seconds * 1000, 1)
        access_log.log(
            level,
            "%s %s %s %.1fms",
            self._method,
            path,
            status,
            duration_ms,
            extra={
                "method": self._method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "client": client[0] if client else None,
            },
        )
