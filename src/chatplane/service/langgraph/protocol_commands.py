"""The thread protocol's commands, whichever transport brings them: ``POST /threads/{thread_id}/commands``
(``thread_protocol``) and the WebSocket (``protocol_ws``) parse a command with ``parse`` and run it with
``execute``; each shapes the answer its own way.

==========================  ===================================================================================
``run.start``               a run of ``assistant_id`` on the thread (created if it does not exist), as a LangGraph
                            run with stream modes values, updates, messages-tuple and custom, subgraphs included;
                            ``multitask_strategy`` (the JS client's), by default ``reject``: the thread busy → 409.
                            ``{"run_id"}``
``input.respond``           resumes the run the thread waits on: ``Command(resume={interrupt_id: response, …},
                            update, goto)`` — the same run goes on. ``{}``; no run waiting → ``no_such_interrupt``
``state.*``                 ``state.get`` (the latest values), ``state.listCheckpoints`` (the history),
                            ``state.fork`` (a run from a checkpoint): ``protocol_state``
others                      ``subscription.*`` (the WebSocket answers them itself: ``protocol_ws``),
                            ``agent.getTree``, ``input.inject``: ``not_supported``; an unknown method:
                            ``unknown_command``
==========================  ===================================================================================

``run.start``, ``input.respond`` and ``state.fork`` start (or resume) a run: the caller's run limits are checked
first, as for any run; the other commands are reads. A refusal is a ``ProtocolError`` (the protocol's own codes) or
the run services' ``ChatplaneError`` (404 for a thread that is not the caller's — the same as a missing one —, 409
busy, 429 limits). A value sent is never quoted back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chatplane.core import UserServices
from chatplane.service.auth import User
from chatplane.service.langgraph import protocol_state
from chatplane.service.langgraph.protocol_runs import (
    RUN_MODES,
    Answer,
    ProtocolError,
    input_respond,
    protocol_code,
    run_start,
)
from chatplane.service.ratelimit import RateLimits

__all__ = ["RUN_MODES", "Answer", "Caller", "ProtocolError", "execute", "parse", "protocol_code"]

NOT_SUPPORTED = {"subscription.subscribe", "subscription.unsubscribe", "subscription.reconnect", "agent.getTree"} | {
    "input.inject"
}
_KNOWN = "run.start, input.respond, state.get, state.listCheckpoints, state.fork"
_STARTS_A_RUN = {"run.start", "input.respond", "state.fork"}


@dataclass(frozen=True)
class Caller:
    """Who sends the command: their services, and the limits a run of theirs is checked against."""

    mine: UserServices
    user: User
    limits: RateLimits


def parse(raw: str | bytes) -> tuple[int, str, dict[str, Any]]:
    """``{"id", "method", "params"}`` → its parts, or a ``ProtocolError`` (``invalid_argument``)."""
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


async def execute(caller: Caller, thread_id: str, method: str, params: dict[str, Any]) -> Answer:
    """Run one command on the caller's thread (see the module)."""
    if method in _STARTS_A_RUN:
        await caller.limits.check_new_run(caller.user)
    mine = caller.mine
    if method == "run.start":
        return await run_start(mine, thread_id, params)
    if method == "input.respond":
        return await input_respond(mine, thread_id, params)
    if method == "state.get":
        return await protocol_state.state_get(mine, thread_id, params)
    if method == "state.listCheckpoints":
        return await protocol_state.list_checkpoints(mine, thread_id, params)
    if method == "state.fork":
        return await protocol_state.fork(mine, thread_id, params)
    if method in NOT_SUPPORTED:
        raise ProtocolError("not_supported", f"`{method}` is not supported here.")
    raise ProtocolError("unknown_command", f"Unknown command; the commands are {_KNOWN}.")
