"""``POST /threads/{thread_id}/commands``: the thread protocol's commands over HTTP (``client.threads.stream``'s
``thread.run.start`` / ``thread.run.respond``, ``@langchain/react``'s SSE transport), JSON in, JSON out. The
commands are ``protocol_commands``'; the events are in ``protocol_stream``; the WebSocket takes the same commands
(``protocol_ws``).

A success is ``{"type": "success", "id", "result", "meta": {"applied_through_seq"}}``: the seq just before the
run's (or the resumed run's) first event, so a stream opened ``since`` it sees all of it. A refused command is the
API's error body with the command's ``type`` and ``id`` — ``{"type": "error", "id", "error": {"code", "message"}}``
— with a 4xx (the SDK raises on the status): 422 for the protocol's refusals, 409 ``no_such_interrupt``; a thread
that is not the caller's is the API's usual 404, and the other refusals of the run services (409 busy, 429 limits)
keep the API's error body. ``subscription.*`` is the WebSocket's: here ``not_supported`` (the SSE stream takes its
filter in its body).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chatplane.core.checks import check_id
from chatplane.errors import InvalidInputError
from chatplane.schemas import ErrorBody, ErrorDetail
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.service.langgraph.protocol_commands import Caller, ProtocolError, execute, parse, protocol_code
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.ratelimit import RateLimits

router = langgraph_router()

_STATUS = {"invalid_argument": 422, "unknown_command": 422, "not_supported": 422, "no_such_interrupt": 409}


class CommandSuccess(BaseModel):
    """``CommandResponse``."""

    type: Literal["success"]
    id: int
    result: dict[str, Any]
    meta: dict[str, Any] | None = None


class CommandError(BaseModel):
    """A refused command: chatplane's error body, with the command's ``type`` and ``id``."""

    type: Literal["error"]
    id: int | None
    error: ErrorDetail


_COMMAND_SCHEMA = {
    "type": "object",
    "required": ["id", "method"],
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "method": {"type": "string"},
        "params": {"type": "object"},
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CommandSuccess},
    409: {"model": ErrorBody | CommandError},
    422: {"model": CommandError | ErrorBody},
}


def _error(command_id: int | None, code: str, message: str) -> JSONResponse:
    """chatplane's error body (``error: {code, message}``, as on every route), with the command's ``type`` and
    ``id``. The SDK raises on the status and reads no body; a client matching answers to commands has the ``id``."""
    body = {"type": "error", "id": command_id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=_STATUS.get(code, 422))


@router.post(
    "/threads/{thread_id}/commands",
    responses=_RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _COMMAND_SCHEMA}}}},
)
async def command(thread_id: str, request: Request, agent: AgentDep, user: CurrentUser) -> JSONResponse:
    """Run one protocol command on the caller's thread."""
    limits: RateLimits = request.app.state.rate_limits
    caller = Caller(agent.for_user(user.id), user, limits)
    command_id: int | None = None
    try:
        check_id("thread_id", thread_id)
        command_id, method, params = parse(await request.body())
        answer = await execute(caller, thread_id, method, params)
    except (ProtocolError, InvalidInputError) as exc:
        return _error(command_id, protocol_code(exc), exc.message)
    return JSONResponse(answer.frame(command_id))
