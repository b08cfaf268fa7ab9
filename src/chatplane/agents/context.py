"""Keep the prompt within a token budget: long threads stay cheap, the full history stays in the thread.

Each model call gets the newest messages that fit ``context_budget_tokens`` (counted offline, about four characters a
token — ``tiktoken`` cannot download its encodings here), starting at a user message so a tool call is never
separated from its result. Nothing is deleted: ``GET /v1/threads/{id}/messages`` still returns every message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages

from chatplane.config import Settings

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


class ContextBudgetMiddleware(AgentMiddleware[Any, Any, Any]):
    def __init__(self, max_tokens: int) -> None:
        super().__init__()
        self.max_tokens = max_tokens

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
        return await handler(self._trim(request))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage:
        return handler(self._trim(request))
