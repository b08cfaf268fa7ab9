"""Long threads stay cheap: the prompt stops growing at a token budget, the checkpoint holds only the current run.

* ``ContextBudgetMiddleware``: each model call gets the newest messages that fit ``context_budget_tokens`` (counted
  offline, about four characters a token — ``tiktoken`` cannot download its encodings here), starting at a user
  message so a tool call is never separated from its result. With a ``Transcript``, those messages are the newest
  archived ones followed by the run's own (read once per run).
* ``TranscriptMiddleware`` (``archive_settled`` for graphs that are not ``create_agent``): at a run's first model
  call, moves every message before the run's user message out of the checkpoint into the transcript
  (``chatplane.storage.transcript``), so the checkpoint written at the end of the run holds that run's messages only.

Nothing is deleted: ``GET /v1/threads/{id}/messages`` returns the transcript, then the working state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.config import get_config
from langgraph.types import Command

from chatplane.agents.limits import answer_dangling_tool_calls
from chatplane.config import Settings
from chatplane.storage.transcript import Archived, Transcript

_SYSTEM_PROMPT_ALLOWANCE = 200


DEFAULT_CONTEXT_BUDGET_TOKENS = 8_000
"""The history a model call gets unless told otherwise, sized for cost rather than for the model's window.

Every turn pays for its whole prompt: with a budget as large as the window (100,000 tokens, the old default), a long
thread's every turn was billed 100k input tokens (about $0.25 at $2.50 a million) and carried ~1,500 messages
through chatplane, so throughput fell as threads grew. 8,000 tokens is the last ten to twenty exchanges of a chat
(32 KB of text) — what a conversation needs to stay coherent — for at most about $0.02 of history a turn, and a
prompt that stays flat once a thread is past it. Longer memory is a choice: ``CHATPLANE_CONTEXT_BUDGET_TOKENS``,
or an assistant's ``context_budget_tokens``. The thread itself keeps every message either way.
"""


def context_budget(settings: Settings) -> int:
    """The configured budget, else ``DEFAULT_CONTEXT_BUDGET_TOKENS`` — less when the embedded model's per-request
    context is smaller (a prompt it cannot hold would fail, not just cost more)."""
    if settings.context_budget_tokens:
        return settings.context_budget_tokens
    if settings.model.startswith("local:"):
        per_slot = settings.local_context_tokens // settings.local_parallel
        reply = settings.max_output_tokens or 512
        return min(DEFAULT_CONTEXT_BUDGET_TOKENS, max(256, per_slot - reply - _SYSTEM_PROMPT_ALLOWANCE))
    return DEFAULT_CONTEXT_BUDGET_TOKENS


def _thread_id() -> str | None:
    """The thread of the graph call in progress (LangGraph's ``thread_id``; None outside one, or when stateless)."""
    try:
        config = get_config()
    except RuntimeError:
        return None
    thread_id = (config.get("configurable") or {}).get("thread_id")
    return str(thread_id) if thread_id else None


def settled(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """What came before the latest user message: earlier turns, done with (the current run starts at that message)."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return list(messages[:index])
    return []


async def archive_settled(transcript: Transcript, messages: Sequence[AnyMessage]) -> dict[str, Any] | None:
    """Move the settled messages of the current thread into its transcript: the state update that removes them."""
    thread_id = _thread_id()
    old = settled(messages) if thread_id else []
    if not old:
        return None
    # A tool call an earlier run left unanswered gets its error answer on the way (providers refuse one without it).
    moved = answer_dangling_tool_calls(old) or old
    await transcript.append(thread_id, moved)  # type: ignore[arg-type]  # part of the run's turn, if one is open
    return {"messages": [RemoveMessage(id=str(m.id)) for m in old]}


class TranscriptMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """At a run's first model call, earlier turns leave the checkpoint for the transcript (``archive_settled``).

    It works inside the model node rather than in a ``before_agent`` node of its own: a graph step costs LangGraph
    a task, its callbacks, a stream update and a write, on every run. The removal of the archived messages from
    the state rides along with the model's answer (``ExtendedModelResponse``), applied by the state's reducer
    when the model node ends. Later model calls of the run find nothing to move. Place it outside
    ``ContextBudgetMiddleware`` (earlier in the list): the prompt is then fitted with the thread's tail as this
    append left it, which needs no read.
    """

    def __init__(self, transcript: Transcript) -> None:
        super().__init__()
        self.transcript = transcript

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        update = await archive_settled(self.transcript, request.state["messages"])
        if update is None:
            return await handler(request)
        moved = {message.id for message in update["messages"]}
        response = await handler(request.override(messages=[m for m in request.messages if m.id not in moved]))
        return ExtendedModelResponse(model_response=response, command=Command(update=update))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        return handler(request)  # graphs that keep a transcript run asynchronously (``RunManager``)


class ContextBudgetMiddleware(AgentMiddleware[Any, Any, Any]):
    _CACHED_RUNS = 256

    def __init__(self, max_tokens: int, transcript: Transcript | None = None) -> None:
        super().__init__()
        self.max_tokens = max_tokens
        self.transcript = transcript
        self._earlier: OrderedDict[str, list[Archived]] = OrderedDict()  # run id → its thread's archived tail

    async def _earlier_turns(self) -> list[Archived]:
        """The thread's newest archived messages (at least the budget's worth, when there are that many)."""
        thread_id = _thread_id()
        if self.transcript is None or thread_id is None:
            return []
        run_id = self.transcript.run_on(thread_id)
        earlier = self._earlier.get(run_id) if run_id else None
        if earlier is None:
            earlier = await self.transcript.tail(thread_id, self.max_tokens)
            if run_id:  # the transcript does not change during a run: read it once per run
                self._earlier[run_id] = earlier
                while len(self._earlier) > self._CACHED_RUNS:
                    self._earlier.popitem(last=False)
        return earlier

    def _fit(self, request: ModelRequest[Any], earlier: Sequence[Archived]) -> ModelRequest[Any]:
        """The newest messages (earlier turns, then the run's own) that fit the budget, from a user message on."""
        own = {m.id for m in request.messages}
        candidates = [*(e for e in earlier if e.message.id not in own)]
        candidates += [Archived(count_tokens_approximately([m]), m) for m in request.messages]
        total, start = 0, len(candidates)
        while start > 0 and total + candidates[start - 1].tokens <= self.max_tokens:
            start -= 1
            total += candidates[start].tokens
        if start == 0 and not earlier:
            return request  # everything fits, nothing was added
        while start < len(candidates) and not isinstance(candidates[start].message, HumanMessage):
            start += 1
        kept = [e.message for e in candidates[start:]]
        if not kept:  # one message larger than the budget: send the newest message alone rather than nothing
            kept = list(request.messages[-1:])
        return request.override(messages=kept)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        return await handler(self._fit(request, await self._earlier_turns()))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        return handler(self._fit(request, []))
