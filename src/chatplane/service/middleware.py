"""Plain ASGI middleware: the request body size limit, and the last-resort guard against unexpected errors."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatplane.errors import describe_exception

log = logging.getLogger("chatplane.service")


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
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


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answer 413 to any request whose body is larger than ``max_bytes`` (declared or actually sent)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not refused:
                    # Answer now: the framework may turn the exception below into a 400 of its own.
                    refused = True
                    await self._refuse(send)
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after our 413, whatever the app answers is dropped
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass

    async def _refuse(self, send: Send) -> None:
        await send_error(send, 413, "request_too_large", f"Request body exceeds {self.max_bytes} bytes.")
