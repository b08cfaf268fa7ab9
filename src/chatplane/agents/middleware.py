"""Middleware shared by every chatplane agent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NotRequired

import httpx
from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage
from langgraph.errors import GraphBubbleUp

from chatplane.errors import ChatplaneError, ModelError, ModelTimeoutError


class SessionState(AgentState[Any]):
    """What a chatplane thread holds besides its messages: who is talking, in which session (as the seed)."""

    user_id: NotRequired[str]
    session_id: NotRequired[str]


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return True
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai is a dependency
        return False
    return isinstance(exc, openai.APITimeoutError)


class ModelErrorMiddleware(AgentMiddleware[SessionState, Any, Any]):
    """Bounds each model call by ``timeout_s`` and turns any failure of the provider into a chatplane error.

    Whatever the provider raised stays as ``__cause__`` (for logs, described without its text); the error that
    leaves the graph carries only a stable code and a safe message.
    """

    state_schema = SessionState

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await handler(request)
        except (GraphBubbleUp, ChatplaneError):
            raise
        except Exception as exc:
            if _is_timeout(exc):
                raise ModelTimeoutError() from exc
            raise ModelError() from exc
