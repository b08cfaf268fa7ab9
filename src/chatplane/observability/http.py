"""``RequestObserver``: the outermost ASGI middleware — request id, HTTP metrics, the access line, the request span.

* **Request id.** A client's ``X-Request-ID`` is kept when it is a plain token (1–128 of ``A-Za-z0-9._:/+=@-``),
  otherwise one is generated; either way it is returned in ``X-Request-ID`` and is on every log line written while
  the request is handled (and by the runs it starts).
* **Metrics.** Requests by method, route *template* (``/v1/threads/{thread_id}``, never the raw path) and status,
  their duration, and open event streams (responses of type ``text/event-stream``, accepted WebSockets) — counted
  here, so no route needs to know.
* **Access line.** One ``chatplane.access`` line per request when it ends: method, path (no query string), route,
  status, duration, client address — never headers or bodies. Probes and scrapes (``/healthz``, ``/readyz``,
  ``/metrics``) are logged at debug level; 5xx at warning.
* **Span.** With tracing on, a SERVER span around the request, the child of an incoming ``traceparent``; runs the
  request starts are its children.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatplane.observability import context

if TYPE_CHECKING:
    from chatplane.observability.metrics import Metrics
    from chatplane.observability.tracing import Tracing

access_log = logging.getLogger("chatplane.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "unmatched"


def request_id_from(scope: Scope) -> str:
    """The client's request id if it is a plain token, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1").strip()
            if _REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The matched route's template (``/v1/threads/{thread_id}``), or ``unmatched``."""
    path: object = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _is_event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/event-stream") for name, value in headers)


class RequestObserver:
    def __init__(self, app: ASGIApp, metrics: Metrics | None, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
        method = "WEBSOCKET" if websocket else str(scope.get("method", "GET"))
        request_id = request_id_from(scope)
        scope.setdefault("state", {})  # request.state: where the user is put once authenticated
        tokens = context.bind_request(request_id, scope)
        span, span_token = self._start_span(scope, method, request_id)
        started = time.perf_counter()
        status = 0
        stream: str | None = None
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def observed_send(message: Message) -> None:
            nonlocal status, stream
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept"):
                headers = [*message.get("headers", ()), id_header]
                message = {**message, "headers": headers}
                status = int(message.get("status", 101))
                if websocket:
                    stream = "websocket"
                elif _is_event_stream(headers):
                    stream = "sse"
                if stream is not None and self.metrics is not None:
                    self.metrics.streams_active.labels(stream).inc()
            elif kind == "websocket.close" and status == 0:
                status = 403  # closed before it was accepted: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except asyncio.CancelledError:
            status = status or 499  # the client went away before an answer
            raise
        except BaseException:
            status = status or 500
            raise
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            if self.metrics is not None:
                self.metrics.http_requests.labels(method, route, str(status)).inc()
                self.metrics.http_duration.labels(method, route).observe(seconds)
                if stream is not None:
                    self.metrics.streams_active.labels(stream).dec()
            if span is not None:
                self._end_span(span, span_token, method, route, status)
            self._access_line(scope, method, route, status, seconds)
            context.unbind_request(tokens)

    def _start_span(self, scope: Scope, method: str, request_id: str) -> tuple[Any, Any]:
        tracer = self.tracing.tracer
        if tracer is None:
            return None, None
        from opentelemetry import context as otel_context
        from opentelemetry import propagate, trace

        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", ())}
        parent = propagate.extract(carrier)
        span = tracer.start_span(
            method,
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": str(scope.get("path", "")),
                "url.scheme": str(scope.get("scheme", "http")),
                "chatplane.request_id": request_id,
            },
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def _end_span(span: Any, token: Any, method: str, route: str, status: int) -> None:
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

    @staticmethod
    def _access_line(scope: Scope, method: str, route: str, status: int, seconds: float) -> None:
        path = str(scope.get("path", ""))
        level = logging.DEBUG if path in _QUIET_PATHS else logging.WARNING if status >= 500 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        client = scope.get("client")
        duration_ms = round(seconds * 1000, 1)
        access_log.log(
            level,
            "%s %s %s %.1fms",
            method,
            path,
            status,
            duration_ms,
            extra={
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "client": client[0] if client else None,
            },
        )
