"""A LangGraph run request (``RunCreate`` in ``langgraph-sdk``) and a chatplane run as LangGraph's ``Run``.

Every field the SDK sends is either taken or refused with a 422 naming it — never silently dropped:

==========================  ==================================================================================
taken                       ``assistant_id``, ``input``, ``command``, ``config``, ``context``, ``metadata``,
                            ``stream_mode``, ``stream_subgraphs``, ``stream_resumable`` (every run's stream is),
                            ``multitask_strategy`` (reject, enqueue, interrupt, rollback), ``if_not_exists``,
                            ``on_disconnect``, ``on_completion`` (stateless runs), ``after_seconds`` (the
                            run is ``pending`` until then; stored), ``strict_resume: false``,
                            ``interrupt_before`` / ``interrupt_after`` (static
                            breakpoints; ``input: null`` goes on), ``durability``, ``webhook`` (the run's
                            outcome POSTed there when it ends, ``chatplane.webhooks``),
                            ``checkpoint`` / ``checkpoint_id`` on a thread's run: a branch point of its history
                            (``turn.N``; ``branch_states``)
refused (422)               ``checkpoint`` / ``checkpoint_id`` of a stateless run, ``checkpoint_during``,
                            ``after_seconds`` with a ``checkpoint``, ``feedback_keys``,
                            ``langsmith_tracer``, ``strict_resume: true``; any other field
==========================  ==================================================================================
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from chatplane.agents.catalog import default_assistant_id
from chatplane.agents.registry import Durability
from chatplane.core.run_input import RunInput
from chatplane.errors import InvalidInputError
from chatplane.service.langgraph.stream import chatplane_modes, stream_modes
from chatplane.storage.runs import Multitask, Run

_REFUSED = {
    "checkpoint": "a stateless run has no earlier checkpoint",
    "checkpoint_id": "a stateless run has no earlier checkpoint",
    "checkpoint_during": "a graph's durability is set in its project file",
    "feedback_keys": "LangSmith feedback is not supported",
    "langsmith_tracer": "LangSmith tracing is set by the server",
}
_MAX_DELAY_S = 366 * 24 * 3600
_STATUS = {
    "pending": "pending",
    "running": "running",
    "waiting": "interrupted",
    "succeeded": "success",
    "failed": "error",
    "cancelled": "interrupted",
}


class LangGraphRunCreate(BaseModel):
    """What ``client.runs.create`` / ``stream`` / ``wait`` send (``None`` fields are left out by the SDK)."""

    model_config = ConfigDict(extra="forbid")

    assistant_id: str
    input: Any = None
    command: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    multitask_strategy: str | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: float | None = None
    strict_resume: bool | None = None
    interrupt_before: Any = None
    interrupt_after: Any = None
    checkpoint: Any = None
    checkpoint_id: Any = None
    checkpoint_during: Any = None
    durability: Any = None
    webhook: str | None = None
    feedback_keys: Any = None
    langsmith_tracer: Any = None

    def refuse_unsupported(self, *, from_checkpoint: bool = False) -> None:
        """A 422 naming the first field set that chatplane does not do (``from_checkpoint``: a thread's run, which
        may start from a branch point)."""
        for name, why in _REFUSED.items():
            if from_checkpoint and name in ("checkpoint", "checkpoint_id"):
                continue
            if getattr(self, name) is not None:
                raise InvalidInputError(f"`{name}` is not supported: {why}.")
        if self.after_seconds is not None and not 0 <= self.after_seconds <= _MAX_DELAY_S:
            raise InvalidInputError(f"`after_seconds` must be between 0 and {_MAX_DELAY_S}.")
        if self.after_seconds and from_checkpoint and (self.checkpoint or self.checkpoint_id):
            raise InvalidInputError("`after_seconds` is not supported with a `checkpoint`: that run starts now.")
        if self.strict_resume:
            raise InvalidInputError("`strict_resume` is not supported.")

    def multitask(self) -> Multitask:
        strategy = self.multitask_strategy or "reject"
        if strategy not in ("reject", "enqueue", "interrupt", "rollback"):
            raise InvalidInputError("`multitask_strategy` must be reject, enqueue, interrupt or rollback.")
        return strategy  # type: ignore[return-value]

    def modes(self) -> tuple[str, ...]:
        return stream_modes(self.stream_mode)

    def run_input(self, *, from_checkpoint: bool = False) -> RunInput:
        """What the core checks against the thread's graph (a 422 naming the field)."""
        self.refuse_unsupported(from_checkpoint=from_checkpoint)
        if self.input is not None and not isinstance(self.input, dict):
            raise InvalidInputError("`input` must be an object of the graph's input keys.")
        return RunInput(
            input=self.input,
            command=self.command,
            context=self.context,
            config=self.config,
            metadata=self.metadata,
            stream_mode=chatplane_modes(self.modes()),
            stream_subgraphs=self.stream_subgraphs,
            interrupt_before=breakpoints(self.interrupt_before, "interrupt_before"),
            interrupt_after=breakpoints(self.interrupt_after, "interrupt_after"),
            durability=_durability(self.durability),
        )


def breakpoints(nodes: Any, field: str) -> tuple[str, ...] | Literal["*"]:
    if nodes is None:
        return ()
    if nodes == "*":
        return "*"
    if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
        raise InvalidInputError(f'`{field}` must be "*" or a list of node names.')
    return tuple(nodes)


def _durability(value: Any) -> Durability | None:
    if value is None or value in ("exit", "async", "sync"):
        return value  # type: ignore[no-any-return]
    raise InvalidInputError("`durability` must be `exit`, `async` or `sync`.")


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp is not None else None


def assistant_id_of(agent: str, graph_ids: Any) -> str:
    """A thread's or run's ``agent`` as an assistant id (a graph id names its default assistant)."""
    return default_assistant_id(agent) if agent in graph_ids else agent


def run_shape(run: Run, graph_ids: Any) -> dict[str, Any]:
    """LangGraph's ``Run``: statuses pending / running / success / error / interrupted (a paused or cancelled
    run, as LangGraph reports both). A delayed run's ``created_at`` is when it may start, as LangGraph's is."""
    created = run.not_before or run.created_at
    updated = run.finished_at or run.started_at or run.created_at
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": assistant_id_of(run.agent, graph_ids),
        "created_at": _iso(created),
        "updated_at": _iso(updated),
        "status": _STATUS[run.status],
        "metadata": run.input.get("metadata") or {},
        "multitask_strategy": run.multitask,
        "kwargs": {k: run.input[k] for k in ("input", "command", "config", "context") if k in run.input},
    }


def langgraph_status(status: str) -> str:
    return _STATUS[status]
