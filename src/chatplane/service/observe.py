"""The app's side of observability: the outermost ASGI middleware that observes every request, and ``GET /metrics``.

``observe(app, operations)`` adds both. The middleware reads what only the wire knows — the request id, the status,
whether the answer is an event stream, the matched route — and hands it to ``chatplane.observability.http``, which
records the log context, span, metrics and access line.

* **Request id.** A client's ``X-Request-ID`` is kept when it is a plain token (1–128 of ``A-Za-z0-9._:/+=@-``),
  otherwise one is generated; either way it is returned in ``X-Request-ID`` and is on every log line written while
  the request is handled (and by the runs it starts).
* **Streams.** Responses of type ``text/event-stream`` and accepted WebSockets are counted as open streams here, so
  no route needs to know.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatplane.observability.http import ObservedRequest
from chatplane.observability.metrics import CONTENT_TYPE, Metrics
from chatplane.observability.operations import Operations
from chatplane.observability.tracing import Tracing

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}$")
UNMATCHED = "unmatched"


def observe(app: FastAPI, operations: Operations) -> None:
    """Observe ``app``'s requests (call after adding its other middleware: the observer must be outermost) and,
    with metrics on, serve them at ``GET /metrics``."""
    app.add_middleware(RequestObserver, metrics=operations.metrics, tracing=operations.tracing)
    if operations.metrics is not None:
        app.add_route("/metrics", metrics_endpoint(operations.metrics), methods=["GET"], include_in_schema=False)


def metrics_endpoint(metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``: the Prometheus text format of every metric."""

    async def endpoint(request: Request) -> Response:
        if metrics.multiproc_dir:  # reads every process's files
            body = await asyncio.to_thread(metrics.exposition)
        else:
            body = metrics.exposition()
        return Response(body, media_type=CONTENT_TYPE)

    return endpoint


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
    """ASGI middleware: each HTTP request and WebSocket, observed from its arrival to the end of its answer."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing  # its tracer exists once the lifespan has started it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
        method = "WEBSOCKET" if websocket else str(scope.get("method", "GET"))
        request_id = request_id_from(scope)
        scope.setdefault("state", {})  # request.state: where the user is put once authenticated
        request = ObservedRequest(scope, method, request_id, metrics=self.metrics, tracer=self.tracing.tracer)
        status = 0
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def observed_send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept"):
                headers = [*message.get("headers", ()), id_header]
                message = {**message, "headers": headers}
                status = int(message.get("status", 101))
                if websocket:
                    request.stream_opened("websocket")
                elif _is_event_stream(headers):
                    request.stream_opened("sse")
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
            request.finish(route_of(scope), status)
