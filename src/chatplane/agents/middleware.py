"""Model-call middleware shared by every chatplane agent: one attempt bounded in time, failures translated.

``ModelErrorMiddleware`` goes *outermost* and ``ModelAttemptMiddleware`` *innermost*, with LangChain's retry and
fallback middleware between them (see ``chatplane.agents.guards``): each attempt is bounded by
``model_timeout_s`` and its failure logged; retries and fallbacks see the raw provider errors (so they can tell a
429 from a 400); only what is left when they give up is translated into ``ModelError`` / ``ModelTimeoutError``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NotRequired

import httpx
from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage
from langgraph.errors import GraphBubbleUp

from chatplane.errors import ChatplaneError, ModelError, ModelTimeoutError, describe_exception
from chatplane.events import ATTEMPT_FAILED

log = logging.getLogger(__name__)

ModelHandler = Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]


class SessionState(AgentState[Any]):
    """What a chatplane thread holds besides its messages: who is talking, in which session (as the seed)."""

    user_id: NotRequired[str]
    session_id: NotRequired[str]


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return True
    import openai  # a dependency of langchain-openai; imported on use like the model itself

    return isinstance(exc, openai.APITimeoutError)


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_transient_model_error(exc: BaseException) -> bool:
    """Worth another attempt: timeouts, connection failures, 429 and 5xx answers — never a chatplane error.

    A 400 (bad request, context too long), 401/403 (key) or 404 (model name) would fail the same way again.
    """
    if isinstance(exc, ChatplaneError | GraphBubbleUp):
        return False
    if _is_timeout(exc) or isinstance(exc, httpx.TransportError | ConnectionError):
        return True
    import openai

    if isinstance(exc, openai.APIConnectionError):
        return True
    status = _status(exc)
    return status is not None and (status == 429 or status >= 500)


def keep_first_tool_call(response: ModelResponse[Any]) -> ModelResponse[Any]:
    """``response`` with at most one tool call per message (the first), for agents that act one step at a time."""
    result = []
    for message in response.result:
        if isinstance(message, AIMessage) and len(message.tool_calls) > 1:
            message = message.model_copy(update={"tool_calls": message.tool_calls[:1]})
        result.append(message)
    return ModelResponse(result=result, structured_response=response.structured_response)


class ModelAttemptMiddleware(AgentMiddleware[SessionState, Any, Any]):
    """One attempt at a model call: bounded by ``timeout_s`` (``TimeoutError`` after it), its failure logged and
    told to the run's stream (``ATTEMPT_FAILED`` on LangGraph's ``custom`` mode, right after the attempt's last
    token), so the tokens it streamed are retracted before a retry or a fallback model streams its own.

    The log line names the exception type, status and location only (``describe_exception``), never its text.
    """

    state_schema = SessionState

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    async def awrap_model_call(self, request: ModelRequest[Any], handler: ModelHandler) -> ModelResponse[Any]:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await handler(request)
        except (GraphBubbleUp, ChatplaneError):
            raise
        except Exception as exc:
            log.warning("model call to %s failed (%s)", type(request.model).__name__, describe_exception(exc))
            if request.runtime is not None:
                request.runtime.stream_writer(dict(ATTEMPT_FAILED))
            raise


class ModelErrorMiddleware(AgentMiddleware[SessionState, Any, Any]):
    """Turns whatever failure is left after retries and fallbacks into a chatplane error.

    Whatever the provider raised stays as ``__cause__`` (for logs, described without its text); the error that
    leaves the graph carries only a stable code and a safe message.
    """

    state_schema = SessionState

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: ModelHandler
    ) -> ModelResponse[Any] | AIMessage:
        try:
            return await handler(request)
        except (GraphBubbleUp, ChatplaneError):
            raise
        except Exception as exc:
            if _is_timeout(exc):
                raise ModelTimeoutError() from exc
            raise ModelError() from exc


class ModelGuards(AgentMiddleware[SessionState, Any, Any]):
    """Model-call wrappers (``layers``, outermost first) run as one middleware.

    ``create_agent`` wraps each middleware's model-call hook in a LangSmith ``traceable`` span, which reads context
    variables and builds run-tree state on every call even with tracing off. The guards (translation, fallback,
    retry, attempt) nest inside one such span instead of four. Only for middleware whose one hook is
    ``wrap_model_call`` / ``awrap_model_call`` (no state, tools or other hooks).
    """

    state_schema = SessionState

    def __init__(self, layers: list[AgentMiddleware[Any, Any, Any]]) -> None:
        super().__init__()
        self.layers = layers

    async def awrap_model_call(self, request: ModelRequest[Any], handler: ModelHandler) -> Any:
        call: Callable[[ModelRequest[Any]], Awaitable[Any]] = handler
        for layer in reversed(self.layers):
            call = _nested(layer, call)
        return await call(request)

    def wrap_model_call(self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Any]) -> Any:
        call = handler
        for layer in reversed(self.layers):
            call = functools.partial(layer.wrap_model_call, handler=call)
        return call(request)


def overrides(middleware: AgentMiddleware[Any, Any, Any], hook: str) -> bool:
    """Whether ``middleware`` implements ``hook`` (or its async twin): ``create_agent`` makes each such hook a node."""
    cls = type(middleware)
    return getattr(cls, hook) is not getattr(AgentMiddleware, hook) or (
        getattr(cls, f"a{hook}") is not getattr(AgentMiddleware, f"a{hook}")
    )


_OTHER_HOOKS = ("before_agent", "before_model", "after_model", "after_agent", "wrap_tool_call")
_BASE_STATE = AgentMiddleware.state_schema  # type: ignore[misc]


def model_call_only(middleware: AgentMiddleware[Any, Any, Any]) -> bool:
    """Whether the model call is ``middleware``'s one hook (no tools, no other hooks): it nests in ``ModelGuards``."""
    return (
        not getattr(middleware, "tools", None)
        and middleware.state_schema is _BASE_STATE
        and not any(overrides(middleware, hook) for hook in _OTHER_HOOKS)
    )


def _nested(
    layer: AgentMiddleware[Any, Any, Any], inner: Callable[[ModelRequest[Any]], Awaitable[Any]]
) -> Callable[[ModelRequest[Any]], Awaitable[Any]]:
    async def call(request: ModelRequest[Any]) -> Any:
        return await layer.awrap_model_call(request, inner)

    return call
