"""Request and response bodies, shared by the service and the Python client (pydantic only: no server imports)."""

from __future__ import annotations

import datetime
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatplane.events import Message as Message
from chatplane.events import RunEvent as RunEvent
from chatplane.events import StreamMode

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
"""What user and session ids may look like: printable, no spaces or control characters, at most 128 long."""


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code.", examples=["session_not_found"])
    message: str = Field(description="Human-readable explanation, safe to show.", examples=["No such session."])


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(pattern=ID_PATTERN, description="Who is talking.", examples=["alice"])
    message: str = Field(min_length=1, description="The user's message.", examples=["What is LangGraph?"])
    session_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="Conversation to continue; default `session-<user_id>`. Sessions are private to their owner.",
        examples=["trip-planning"],
    )
    agent: AgentName | None = Field(
        None, description="Agent of a new session (default: the server's); an existing session keeps its own."
    )


class ChatResponse(BaseModel):
    response: str = Field(description="The agent's answer.")
    session_id: str = Field(description="The session the message went to.")


class HistoryResponse(BaseModel):
    session_id: str
    messages: list[str] = Field(description="Message texts, oldest first (user and agent alternating).")


class ResetResponse(BaseModel):
    message: str = Field(examples=["Session reset"])


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool] = Field(description="Each dependency and whether it answered.")


AgentName = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        description="A graph id (`chat`, `react`, `multi`, or a project's; its default assistant) or an "
        "assistant's id. GET /agents lists them.",
        examples=["chat"],
    ),
]


# --- threads and runs (/v1) ---------------------------------------------------------------------------------------
Multitask = Literal["reject", "enqueue", "interrupt"]
Metadata = Annotated[dict[str, Any], Field(description="Your own key/values (at most 16 KB as JSON).")]


def _small_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value)) > 16_384:
        raise ValueError("metadata is larger than 16 KB")
    return value


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: AgentName | None = Field(
        None, description="Agent kind (see GET /agents); default the server's.", examples=["chat"]
    )
    title: str | None = Field(None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)
    ttl_days: float | None = Field(
        None,
        gt=0,
        le=36500,
        strict=True,  # a number, as the schema says: not true (lax mode would take it for 1)
        description="Delete the thread (messages, runs) this many days after its creation; default: kept until "
        "the server's retention (CHATPLANE_RETENTION_DAYS of inactivity) or your DELETE.",
        examples=[30],
    )
    model: str | None = Field(
        None,
        max_length=200,
        description="A model id from the server's CHATPLANE_MODEL_ALLOWLIST; default (and otherwise refused): the "
        "server's model.",
    )

    _check_metadata = field_validator("metadata")(_small_metadata)


class ThreadPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=200)
    metadata: Metadata | None = None

    _check_metadata = field_validator("metadata")(_small_metadata)


class ThreadOut(BaseModel):
    thread_id: str
    agent: str
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = Field(None, description="Set for threads created through the seed's /chat.")
    created_at: float
    updated_at: float
    expires_at: float | None = Field(None, description="When the thread will be deleted (from `ttl_days`).")
    model: str | None = Field(None, description="The model chosen at creation; null: the server's model.")


class ThreadList(BaseModel):
    threads: list[ThreadOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next (older) page.")


class MessageList(BaseModel):
    messages: list[Message]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next (newer) page.")


class RunCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resume: Any = Field(None, description="What the paused `interrupt(...)` returns; a waiting run takes it.")
    update: dict[str, Any] | None = Field(None, description="A state update, applied before the graph goes on.")
    goto: str | list[str] | None = Field(None, description="The node(s) to go to next.")


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(
        None,
        min_length=1,
        description="A user message: the shorthand for a graph whose state has `messages`. A run with none of "
        "`message`, `input`, `command` goes on from the thread's checkpoint (after a breakpoint).",
    )
    input: dict[str, Any] | None = Field(None, description="The graph's input (GET /agents has its JSON schema).")
    command: RunCommand | None = Field(None, description="Resume a paused run, update the state, or go to a node.")
    context: dict[str, Any] | None = Field(
        None, description="The graph's run context (its context schema), over the assistant's."
    )
    config: dict[str, Any] | None = Field(
        None,
        description="LangGraph config: `configurable`, `tags`, `metadata`, `recursion_limit` (the server's keys — "
        "thread, checkpoint, run, graph, assistant, user — cannot be set).",
    )
    stream_mode: list[StreamMode] = Field(
        default_factory=list,
        max_length=7,
        description="LangGraph stream modes to pass on as events of that name, besides chatplane's own.",
    )
    stream_subgraphs: bool = Field(False, description="Stream the parts of subgraphs too (with their namespace).")
    interrupt_before: Literal["*"] | list[str] | None = Field(
        None, description="Static breakpoints: stop before these nodes (`*`: every node); a run with no input goes on."
    )
    interrupt_after: Literal["*"] | list[str] | None = Field(None, description="Stop after these nodes.")
    durability: Literal["exit", "async", "sync"] | None = Field(
        None,
        description="When the run's checkpoints are written: `exit` (once, with its outcome), `async` / `sync` (each "
        "step); default: the graph's (the built-in agents: CHATPLANE_CHECKPOINT_DURABILITY; a project's: `async`).",
    )
    assistant_id: AgentName | None = Field(
        None,
        description="The assistant (or graph) to run: the thread's (409 if it talks to another); a thread with no "
        "run yet takes it.",
    )
    multitask: Multitask = Field(
        "reject",
        description="If the thread is busy: `reject` (409), `enqueue` (run after), `interrupt` (cancel the active).",
    )
    background: bool = Field(False, description="Answer 202 at once instead of waiting for the run to finish.")
    webhook: str | None = Field(
        None,
        max_length=2048,
        description="A URL told the run's outcome when it ends: a signed POST, retried (see docs/security.md).",
    )


class RunError(BaseModel):
    code: str
    message: str


class RunOut(BaseModel):
    run_id: str
    thread_id: str
    agent: str
    status: Literal["pending", "running", "waiting", "succeeded", "failed", "cancelled"]
    multitask: Multitask
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    usage: dict[str, int] = Field(
        default_factory=dict, description="Tokens: input_tokens, output_tokens, total_tokens."
    )
    error: RunError | None = None
    output: Message | None = Field(None, description="The answer, when the request waited for the run.")
    values: dict[str, Any] | None = Field(
        None, description="The thread's state once the run ended, when the request waited for a graph without messages."
    )


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["approve", "edit", "reject"]
    edited_action: dict[str, Any] | None = Field(None, description='For `edit`: {"name": tool, "args": {...}}.')
    message: str | None = Field(None, description="For `reject`: why, told to the model.")


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: list[Decision] | None = Field(
        None, min_length=1, description="Tool approval: one decision per pending tool call, in order."
    )
    resume: Any = Field(None, description="For a graph's own `interrupt(...)`: the value it returns.")


class ThreadState(BaseModel):
    values: dict[str, Any] = Field(description="The thread's latest state, as JSON.")
    next: list[str] = Field(default_factory=list, description="The nodes that run next (a paused run's).")
    interrupts: list[dict[str, Any]] = Field(default_factory=list, description="What the paused run waits for.")
    checkpoint_id: str | None = None
    created_at: str | None = None


class AgentInfo(BaseModel):
    name: str = Field(description="What a thread or run names to use it: a graph id, or an assistant's id.")
    description: str
    graph_id: str = Field(description="The graph it runs.")
    assistant_id: str = Field(description="Its assistant (a graph's default assistant for a graph).")
    kind: Literal["agent", "graph"] = Field(
        description="`agent`: a chatplane agent kind, configured by its assistant's context (model, system prompt, "
        "tools …); `graph`: a LangGraph graph run as it was written."
    )
    messages: bool = Field(description="Its state keeps `messages`: it takes `message`, and has a chat history.")
    input_schema: dict[str, Any] | None = Field(None, description="JSON schema of a run's `input`.")
    context_schema: dict[str, Any] | None = Field(
        None, description="JSON schema of `context` (a run's for a graph; an assistant's for an agent kind)."
    )


class AgentList(BaseModel):
    agents: list[AgentInfo]
    tools: list[str] = Field(default_factory=list, description="Tools an agent kind's assistant may choose.")


# --- usage (/v1/usage) --------------------------------------------------------------------------------------------
class UsageTotals(BaseModel):
    runs: int = Field(0, description="Runs started.")
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = Field(
        None,
        description="Estimate from the server's price table (CHATPLANE_PRICES), in its currency; null when no "
        "price is known for any of the models involved.",
    )


class ModelUsage(UsageTotals):
    model: str = Field(description="The model the runs were configured with (`provider:model`).")


class DayUsage(UsageTotals):
    date: datetime.date = Field(description="A day (UTC).")
    models: list[ModelUsage] = Field(default_factory=list)


class UsageReport(BaseModel):
    user: str
    since: datetime.date = Field(description="First day counted (UTC).")
    until: datetime.date = Field(description="Last day counted (UTC), inclusive.")
    thread_id: str | None = Field(None, description="Set when the report is for one thread.")
    total: UsageTotals
    by_model: list[ModelUsage]
    by_day: list[DayUsage] = Field(description="Days with usage, oldest first.")
    unpriced_models: list[str] = Field(
        default_factory=list, description="Models without a price: their tokens are not in any cost."
    )
