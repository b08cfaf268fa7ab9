"""How uvicorn serves the app: a deadline for each request's head, so that a slow client cannot hold a connection.

uvicorn bounds the idle time between two requests of a connection (keep-alive, 5 s), but neither the wait for a new
connection's first byte nor the time a client takes to send a request's headers: a client that trickles a header
line now and then holds its connection, and a slot of the server, for as long as it likes. ``http_protocol`` is
uvicorn's own HTTP protocol (httptools, as uvicorn picks by default) with that bound added: a connection's first
request head, and each later one from its first byte, must be complete within ``CHATPLANE_REQUEST_HEADER_TIMEOUT_S``;
otherwise the client gets a ``408`` and the connection is closed. The body has a deadline of its own, in ASGI
(``middleware.BodyLimits``).

This leans on two attributes of uvicorn's protocol — ``transport``, and ``cycle`` (the current request, replaced
when the next request's head is complete) — with uvicorn pinned; ``tests/service/test_slow_clients.py`` fails if
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


def http_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """The HTTP protocol for one process serving with ``settings``."""
    return type(
        "ChatplaneHttpProtocol", (HeadDeadlineProtocol,), {"header_timeout_s": settings.request_header_timeout_s}
    )


WORKER_HTTP_PROTOCOL = f"{__name__}:HeadDeadlineProtocol"
"""The protocol for worker processes, by name (its deadline read from each worker's settings)."""
