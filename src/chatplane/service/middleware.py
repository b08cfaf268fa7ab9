"""Plain ASGI middleware: the request body's size and read time, what storage cannot hold refused at the edge, and
the last-resort guard against unexpected errors."""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatplane.errors import InvalidInputError, describe_exception
from chatplane.openai_compat import openai_error
from chatplane.service.errors import is_openai_path
from chatplane.service.inbound import check_json, check_url

log = logging.getLogger("chatplane.service")


async def send_error(
    send: Send, status: int, code: str, message: str, *, openai: bool = False, close: bool = False
) -> None:
    """The stable error body (``openai``: OpenAI's, for the OpenAI-compatible routes; ``close``: and the connection
    closed after it)."""
    error = openai_error(status, code, message) if openai else {"error": {"code": code, "message": message}}
    body = json.dumps(error).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class UnexpectedErrorGuard:
    """Turn an exception no handler claimed into a plain 500 and a log line without its text.

    Starlette's own last-resort handler re-raises, and the server then logs the traceback *with* the exception's
    message, which may quote secrets or user content.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _without_startup_traceback(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("%s %s: internal_error (%s)", scope.get("method"), scope.get("path"), describe_exception(exc))
            if not started:
                await send_error(send, 500, "internal_error", "Internal error.")


def _without_startup_traceback(send: Send) -> Send:
    """Starlette reports a failed start-up with the full traceback (and so the exception's text); the lifespan has
    already logged a safe reason, so the server gets a plain line instead."""

    async def lifespan_send(message: Message) -> None:
        if message["type"] in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            message = {
                **message,
                "message": "chatplane did not start or stop cleanly; the reason is logged above.",
            }
        await send(message)

    return lifespan_send


class _BodyRefused(Exception):
    pass


class BodyLimits:
    """Answer 413 to a request whose body is larger than ``max_bytes`` (declared or actually sent), and 408 to one
    whose body takes longer than ``timeout_s`` to arrive (a slow client holds no connection for long; the request's
    headers have their deadline in ``service.serving``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        received = 0
        deadline: float | None = None
        complete = refused = False

        async def limited_receive() -> Message:
            nonlocal received, deadline, complete, refused
            if complete or refused:
                return await receive()  # the body is in: what follows is a disconnect, whenever it comes
            loop = asyncio.get_running_loop()
            deadline = deadline if deadline is not None else loop.time() + self.timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                refused = True  # answered now: the framework may turn the exception below into a 400 of its own
                await send_error(send, 408, "request_timeout", "The request body took too long to arrive.", close=True)
                raise _BodyRefused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    refused = True
                    await self._too_large(send)
                    raise _BodyRefused
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after our 413 / 408, whatever the app answers is dropped
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyRefused:
            pass

    async def _too_large(self, send: Send) -> None:
        await send_error(send, 413, "request_too_large", f"Request body exceeds {self.max_bytes} bytes.")


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class InboundCheck:
    """Refuse, before any route sees it, what some storage backend cannot hold or a strict JSON parser would not
    take (``chatplane.service.inbound``): in the path, the query and any JSON body — one check for every route,
    a 422 with the stable error body (OpenAI's routes: their 400). WebSockets check their frames themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope["path"], scope.get("query_string", b""))
            if scope["method"] in _BODY_METHODS and _parsed_as_json(scope):
                receive = await self._checked_body(receive)
        except InvalidInputError as exc:
            openai = is_openai_path(scope["path"])
            status = 400 if openai else exc.status
            await send_error(send, status, exc.code, exc.message, openai=openai)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _checked_body(receive: Receive) -> Receive:
        """Read the whole body and check it; the app then receives it as one message, and whatever the client
        sends after it (a disconnect) as usual."""
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                return _replay([message], receive)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        check_json(body)
        return _replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def _parsed_as_json(scope: Scope) -> bool:
    """Whether FastAPI reads this body as JSON: no content type, or a JSON one."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
