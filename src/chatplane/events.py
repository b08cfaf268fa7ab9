"""What a run emits while it works, and how messages look on the wire. Shared by the service and the clients.

Every event of a run has an ``id`` that counts up from 1 without gaps, so a client that lost its connection asks
for "everything after N" (SSE ``Last-Event-ID``) and receives each event exactly once.

================  =================================================================================================
type              data
================  =================================================================================================
run_started       ``{"thread_id", "agent", "message"}`` — ``message``: the user's message (id, role, content)
token             ``{"text", "message_id", "agent"}`` — a piece of the answer as the model generates it
retract           ``{"message_id", "agent"}`` — the model attempt that streamed these tokens failed and is tried
                  again (retry or fallback model): drop the text of ``message_id`` shown so far; the retry's
                  tokens follow under a new ``message_id``
message           ``{"message": Message}`` — a complete message (assistant answer, tool result …)
tool_call         ``{"id", "name", "args", "agent"}`` — the agent asked for a tool
tool_result       ``{"tool_call_id", "name", "content", "status"}``
handoff           ``{"from", "to"}`` — another agent took over (multi-agent)
interrupt         ``{"requests": [...]}`` — the run waits for a human decision (status ``waiting``)
run_resumed       ``{"decisions": [...]}`` — a human decided; the run goes on
run_completed     ``{"status": "succeeded", "usage"}``
run_failed        ``{"status": "failed", "error": {"code", "message"}}``
run_cancelled     ``{"status": "cancelled"}``
values …          ``{"namespace": [...], "data": ...}`` — a LangGraph stream mode the run was asked for
                  (``values``, ``updates``, ``messages``, ``custom``, ``debug``, ``tasks``, ``checkpoints``),
                  as LangGraph streams it; ``namespace``: the subgraph it comes from (``[]`` for the graph)
================  =================================================================================================
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

EventType = Literal[
    "run_started",
    "token",
    "retract",
    "message",
    "tool_call",
    "tool_result",
    "handoff",
    "interrupt",
    "run_resumed",
    "run_completed",
    "run_failed",
    "run_cancelled",
    "values",
    "updates",
    "messages",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
    "events",
]
StreamMode = Literal["values", "updates", "messages", "custom", "debug", "tasks", "checkpoints", "events"]
"""LangGraph's stream modes a run can be asked for (each part becomes an event of that type). ``events`` is
LangChain's callback events (``astream_events`` v2: every model, tool and chain start, stream and end), as
langgraph-api streams them for that mode."""
STREAM_MODES: tuple[StreamMode, ...] = get_args(StreamMode)

TERMINAL_EVENTS = frozenset({"run_completed", "run_failed", "run_cancelled"})
"""After one of these a run emits nothing more."""
PAUSE_EVENTS = frozenset({"interrupt"})
"""A stream ends here too; it goes on (new ids) once the run is resumed."""

ATTEMPT_FAILED = {"chatplane": "model_attempt_failed"}
"""What a failed model attempt writes to LangGraph's ``custom`` stream (``ModelAttemptMiddleware``), in order with
its tokens, so the run's translator can retract what the attempt streamed. Never passed on to clients."""


class Retraction(str):
    """A piece of a streamed answer's text that is none (``""``): the last ``dropped`` characters streamed are
    void — the model attempt that wrote them failed and is being tried again. ``ProductionAgent.astream_chat``
    yields it on a ``retract`` event: code that joins the pieces is unchanged by it, code that honours it drops
    those characters (the retry's text follows)."""

    dropped: int

    def __new__(cls, dropped: int) -> Retraction:
        piece = super().__new__(cls, "")
        piece.dropped = dropped
        return piece


class RunEvent(BaseModel):
    id: int = Field(
        description="Position in the run's event sequence, from 1, without gaps; 0: the run's outcome read from its "
        "record by a process that no longer has its events."
    )
    type: EventType
    run_id: str
    data: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    id: str | None = None
    role: Literal["user", "assistant", "tool", "system"]
    content: str
    name: str | None = Field(None, description="Which agent (or tool) said it.")
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_call_id: str | None = None
    created_at: float | None = None
    status: str | None = Field(None, description="`cancelled` for an answer cut short by a cancel; tool errors.")
