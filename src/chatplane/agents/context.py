"""Long threads stay cheap: the prompt stops growing at a token budget, the checkpoint holds only the current run.

* ``ContextBudgetMiddleware``: each model call gets the newest messages that fit ``context_budget_tokens`` (counted
  offline, about four characters a token — ``tiktoken`` cannot download its encodings here), starting at a user
  message so a tool call is never separated from its result. With a ``Transcript``, those messages are the newest
  archived ones followed by the run's own (read once per run).
* ``TranscriptMiddleware`` (``archive_settled`` for graphs that are not ``create_agent``): at the start of a run,
  moves every message before the run's user message out of the checkpoint into the transcript
  (``chatplane.transcript``), so the checkpoint written at the end of the run holds that run's messages only.

Nothing is deleted: ``GET /v1/threads/{id}/messages`` returns the transcript, then the working state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages
from langgraph.config import get_config
from langgraph.runtime import Runtime

from chatplane.agents.limits import answer_dangling_tool_calls
from chatplane.config import Settings
from chatplane.transcript import Transcript

_SYSTEM_PROMPT_ALLOWANCE = 200


def context_budget(settings: Settings) -> int:
    """The configured budget, or one that fits the embedded model's per-request context."""
    if settings.context_budget_tokens:
        return settings.context_budget_tokens
    if settings.model.startswith("local:"):
        per_slot = settings.local_context_tokens // settings.local_parallel
        reply = settings.max_output_tokens or 512
        return max(256, per_slot - reply - _SYSTEM_PROMPT_ALLOWANCE)
    return 100_000


def _thread_and_run() -> tuple[str | None, str | None]:
    """The thread and run of the graph call in progress (``None`` outside one, or for a stateless call)."""
    try:
        config = get_config()
    except RuntimeError:
        return None, None
    thread_id = (config.get("configurable") or {}).get("thread_id")
    run_id = (config.get("metadata") or {}).get("run_id")
    return (str(thread_id) if thread_id else None), (str(run_id) if run_id else None)


def settled(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """What came before the latest user message: earlier turns, done with (the current run starts at that message)."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return list(messages[:index])
    return []


async def archive_settled(transcript: Transcript, messages: Sequence[AnyMessage]) -> dict[str, Any] | None:
    """Move the settled messages of the current thread into its transcript: the state update that removes them."""
    thread_id, _ = _thread_and_run()
    old = settled(messages) if thread_id else []
    if not old:
        return None
    # A tool call an earlier run left unanswered gets its error answer on the way (providers refuse one without it).
    await transcript.append(thread_id, answer_dangling_tool_calls(old) or old)  # type: ignore[arg-type]
    return {"messages": [RemoveMessage(id=str(m.id)) for m in old]}


class TranscriptMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """At the start of each run, earlier turns leave the checkpoint for the transcript (``archive_settled``)."""

    def __init__(self, transcript: Transcript) -> None:
        super().__init__()
        self.transcript = transcript

    async def abefore_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        return await archive_settled(self.transcript, state["messages"])


class ContextBudgetMiddleware(AgentMiddleware[Any, Any, Any]):
    _CACHED_RUNS = 256

    def __init__(self, max_tokens: int, transcript: Transcript | None = None) -> None:
        super().__init__()
        self.max_tokens = max_tokens
        self.transcript = transcript
        self._earlier: OrderedDict[str, list[AnyMessage]] = OrderedDict()  # run id → its thread's archived tail

    async def _with_earlier_turns(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """``request`` with the thread's archived tail (within the budget) before the run's own messages."""
        thread_id, run_id = _thread_and_run()
        if self.transcript is None or thread_id is None:
            return request
        earlier = self._earlier.get(run_id) if run_id else None
        if earlier is None:
            earlier = await self.transcript.tail(thread_id, self.max_tokens)
            if run_id:  # the transcript does not change during a run: read it once per run
                self._earlier[run_id] = earlier
                while len(self._earlier) > self._CACHED_RUNS:
                    self._earlier.popitem(last=False)
        if not earlier:
            return request
        known = {m.id for m in request.messages}
        return request.override(messages=[*(m for m in earlier if m.id not in known), *request.messages])

    def _trim(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        if count_tokens_approximately(request.messages) <= self.max_tokens:
            return request
        kept = trim_messages(
            request.messages,
            max_tokens=self.max_tokens,
            token_counter="approximate",
            strategy="last",
            start_on="human",
            allow_partial=False,
        )
        if not kept:  # one message larger than the budget: send the newest message alone rather than nothing
            kept = list(request.messages[-1:])
        return request.override(messages=kept)  # type: ignore[arg-type]

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        return await handler(self._trim(await self._with_earlier_turns(request)))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        return handler(self._trim(request))
