"""Run limits that end a run cleanly: the thread stays usable, and the caller gets ``RunLimitError``.

LangChain's ``ModelCallLimitMiddleware`` / ``ToolCallLimitMiddleware`` can either raise at once — which, for tool
calls, leaves an ``AIMessage`` whose tool calls never get answers, and the next model call on that thread fails —
or jump to the end of the run with consistent messages and no error. We use the clean jump, mark the closing
message, and raise ``RunLimitError`` from ``RunBudget.after_agent`` once those messages are saved.

LangGraph's recursion limit (``recursion_limit`` in the run config) is enforced by the graph loop, not by
middleware, and ``GraphRecursionError`` can strike between a model call and its tools. So ``RunBudget``
also reads LangGraph's ``RemainingSteps`` before each model call and ends the run cleanly while there are still
enough steps to finish; ``ThreadRepairMiddleware`` answers any tool call a run left unanswered (a recursion error
that still happened, a crash, a cancel) at the start of the next run; and ``translate_run_limits`` turns the
error into ``RunLimitError`` for callers that meet it anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelCallLimitMiddleware,
    ToolCallLimitMiddleware,
    hook_config,
)
from langchain.agents.middleware.model_call_limit import ModelCallLimitExceededError, ModelCallLimitState
from langchain.agents.middleware.tool_call_limit import ToolCallLimitExceededError, ToolCallLimitState
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.messages import AIMessage, AnyMessage, RemoveMessage, ToolMessage
from langgraph.errors import GraphRecursionError
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.managed.is_last_step import RemainingStepsManager
from langgraph.runtime import Runtime

from chatplane.agents.middleware import overrides
from chatplane.errors import RunLimitError

STOP_KEY = "chatplane_run_limit"
"""``response_metadata`` key of the message that closes a run cut short by a limit (value: which limit)."""

UNANSWERED_TOOL_CALL = "Not run: the previous turn was stopped before this tool call could run."


def limit_message(limit: str, detail: str) -> AIMessage:
    """The message that closes a run stopped by ``limit`` (what the thread's history shows)."""
    return AIMessage(content=f"I stopped here: {detail}", response_metadata={STOP_KEY: limit})


def _mark(update: dict[str, Any] | None, limit: str, detail: str) -> dict[str, Any] | None:
    """Replace the library's closing ``AIMessage`` in ``update`` by our marked one (tool messages are kept)."""
    if not update or not update.get("messages"):
        return update
    messages = [m for m in update["messages"] if not isinstance(m, AIMessage)]
    return {**update, "messages": [*messages, limit_message(limit, detail)]}


class ModelCallBudget(ModelCallLimitMiddleware[Any]):
    """``ModelCallLimitMiddleware`` (per run, ``exit_behavior="end"``) whose closing message is marked; a part of
    ``RunBudget``, which runs its hooks."""

    def __init__(self, run_limit: int) -> None:
        super().__init__(run_limit=run_limit, exit_behavior="end")

    def before_model(self, state: ModelCallLimitState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        detail = f"answering needed more than {self.run_limit} model calls, the limit for one message."
        return _mark(super().before_model(state, runtime), "model_calls", detail)


class ToolCallBudget(ToolCallLimitMiddleware[Any]):
    """``ToolCallLimitMiddleware`` (per run, ``exit_behavior="end"``) whose closing message is marked; a part of
    ``RunBudget``, which runs its hooks."""

    def __init__(self, run_limit: int) -> None:
        super().__init__(run_limit=run_limit, exit_behavior="end")

    def after_model(self, state: ToolCallLimitState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        update = super().after_model(state, runtime)
        if not update or update.get("jump_to") != "end":
            return update
        detail = f"answering needed more than {self.run_limit} tool calls, the limit for one message."
        return _mark(update, "tool_calls", detail)


class RunBudgetState(ModelCallLimitState, ToolCallLimitState):
    # LangGraph recognises a managed value only as the last annotation.
    remaining_steps: NotRequired[Annotated[int, PrivateStateAttr, RemainingStepsManager]]


class RunBudget(AgentMiddleware[RunBudgetState, Any, Any]):
    """A run's budgets as one middleware — ``ModelCallBudget``, ``ToolCallBudget`` and LangGraph's step limit — so
    one ``before_model`` and one ``after_model`` node per model call, not one per budget; ``RunLimitError`` is
    raised after a run a budget closed.

    ``create_agent`` makes every hook a graph node, and every node a LangGraph step with its task, callbacks, stream
    update and writes: a ReAct turn with one tool call ran nine hook steps, a third of its CPU, when each budget was
    a middleware of its own. Before a model call: the model-call budget, then the steps left; after it: the model
    call is counted and the tool budget checked. ``reserve_steps`` is how many graph steps one more model-and-tools
    round plus the run's exit need (see ``steps_needed``); the run stops before a model call that would leave fewer.
    """

    state_schema = RunBudgetState

    def __init__(self, max_model_calls: int, max_tool_calls: int, reserve_steps: int = 0) -> None:
        super().__init__()
        self.model_calls = ModelCallBudget(max_model_calls)
        self.tool_calls = ToolCallBudget(max_tool_calls)
        self.reserve_steps = reserve_steps

    def _steps_left(self, state: RunBudgetState) -> dict[str, Any] | None:
        remaining = state.get("remaining_steps")
        if remaining is None or remaining > self.reserve_steps:
            return None
        detail = "answering needed more steps than allowed for one message."
        return {"jump_to": "end", "messages": [limit_message("steps", detail)]}

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: RunBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self.model_calls.before_model(state, runtime) or self._steps_left(state)

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: RunBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self.before_model(state, runtime)

    @hook_config(can_jump_to=["end"])
    def after_model(self, state: RunBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        update = {**(self.model_calls.after_model(state, runtime) or {})}
        update.update(self.tool_calls.after_model(state, runtime) or {})
        return update or None

    @hook_config(can_jump_to=["end"])
    async def aafter_model(self, state: RunBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self.after_model(state, runtime)

    def after_agent(self, state: RunBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        messages = state.get("messages") or []
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and last.response_metadata.get(STOP_KEY):
            raise RunLimitError()
        return None

    async def aafter_agent(self, state: RunBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self.after_agent(state, runtime)


def steps_needed(middleware: Sequence[AgentMiddleware[Any, Any, Any]]) -> int:
    """Graph steps for one more model-and-tools round of a ``create_agent`` graph with ``middleware``, then its exit.

    ``create_agent`` makes every ``before_model`` / ``after_model`` / ``after_agent`` hook a node of its own, and
    each node is one LangGraph step: the round is the ``before_model`` nodes, the model, the ``after_model`` nodes
    and the tools; the exit is the ``after_agent`` nodes; one more step is kept as a margin.
    """
    before = sum(overrides(m, "before_model") for m in middleware)
    after = sum(overrides(m, "after_model") for m in middleware)
    exit_ = sum(overrides(m, "after_agent") for m in middleware)
    return before + 1 + after + 1 + exit_ + 1


def answer_dangling_tool_calls(messages: Sequence[AnyMessage]) -> list[AnyMessage] | None:
    """``messages`` with an error ``ToolMessage`` after every tool call left unanswered, or ``None`` if none was."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    out: list[AnyMessage] = []
    pending: list[ToolMessage] = []
    changed = False
    for message in messages:
        if pending and not isinstance(message, ToolMessage):
            out.extend(pending)
            pending = []
        out.append(message)
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                call_id = call.get("id")
                if call_id and call_id not in answered:
                    pending.append(  # an id of its own, the same each time: archived once (storage.transcript)
                        ToolMessage(
                            UNANSWERED_TOOL_CALL,
                            id=f"unanswered-{call_id}",
                            tool_call_id=call_id,
                            name=call["name"],
                            status="error",
                        )
                    )
                    answered.add(call_id)
                    changed = True
    out.extend(pending)
    return out if changed else None


class ThreadRepairMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """At the start of a run, answers tool calls an earlier run left unanswered, right where they were made.

    Providers reject a conversation in which an assistant's tool call has no tool result, so one interrupted run
    would otherwise break every later message of the thread.
    """

    def before_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        repaired = answer_dangling_tool_calls(state["messages"])
        if repaired is None:
            return None
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *repaired]}

    async def abefore_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self.before_agent(state, runtime)


def as_run_limit_error(exc: BaseException) -> RunLimitError | None:
    """``RunLimitError`` for the errors that mean "the run needed more than allowed", else ``None``."""
    if isinstance(exc, RunLimitError):
        return exc
    if isinstance(exc, GraphRecursionError | ModelCallLimitExceededError | ToolCallLimitExceededError):
        error = RunLimitError()
        error.__cause__ = exc
        return error
    return None


@contextmanager
def translate_run_limits() -> Iterator[None]:
    """Around ``graph.ainvoke`` / ``astream``: LangGraph's recursion limit (and raising limits) → ``RunLimitError``."""
    try:
        yield
    except Exception as exc:
        error = as_run_limit_error(exc)
        if error is None or error is exc:
            raise
        raise error from exc
