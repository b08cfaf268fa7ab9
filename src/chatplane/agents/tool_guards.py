"""Tool-call guards: every tool call bounded in time, and every failure handed back to the model as a message.

``ToolErrorMiddleware`` (LangChain) turns an exception into an error ``ToolMessage`` with the content chosen
here: a ``ToolException`` is written by the tool for the model and is passed on (cut to a few hundred characters);
anything else is described by its type only, since its text can quote URLs, paths or credentials. The failure is
logged the same way. So a tool that raises never ends the run — the model reads what went wrong and carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from langchain.agents.middleware import AgentMiddleware, AgentState, ToolCallRequest
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from langgraph.types import Command

from chatplane.errors import describe_exception

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500

ToolHandler = Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]]


class ToolTimeoutError(TimeoutError):
    """A tool call took longer than ``tool_timeout_s``."""


class ToolTimeoutMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Bounds each tool call (each attempt, when retried) by ``timeout_s``."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    async def awrap_tool_call(self, request: ToolCallRequest, handler: ToolHandler) -> ToolMessage | Command[Any]:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await handler(request)
        except TimeoutError as exc:
            raise ToolTimeoutError() from exc


def is_transient_tool_error(exc: BaseException) -> bool:
    """Worth retrying: the request never reached the tool's server (connection refused, DNS, connect timeout).

    Tools may have side effects, so a call that might have run (a read timeout, a 5xx) is not repeated.
    """
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError)


def tool_error_content(exc: Exception, request: ToolCallRequest) -> str:
    """What the model reads when a tool call fails (``ToolErrorMiddleware``'s ``on_error``)."""
    name = request.tool_call["name"]
    if isinstance(exc, ToolException):
        text = str(exc) or "The tool failed."
        return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " …"
    log.warning("tool %s failed (%s)", name, describe_exception(exc))
    if isinstance(exc, ToolTimeoutError):
        return f"The tool {name} did not finish in time. Try again later or answer without it."
    return f"The tool {name} failed ({type(exc).__name__}). Try something else or answer without it."
