"""``POST /threads/{thread_id}/commands``: the thread protocol's commands (``client.threads.stream``'s
``thread.run.start`` / ``thread.run.respond``, ``@langchain/react``), JSON in, JSON out. The events are in
``protocol_stream``.

==================  ===========================================================================================
``run.start``       a run of ``assistant_id`` on the thread (created if it does not exist), as a LangGraph run
                    with stream modes values, updates, messages-tuple and custom, subgraphs included;
                    ``multitask_strategy`` (the JS client's), by default ``reject``: the thread busy → 409.
                    ``{"run_id"}``
``state.get``       the thread's latest ``values`` (``keys``: only those) and ``checkpoint`` ``{id}``; the root
                    graph's only (another ``namespace``: ``not_supported``)
``input.respond``   resumes the run the thread waits on: ``Command(resume={interrupt_id: response, …},
                    update, goto)`` — the same run goes on. ``{}``; no run waiting → 409 ``no_such_interrupt``
others              ``subscription.*`` (the SSE stream takes its filter in its body), ``agent.getTree``,
                    ``input.inject``, ``state.listCheckpoints``, ``state.fork``: 422 ``not_supported``; an unknown
                    method: 422 ``unknown_command``
==================  ===========================================================================================

A success is ``{"type": "success", "id", "result", "meta": {"applied_through_seq"}}``: the seq just before the
run's (or the resumed run's) first event, so a stream opened ``since`` it sees all of it. A refused command is the
API's error body with the command's ``type`` and ``id`` — ``{"type": "error", "id", "error": {"code", "message"}}``
— with a 4xx (the SDK raises on the status); a thread that is not the caller's is the API's usual 404, and the
other refusals of the run services (409 busy, 429 limits) keep the API's error body. A value sent is never quoted.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chatplane.core import UserServices
from chatplane.core.checks import check_id
from chatplane.errors import InvalidInputError
from chatplane.schemas import ErrorBody, ErrorDetail
from chatplane.service.deps import AgentDep, RunAllowedUser
from chatplane.service.langgraph.protocol_events import seq_of
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.langgraph.run_body import LangGraphRunCreate
from chatplane.service.langgraph.runs import start_run
from chatplane.storage.runs import Run

router = langgraph_router()

RUN_MODES = ["values", "updates", "messages-tuple", "custom"]
_NOT_SUPPORTED = {
    "subscription.subscribe",
    "subscription.unsubscribe",
    "subscription.reconnect",
    "agent.getTree",
    "input.inject",
    "state.listCheckpoints",
    "state.fork",
}
_KNOWN = "run.start, input.respond, state.get"
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


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(command_id: int | None, code: str, message: str) -> JSONResponse:
    """chatplane's error body (``error: {code, message}``, as on every route), with the command's ``type`` and
    ``id``. The SDK raises on the status and reads no body; a client matching answers to commands has the ``id``."""
    body = {"type": "error", "id": command_id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=_STATUS.get(code, 422))


def _parse(raw: bytes) -> tuple[int, str, dict[str, Any]]:
    try:
        command = json.loads(raw)
    except ValueError:
        raise ProtocolError("invalid_argument", "The command is not JSON.") from None
    if not isinstance(command, dict):
        raise ProtocolError("invalid_argument", "A command is an object: {id, method, params}.")
    command_id, method, params = command.get("id"), command.get("method"), command.get("params", {})
    if not isinstance(command_id, int) or isinstance(command_id, bool) or command_id < 0:
        raise ProtocolError("invalid_argument", "`id` must be a non-negative integer.")
    if not isinstance(method, str) or not isinstance(params, dict):
        raise ProtocolError("invalid_argument", "`method` must be a string and `params` an object.")
    return command_id, method, params


@router.post(
    "/threads/{thread_id}/commands",
    responses=_RESPONSES,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _COMMAND_SCHEMA}}}},
)
async def command(thread_id: str, request: Request, agent: AgentDep, user: RunAllowedUser) -> JSONResponse:
    """Run one protocol command on the caller's thread."""
    mine = agent.for_user(user.id)
    command_id: int | None = None
    applied: int | None
    try:
        check_id("thread_id", thread_id)
        command_id, method, params = _parse(await request.body())
        if method == "run.start":
            result, applied = await _run_start(mine, thread_id, params)
        elif method == "input.respond":
            result, applied = await _input_respond(mine, thread_id, params)
        elif method == "state.get":
            result, applied = await _state_get(mine, thread_id, params), None
        elif method in _NOT_SUPPORTED:
            raise ProtocolError("not_supported", f"`{method}` is not supported here.")
        else:
            raise ProtocolError("unknown_command", f"Unknown command; the commands are {_KNOWN}.")
    except ProtocolError as exc:
        return _error(command_id, exc.code, exc.message)
    except InvalidInputError as exc:
        return _error(command_id, "invalid_argument", exc.message)
    body = {"type": "success", "id": command_id, "result": result}
    if applied is not None:
        body["meta"] = {"applied_through_seq": applied}
    return JSONResponse(body)


def _object(params: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError("invalid_argument", f"`{key}` must be an object.")
    return value


async def _run_start(mine: UserServices, thread_id: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    assistant_id = params.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise ProtocolError("invalid_argument", "`assistant_id` is required.")
    body = LangGraphRunCreate(
        assistant_id=assistant_id,
        input=params.get("input"),
        config=_object(params, "config"),
        metadata=_object(params, "metadata"),
        langsmith_tracer=params.get("langsmith_tracer"),
        multitask_strategy=params.get("multitask_strategy"),
        stream_mode=RUN_MODES,
        stream_subgraphs=True,
        if_not_exists="create",
    )
    run, after = await start_run(mine, thread_id, body)
    return {"run_id": run.run_id}, await _applied(mine, run, after)


async def _input_respond(mine: UserServices, thread_id: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    entries = params.get("responses") if "responses" in params else [params]
    if not isinstance(entries, list) or not entries:
        raise ProtocolError("invalid_argument", "`responses` must be a non-empty list.")
    resume: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("interrupt_id"), str) or "response" not in entry:
            raise ProtocolError("invalid_argument", "Each response needs `interrupt_id` and `response`.")
        resume[entry["interrupt_id"]] = entry["response"]
    waiting = [r for r in await mine.runs.active_on(thread_id) if r.status == "waiting"]
    if not waiting:
        raise ProtocolError("no_such_interrupt", "No run of this thread waits for input.")
    command: dict[str, Any] = {"resume": resume}
    for key in ("update", "goto"):
        if params.get(key) is not None:
            command[key] = params[key]
    body = LangGraphRunCreate(
        assistant_id=waiting[0].agent,
        command=command,
        config=_object(params, "config"),
        metadata=_object(params, "metadata"),
        stream_mode=RUN_MODES,
        stream_subgraphs=True,
    )
    run, after = await start_run(mine, thread_id, body)
    return {}, await _applied(mine, run, after)


async def _state_get(mine: UserServices, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The thread's latest values (``keys``: only those) and their checkpoint; the root graph's only."""
    keys = params.get("keys")
    if params.get("namespace"):
        raise ProtocolError("not_supported", "`state.get` reads the root graph's state only (`namespace: []`).")
    if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
        raise ProtocolError("invalid_argument", "`keys` must be a list of strings.")
    values, snapshot = await mine.thread_views.states.latest(await mine.threads.get(thread_id))
    result: dict[str, Any] = {"values": {k: v for k, v in values.items() if keys is None or k in keys}}
    checkpoint_id = ((getattr(snapshot, "config", None) or {}).get("configurable") or {}).get("checkpoint_id")
    if checkpoint_id:
        result["checkpoint"] = {"id": checkpoint_id}
    return result


async def _applied(mine: UserServices, run: Run, after: int) -> int:
    """The seq just before the run's events after ``after`` (``protocol_events``)."""
    return seq_of(await mine.threads.run_ordinal(run), after + 1, 0) - 1
