"""The thread protocol's commands that start or resume a run — ``run.start``, ``input.respond`` — and what the
other commands share with them: ``ProtocolError``, the ``Answer``, a run's body made from a command's params.
``protocol_commands`` lists the commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chatplane.core import UserServices
from chatplane.errors import ChatplaneError, InvalidInputError
from chatplane.service.langgraph.protocol_events import seq_of
from chatplane.service.langgraph.run_body import LangGraphRunCreate
from chatplane.service.langgraph.runs import start_run
from chatplane.storage.runs import Run

RUN_MODES = ["values", "updates", "messages-tuple", "custom"]


class ProtocolError(Exception):
    """A command refused with one of the protocol's codes (``invalid_argument``, ``no_such_interrupt`` …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def protocol_code(error: ProtocolError | ChatplaneError) -> str:
    """The code a refusal carries on either transport: the protocol's own, ``invalid_argument`` for bad input
    found by the API's checks, else the API's (``thread_not_found``, ``thread_busy``, ``rate_limited`` …)."""
    if isinstance(error, ProtocolError):
        return error.code
    return "invalid_argument" if isinstance(error, InvalidInputError) else error.code


@dataclass(frozen=True)
class Answer:
    """A command's ``result``, and ``meta.applied_through_seq`` for one that starts or resumes a run."""

    result: dict[str, Any]
    applied: int | None = None

    def frame(self, command_id: int) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "success", "id": command_id, "result": self.result}
        if self.applied is not None:
            body["meta"] = {"applied_through_seq": self.applied}
        return body


def object_param(params: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError("invalid_argument", f"`{key}` must be an object.")
    return value


def run_body(assistant_id: str, params: dict[str, Any], **fields: Any) -> LangGraphRunCreate:
    """A LangGraph run's body from a command's params; a field of the wrong type → ``invalid_argument``."""
    try:
        return LangGraphRunCreate(
            assistant_id=assistant_id,
            config=object_param(params, "config"),
            metadata=object_param(params, "metadata"),
            stream_mode=RUN_MODES,
            stream_subgraphs=True,
            **fields,
        )
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"]) if exc.errors() else "params"
        raise ProtocolError("invalid_argument", f"`{where}` has the wrong type.") from None


async def run_start(mine: UserServices, thread_id: str, params: dict[str, Any]) -> Answer:
    assistant_id = params.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise ProtocolError("invalid_argument", "`assistant_id` is required.")
    body = run_body(
        assistant_id,
        params,
        input=params.get("input"),
        langsmith_tracer=params.get("langsmith_tracer"),
        multitask_strategy=params.get("multitask_strategy"),
        if_not_exists="create",
    )
    run, after = await start_run(mine, thread_id, body)
    return Answer({"run_id": run.run_id}, await applied_through(mine, run, after))


async def input_respond(mine: UserServices, thread_id: str, params: dict[str, Any]) -> Answer:
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
    run, after = await start_run(mine, thread_id, run_body(waiting[0].agent, params, command=command))
    return Answer({}, await applied_through(mine, run, after))


async def applied_through(mine: UserServices, run: Run, after: int) -> int:
    """The seq just before the run's events after ``after`` (``protocol_events``)."""
    return seq_of(await mine.threads.run_ordinal(run), after + 1, 0) - 1
