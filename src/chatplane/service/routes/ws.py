"""``/v1/threads/{thread_id}/ws``: a WebSocket per thread — send messages, receive run events, cancel, resume.

Authenticate with the ``Authorization`` header, or — browsers cannot set headers on a WebSocket — with a first frame
``{"type": "auth", "token": "<API key or JWT>"}``. Client frames::

    {"type": "message", "message": "...", "multitask": "reject|enqueue|interrupt", "idempotency_key": "..."?}
    {"type": "cancel", "run_id": "..."}
    {"type": "resume", "run_id": "...", "decisions": [{"type": "approve"}]}
    {"type": "attach", "run_id": "...", "after": 0}

Server frames: ``{"type": "accepted", "run": Run}``, ``{"type": "event", "event": RunEvent}`` (the same events as
SSE), ``{"type": "run", "run": Run}`` (after cancel/resume), ``{"type": "error", "error": {"code", "message"}}``.
Closing the socket stops the streaming, not the runs.

Every client frame gets an answer or an error frame, never an exception: each counts against the per-minute request
limit; a frame is strict JSON checked like an HTTP body (``service.inbound``: what storage cannot hold, ``NaN``,
nesting) — refused with an error frame, the socket kept. A binary frame or text that is not JSON gets an error frame
and close code 1003; a refused connection (auth, unknown thread, a bad id) an error frame and ``4000 + status``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from chatplane.core import RunService
from chatplane.errors import AuthenticationError, ChatplaneError, InvalidInputError
from chatplane.failures import as_chatplane_error
from chatplane.runs import Run
from chatplane.schemas import Multitask, ResumeRequest, RunCreate
from chatplane.service.auth import Authenticator, User
from chatplane.service.deps import AgentDep
from chatplane.service.inbound import check_text, parse_json
from chatplane.service.ratelimit import RateLimits
from chatplane.service.routes.threads import run_out

router = APIRouter(tags=["threads"])


class _Socket:
    """Serialises sends from the reader and the per-run forwarders."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._lock:
            await self.websocket.send_json(frame)

    async def error(self, exc: ChatplaneError) -> None:
        await self.send({"type": "error", "error": {"code": exc.code, "message": exc.message}})

    async def try_error(self, exc: ChatplaneError) -> bool:
        """Send an error frame if the socket is still open; False if it is not."""
        try:
            await self.error(exc)
        except Exception:
            return False
        return True


class _NotJSON(Exception):
    """A frame that is binary, or text that is not JSON: the client speaks another protocol."""


@router.websocket("/v1/threads/{thread_id}/ws")
async def thread_socket(websocket: WebSocket, thread_id: str, agent: AgentDep) -> None:
    await websocket.accept()
    socket = _Socket(websocket)
    limits: RateLimits = websocket.app.state.rate_limits
    try:
        check_text(thread_id, "The thread id")
        user = await _authenticate(websocket)
        await limits.check_request(user)
        mine = agent.for_user(user.id)
        thread = await mine.threads.get(thread_id)
    except WebSocketDisconnect:
        return
    except Exception as exc:
        error = _refusal(exc, thread_id)
        with contextlib.suppress(Exception):
            await socket.error(error)
            await websocket.close(code=4000 + error.status if 400 <= error.status < 500 else 1011)
        return
    session = _ThreadSession(socket, mine.runs, thread.thread_id, lambda: limits.check_new_run(user))
    try:
        while True:
            try:
                frame = await _receive_frame(websocket)
                await limits.check_request(user)
                await session.handle(frame)
            except (WebSocketDisconnect, _NotJSON):
                raise
            except Exception as exc:
                if not await socket.try_error(_frame_error(exc, thread.thread_id)):
                    return
    except WebSocketDisconnect:
        pass
    except _NotJSON:
        with contextlib.suppress(Exception):
            await socket.error(InvalidInputError("Frames must be JSON objects, sent as text."))
            await websocket.close(code=1003)
    finally:
        session.close()


async def _receive_frame(websocket: WebSocket) -> Any:
    """The next client frame, parsed and checked (``service.inbound``); ``_NotJSON`` for a binary frame or text
    that is not JSON, ``InvalidInputError`` for JSON that is refused."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is None:
        raise _NotJSON
    try:
        return parse_json(text)
    except InvalidInputError:
        raise
    except ValueError:
        raise _NotJSON from None


def _frame_error(exc: Exception, thread_id: str) -> ChatplaneError:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid frame"}
        return InvalidInputError(f"Invalid frame: {first.get('msg', 'invalid')}.")
    return as_chatplane_error(exc, f"thread {thread_id} (WebSocket)")


def _refusal(exc: Exception, thread_id: str) -> ChatplaneError:
    """Why a connection is refused: the error itself, a failed authentication, or a storage fault classified."""
    if isinstance(exc, ChatplaneError):
        return exc
    if isinstance(exc, TimeoutError | ValueError | _NotJSON):
        return AuthenticationError()
    return as_chatplane_error(exc, f"thread {thread_id} (WebSocket)")


class _ThreadSession:
    """One socket's work on one thread: client frames in, run events out (a forwarder task per followed run)."""

    def __init__(
        self, socket: _Socket, runs: RunService, thread_id: str, check_new_run: Callable[[], Awaitable[None]]
    ) -> None:
        self.socket = socket
        self.runs = runs
        self.thread_id = thread_id
        self.check_new_run = check_new_run
        self.forwarders: set[asyncio.Task[None]] = set()

    async def handle(self, frame: Any) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "message":
            body = RunCreate(message=frame.get("message", ""), multitask=_multitask(frame))
            await self.check_new_run()
            key = frame.get("idempotency_key")
            if key is not None and not isinstance(key, str):
                raise InvalidInputError("`idempotency_key` must be a string.")
            run = await self.runs.send(self.thread_id, str(body.message), multitask=body.multitask, idempotency_key=key)
            await self.socket.send({"type": "accepted", "run": run_out(run).model_dump(mode="json")})
            self.follow(run)
        elif kind in ("cancel", "resume", "attach"):
            run = await self.runs.get(_run_id(frame), thread_id=self.thread_id)
            if kind == "cancel":
                run = await self.runs.cancel(run)
                await self.socket.send({"type": "run", "run": run_out(run).model_dump(mode="json")})
            elif kind == "resume":
                decisions = ResumeRequest(decisions=frame.get("decisions", [])).decisions or []
                run = await self.runs.resume(run, [d.model_dump(exclude_none=True) for d in decisions])
                await self.socket.send({"type": "run", "run": run_out(run).model_dump(mode="json")})
                self.follow(run, _after(frame))
            else:
                self.follow(run, _after(frame))
        else:
            raise InvalidInputError("Unknown frame type: use message, cancel, resume or attach.")

    def follow(self, run: Run, after: int = 0) -> None:
        task = asyncio.create_task(self._forward(run, after))
        self.forwarders.add(task)
        task.add_done_callback(self.forwarders.discard)

    async def _forward(self, run: Run, after: int) -> None:
        try:
            async for event in self.runs.events(run, after):
                await self.socket.send({"type": "event", "event": event.model_dump(mode="json")})
        except (WebSocketDisconnect, RuntimeError):  # the socket closed: the run goes on
            return
        except Exception as exc:
            await self.socket.try_error(as_chatplane_error(exc, f"run {run.run_id} (WebSocket)"))

    def close(self) -> None:
        for task in self.forwarders:
            task.cancel()


async def _authenticate(websocket: WebSocket) -> User:
    authenticator: Authenticator = websocket.app.state.authenticator
    header = websocket.headers.get("authorization")
    if header or (authenticator.local_user_allowed and not await authenticator.keys.any_created()):
        return await authenticator.authenticate(header)
    frame = await asyncio.wait_for(_receive_frame(websocket), timeout=10)
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not isinstance(frame.get("token"), str):
        raise AuthenticationError('Authenticate first: send {"type": "auth", "token": "<API key>"}.')
    return await authenticator.from_token(frame["token"])


def _multitask(frame: dict[str, Any]) -> Multitask:
    value = frame.get("multitask", "reject")
    if value not in ("reject", "enqueue", "interrupt"):
        raise InvalidInputError("multitask must be reject, enqueue or interrupt.")
    return value  # type: ignore[no-any-return]


def _run_id(frame: dict[str, Any]) -> str:
    value = frame.get("run_id")
    if not isinstance(value, str) or not value:
        raise InvalidInputError("`run_id` must be a run's id (a string).")
    return value


def _after(frame: dict[str, Any]) -> int:
    """``after`` as sent (absent: 0); anything but a whole number from 0 is refused, not read as 0."""
    value = frame.get("after", 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError("`after` must be an event id (a whole number, from 0).")
    return value
