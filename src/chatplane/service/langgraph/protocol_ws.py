"""The thread protocol's WebSocket transport (``client.threads.stream(..., transport="websocket")``): a WebSocket at
``/threads/{thread_id}/stream/events`` whose first frame is ``subscription.subscribe`` (``SubscribeParams`` and
``since``, as the SSE stream's body); the answer ``{"type": "success", "id", "result": {"subscription_id"}}``, then
the same events as the SSE stream (``protocol_stream``), one per text frame. Commands still go to
``POST /threads/{thread_id}/commands``; a later frame gets a ``not_supported`` error frame.

The credential comes in the handshake's headers (``x-api-key`` or ``Authorization``), as the SDK sends it. A refused
connection — no credential, a thread that is not the caller's (the same as a missing one), a first frame that is not
a subscription — gets an error frame ``{"type": "error", "id", "error", "message"}`` and close code ``4000 +
status``, which the SDK reads as a refusal not to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from chatplane.core import UserServices
from chatplane.errors import ChatplaneError, InvalidInputError
from chatplane.failures import as_chatplane_error
from chatplane.service.auth import Authenticator
from chatplane.service.deps import AgentDep
from chatplane.service.langgraph.protocol_stream import SubscribeBody, thread_events
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.ratelimit import RateLimits

router = langgraph_router()
_CODES = {401: "permission_denied", 403: "permission_denied"}


async def _send(websocket: WebSocket, frame: dict[str, Any]) -> None:
    await websocket.send_text(json.dumps(frame, separators=(",", ":")))


async def _subscription(websocket: WebSocket) -> tuple[int, SubscribeBody]:
    """The first frame: ``subscription.subscribe`` with its params, or an ``InvalidInputError``."""
    try:
        frame = json.loads(await asyncio.wait_for(websocket.receive_text(), timeout=30))
    except (ValueError, TimeoutError, KeyError):
        raise InvalidInputError("The first frame must be a subscription.subscribe command, as JSON text.") from None
    if not isinstance(frame, dict) or frame.get("method") != "subscription.subscribe":
        raise InvalidInputError("The first frame must be a subscription.subscribe command.")
    command_id = frame.get("id")
    if not isinstance(command_id, int) or isinstance(command_id, bool):
        raise InvalidInputError("`id` must be an integer.")
    try:
        return command_id, SubscribeBody.model_validate(frame.get("params"))
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid"}
        raise InvalidInputError(f"Invalid subscription: {first.get('msg', 'invalid')}.") from None


async def _open(websocket: WebSocket, thread_id: str, agent: Any) -> tuple[UserServices, int, SubscribeBody]:
    authenticator: Authenticator = websocket.app.state.authenticator
    limits: RateLimits = websocket.app.state.rate_limits
    headers = websocket.headers
    user = await authenticator.authenticate(headers.get("authorization"), headers.get("x-api-key"))
    await limits.check_request(user)
    mine: UserServices = agent.for_user(user.id)
    await mine.runs.active_on(thread_id)  # 404 unless it is theirs
    command_id, body = await _subscription(websocket)
    return mine, command_id, body


@router.websocket("/threads/{thread_id}/stream/events")
async def stream_events_socket(websocket: WebSocket, thread_id: str, agent: AgentDep) -> None:
    await websocket.accept()
    try:
        mine, command_id, body = await _open(websocket, thread_id, agent)
    except WebSocketDisconnect:
        return
    except Exception as exc:
        error = exc if isinstance(exc, ChatplaneError) else as_chatplane_error(exc, f"thread {thread_id} (protocol)")
        frame = {
            "type": "error",
            "id": None,
            "error": _CODES.get(error.status, "invalid_argument"),
            "message": error.message,
        }
        with contextlib.suppress(Exception):
            await _send(websocket, frame)
            await websocket.close(code=4000 + error.status if 400 <= error.status < 500 else 1011)
        return
    await _send(websocket, {"type": "success", "id": command_id, "result": {"subscription_id": str(command_id)}})
    forward = asyncio.create_task(_forward(websocket, mine, thread_id, body))
    try:
        await _read(websocket)
    finally:
        forward.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await forward


async def _forward(websocket: WebSocket, mine: UserServices, thread_id: str, body: SubscribeBody) -> None:
    """The thread's events to the socket; if they cannot be read (the database gone), an error frame and close
    code 1011 — the client reconnects ``since`` its last seq — rather than a socket left open and silent."""
    try:
        async for event in thread_events(mine, thread_id, body.since):
            if body.matches(event):
                await _send(websocket, event)
    except (WebSocketDisconnect, asyncio.CancelledError):
        raise
    except Exception as exc:
        error = as_chatplane_error(exc, f"thread {thread_id} (protocol stream)")
        with contextlib.suppress(Exception):
            await _send(websocket, {"type": "error", "id": None, "error": error.code, "message": error.message})
            await websocket.close(code=1011)


async def _read(websocket: WebSocket) -> None:
    """Frames after the subscription, until the client goes: each gets a ``not_supported`` error frame."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                command_id = json.loads(message.get("text") or "null").get("id")
            except (ValueError, AttributeError):
                command_id = None
            message_text = "Send commands to POST /threads/{thread_id}/commands; this socket carries one subscription."
            frame = {"type": "error", "id": command_id, "error": "not_supported", "message": message_text}
            await _send(websocket, frame)
