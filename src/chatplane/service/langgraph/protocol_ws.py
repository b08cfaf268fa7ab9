"""The thread protocol's WebSocket transport (``client.threads.stream(..., transport="websocket")``): a WebSocket at
``/threads/{thread_id}/stream/events`` that takes every command, one JSON text frame each — the JS client sends all
its commands there —: ``subscription.subscribe`` (``SubscribeParams`` and ``since``, as the SSE stream's body; the
Python client's only frame) answers ``{"type": "success", "id", "result": {"subscription_id"}}``, then the events
of every subscription, one per text frame (``protocol_socket``); ``subscription.unsubscribe``
(``subscription_id``) ends one; the other commands are ``POST /threads/{thread_id}/commands``'
(``protocol_commands``), with the same results and ``meta``.

A refused command gets the protocol's error frame ``{"type": "error", "id", "error": code, "message"}``: the
protocol's codes (``invalid_argument``, ``unknown_command``, ``not_supported``, ``no_such_interrupt``,
``no_such_subscription``), else the API's (``thread_not_found``, ``thread_busy``, ``rate_limited`` … — the code of
the HTTP route's error body); never exception text. The socket stays open, except for a ``subscription.subscribe``
refused while it has no subscription (another user's thread, the same as a missing one; bad params): error frame,
then close code ``4000 + status``, which the SDKs read as a refusal not to retry — the Python client has nothing
else to read.

The credential comes in the handshake's headers (``x-api-key`` or ``Authorization``), as the Python SDK sends it;
a connection without a valid one, or with an invalid thread id, gets an error frame and close ``4000 + status``.
Each frame counts against the caller's request rate limit; ``run.start``, ``input.respond`` and ``state.fork``
against their run limits too, as over HTTP. The thread is not checked at the handshake: the JS client opens its
socket before its ``run.start`` creates the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import WebSocket
from pydantic import ValidationError

from chatplane.core.checks import check_id
from chatplane.errors import ChatplaneError
from chatplane.failures import as_chatplane_error
from chatplane.service.auth import Authenticator
from chatplane.service.deps import AgentDep
from chatplane.service.langgraph.protocol_commands import (
    Answer,
    Caller,
    ProtocolError,
    execute,
    parse,
    protocol_code,
)
from chatplane.service.langgraph.protocol_socket import MAX_SUBSCRIPTIONS, SocketEvents
from chatplane.service.langgraph.protocol_stream import SubscribeBody
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.ratelimit import RateLimits

router = langgraph_router()
_PENDING = 64


class _Socket:
    """The accepted WebSocket: frames sent one at a time (commands' answers and events come from two tasks)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> bool:
        """``False`` if the socket is gone (the client left, or it was closed)."""
        async with self._lock:
            try:
                await self.websocket.send_text(json.dumps(frame, separators=(",", ":")))
            except Exception:  # starlette's WebSocketDisconnect, uvicorn's ClientDisconnected, a send after close
                return False
            return True

    async def refuse(self, command_id: int | None, error: ChatplaneError | ProtocolError, close: int | None) -> None:
        """The error frame; then, with ``close``, the socket's end."""
        code = protocol_code(error)
        sent = await self.send({"type": "error", "id": command_id, "error": code, "message": error.message})
        if sent and close is not None:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=close)

    async def fail(self, error: ChatplaneError) -> None:
        """The events cannot be read (the database gone): close code 1011 — the client reconnects ``since``
        its last seq."""
        await self.refuse(None, error, 1011)


def _close_code(status: int) -> int:
    return 4000 + status if 400 <= status < 500 else 1011


async def _open(websocket: WebSocket, thread_id: str, agent: Any) -> Caller:
    authenticator: Authenticator = websocket.app.state.authenticator
    limits: RateLimits = websocket.app.state.rate_limits
    headers = websocket.headers
    user = await authenticator.authenticate(headers.get("authorization"), headers.get("x-api-key"))
    await limits.check_request(user)
    check_id("thread_id", thread_id)
    return Caller(agent.for_user(user.id), user, limits)


@router.websocket("/threads/{thread_id}/stream/events")
async def stream_events_socket(websocket: WebSocket, thread_id: str, agent: AgentDep) -> None:
    await websocket.accept()
    socket = _Socket(websocket)
    try:
        caller = await _open(websocket, thread_id, agent)
    except Exception as exc:
        error = as_chatplane_error(exc, f"thread {thread_id} (protocol)")
        await socket.refuse(None, error, _close_code(error.status))
        return
    events = SocketEvents(socket, caller.mine, thread_id)
    frames: asyncio.Queue[str | bytes | None] = asyncio.Queue(_PENDING)
    receiver = asyncio.create_task(_receive(websocket, frames))
    backlog = 0
    try:
        while (raw := await frames.get()) is not None and await _command(socket, caller, thread_id, events, raw):
            backlog += 1
            if frames.empty() or backlog >= _PENDING:  # a burst of subscriptions (the JS client's) served as one
                events.start()
                backlog = 0
    finally:
        receiver.cancel()
        await events.close()


async def _receive(websocket: WebSocket, frames: asyncio.Queue[str | bytes | None]) -> None:
    """The client's frames, as they come (``None``: it has gone); a client that sends faster than its frames are
    answered waits (``_PENDING``)."""
    with contextlib.suppress(Exception):  # gone (a disconnect, or the socket closed by the server)
        while (message := await websocket.receive())["type"] != "websocket.disconnect":
            await frames.put(message.get("text") or message.get("bytes") or "")
    await frames.put(None)


async def _command(socket: _Socket, caller: Caller, thread_id: str, events: SocketEvents, raw: str | bytes) -> bool:
    """Answer one frame; ``False`` once the socket is gone."""
    command_id: int | None = None
    method = ""
    try:
        try:
            command_id, method, params = parse(raw)
        finally:
            await caller.limits.check_request(caller.user)  # every frame counts, a malformed one too
        answer = await _answer(caller, thread_id, events, method, params)
    except ProtocolError as exc:
        ends = method == "subscription.subscribe" and not events.active
        await socket.refuse(command_id, exc, 4422 if ends else None)
        return not ends
    except Exception as exc:
        error = as_chatplane_error(exc, f"thread {thread_id} (protocol command)")
        ends = method == "subscription.subscribe" and not events.active and 400 <= error.status < 500
        await socket.refuse(command_id, error, _close_code(error.status) if ends else None)
        return not ends
    return await socket.send(answer.frame(command_id))


async def _answer(caller: Caller, thread_id: str, events: SocketEvents, method: str, params: dict[str, Any]) -> Answer:
    if method == "subscription.subscribe":
        try:
            body = SubscribeBody.model_validate(params)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
            where = ".".join(str(p) for p in first.get("loc", ())) or "params"
            raise ProtocolError("invalid_argument", f"Invalid subscription: {where}: {first.get('msg')}.") from None
        if not events.active:  # 404 unless the thread is theirs (checked already if the socket has a subscription)
            await caller.mine.runs.active_on(thread_id)
        subscription_id = events.subscribe(body)
        if subscription_id is None:
            raise ProtocolError("invalid_argument", f"At most {MAX_SUBSCRIPTIONS} subscriptions on one socket.")
        return Answer({"subscription_id": subscription_id})
    if method == "subscription.unsubscribe":
        subscription_id = params.get("subscription_id")
        if not isinstance(subscription_id, str) or not events.unsubscribe(subscription_id):
            raise ProtocolError("no_such_subscription", "No such subscription on this socket.")
        return Answer({})
    return await execute(caller, thread_id, method, params)
