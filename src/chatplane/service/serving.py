"""How uvicorn serves the app: a deadline for each request's head (a slow client cannot hold a connection) and a
bound on each connection's life (clients spread again over the workers after one restarts).

uvicorn bounds the idle time between two requests of a connection (keep-alive, 5 s), but neither the wait for a new
connection's first byte nor the time a client takes to send a request's headers: a client that trickles a header
line now and then holds its connection, and a slot of the server, for as long as it likes. ``http_protocol`` is
uvicorn's own HTTP protocol (httptools, as uvicorn picks by default) with that bound added: a connection's first
request head, and each later one from its first byte, must be complete within ``CHATPLANE_REQUEST_HEADER_TIMEOUT_S``;
otherwise the client gets a ``408`` and the connection is closed. The body has a deadline of its own, in ASGI
(``middleware.BodyLimits``).

It also bounds how long a client keeps one connection (``BoundedConnectionProtocol``): a connection that has
served ``CHATPLANE_CONNECTION_MAX_REQUESTS`` requests, or has been open ``CHATPLANE_CONNECTION_MAX_AGE_S``, answers
its next request with ``Connection: close`` and is closed after that response. Clients that keep their
connections would otherwise stay on the worker they first reached: after a worker restarts it gets no one back,
and the next fault hits nearly every user. Closing after a complete response loses nothing — the client opens a
new connection for its next request, which the listening socket hands to whichever worker accepts it first (an
idle, restarted one included).

This leans on three attributes of uvicorn's protocol — ``transport``, ``cycle`` (the current request, replaced
when the next request's head is complete) and the cycle's ``keep_alive`` (read when the response starts) — with
uvicorn pinned; ``tests/service/test_slow_clients.py`` and ``tests/service/test_connection_bounds.py`` fail if
they move.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chatplane.config import Settings, get_settings

log = logging.getLogger("chatplane.service")

_BODY = json.dumps(
    {"error": {"code": "request_timeout", "message": "The request's headers took too long to arrive."}}
).encode()
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing a connection whose request head does not arrive in time (``408``).

    ``header_timeout_s``: the deadline; None reads it from the process's settings (the class is imported by name in
    each worker of ``chatplane serve --workers N``, which builds its app from the environment the same way)."""

    header_timeout_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        configured = type(self).header_timeout_s
        self._head_timeout = configured if configured is not None else get_settings().request_header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None
        self._waiting_after: object = None  # the request before the head awaited (None: the first)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        cycle = getattr(self, "cycle", None)
        if self._head_timer is None and (cycle is None or cycle.response_complete):
            self._arm()  # between requests: these bytes start the next one's head
        super().data_received(data)
        if self._head_timer is not None and getattr(self, "cycle", None) is not self._waiting_after:
            self._disarm()  # the head is complete: a new request started

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._waiting_after = getattr(self, "cycle", None)
        self._head_timer = self.loop.call_later(self._head_timeout, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:  # closed, or upgraded to a WebSocket
            return
        log.info("closed a connection whose request headers took over %.0f s", self._head_timeout)
        transport.write(_TIMED_OUT)
        transport.close()


class BoundedConnectionProtocol(HeadDeadlineProtocol):
    """``HeadDeadlineProtocol`` that ends a connection after ``max_requests`` requests or ``max_age_s`` seconds,
    with ``Connection: close`` on the response that reaches the bound (0 = no bound; None: the process's settings,
    as for ``header_timeout_s``)."""

    max_requests: int | None = None
    max_age_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        settings = get_settings() if cls.max_requests is None or cls.max_age_s is None else None
        self._max_requests = cls.max_requests if settings is None else settings.connection_max_requests
        self._max_age_s = cls.max_age_s if settings is None else settings.connection_max_age_s
        self._opened_at = 0.0
        self._served = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened_at = self.loop.time()

    def on_headers_complete(self) -> None:
        before = getattr(self, "cycle", None)
        super().on_headers_complete()
        cycle = getattr(self, "cycle", None)
        if cycle is None or cycle is before:
            return  # an upgrade (WebSocket): not an HTTP request of this connection's
        self._served += 1
        if self._bound_reached():
            cycle.keep_alive = False  # the response says ``Connection: close``; uvicorn closes after sending it

    def _bound_reached(self) -> bool:
        too_many = bool(self._max_requests) and self._served >= (self._max_requests or 0)
        too_old = bool(self._max_age_s) and self.loop.time() - self._opened_at >= (self._max_age_s or 0.0)
        return too_many or too_old


def http_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """The HTTP protocol for one process serving with ``settings``."""
    bounds = {
        "header_timeout_s": settings.request_header_timeout_s,
        "max_requests": settings.connection_max_requests,
        "max_age_s": settings.connection_max_age_s,
    }
    return type("ChatplaneHttpProtocol", (BoundedConnectionProtocol,), bounds)


WORKER_HTTP_PROTOCOL = f"{__name__}:BoundedConnectionProtocol"
"""The protocol for worker processes, by name (its bounds read from each worker's settings)."""
