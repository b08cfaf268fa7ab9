"""What a log line is about: the request id, the user, the thread and the run — in context variables.

The HTTP middleware binds the request (its id, and its ASGI scope, from which the user — once authenticated — and
the thread / run of the path are read when a line is written); the run hooks and the run observer bind the run for
the rest of the task that executes it. Tasks started meanwhile inherit both, as ``asyncio`` copies the context.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunContext:
    run_id: str
    thread_id: str
    user: str


_request_id: ContextVar[str | None] = ContextVar("chatplane_request_id", default=None)
_scope: ContextVar[Mapping[str, Any] | None] = ContextVar("chatplane_request_scope", default=None)
_run: ContextVar[RunContext | None] = ContextVar("chatplane_run", default=None)

RequestTokens = tuple[Token[str | None], Token[Mapping[str, Any] | None]]


def bind_request(request_id: str, scope: MutableMapping[str, Any]) -> RequestTokens:
    """The current request; undo with ``unbind_request`` when it is answered."""
    return _request_id.set(request_id), _scope.set(scope)


def unbind_request(tokens: RequestTokens) -> None:
    _request_id.reset(tokens[0])
    _scope.reset(tokens[1])


def bind_run(run_id: str, thread_id: str, user: str) -> None:
    """The run the current task executes (until the task ends; a run's task executes only that run)."""
    current = _run.get()
    if current is None or current.run_id != run_id:
        _run.set(RunContext(run_id, thread_id, user))


def current() -> dict[str, str]:
    """The context fields of a log line written now (only those that are known)."""
    fields: dict[str, str] = {}
    rid = _request_id.get()
    if rid:
        fields["request_id"] = rid
    run = _run.get()
    if run is not None:
        fields["user"] = run.user
        if run.thread_id:
            fields["thread_id"] = run.thread_id
        fields["run_id"] = run.run_id
        return fields
    scope = _scope.get()
    if scope is not None:
        user = (scope.get("state") or {}).get("user")
        user_id = getattr(user, "id", None)
        if isinstance(user_id, str):
            fields["user"] = user_id
        params = scope.get("path_params") or {}
        for key in ("thread_id", "run_id"):
            value = params.get(key)
            if isinstance(value, str):
                fields[key] = value
    return fields
