"""The tools agents can use: built-in ones and those of MCP servers, opened together by ``open_tools(settings)``.

================  ==============================================================================================
``calculator``    exact arithmetic, evaluated on Python's ``ast`` (no ``eval``), bounded
``current_time``  date and time in an IANA time zone
``search_docs``   passages of the ``.txt``/``.md`` documents in ``CHATPLANE_DOCS_DIR``
``http_get``      GET on hosts of ``CHATPLANE_HTTP_TOOL_ALLOWLIST`` only (offered only when the list is set)
MCP tools         every tool of every server in ``CHATPLANE_MCP_SERVERS``
================  ==============================================================================================

A tool that fails tells the model why, as an error ``ToolMessage``; the agents' tool guards
(``chatplane.agents.guards``) make sure of it for tools that raise something else than ``ToolException``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from langchain_core.tools import BaseTool, tool

from chatplane.config import Settings
from chatplane.errors import ConfigError
from chatplane.tools.calculator import make_calculator
from chatplane.tools.clock import make_current_time
from chatplane.tools.docs import make_search_docs
from chatplane.tools.http import make_http_get
from chatplane.tools.mcp import load_mcp_server_tools

BUILTIN_TOOLS = ("calculator", "current_time", "search_docs", "http_get")


def builtin_tools(settings: Settings, *, http_client: httpx.AsyncClient | None = None) -> list[BaseTool]:
    """The built-in tools ``settings`` allow. ``http_get`` needs ``http_client`` and a non-empty allowlist."""
    tools = [make_calculator(), make_current_time(), make_search_docs(settings.docs_dir)]
    if settings.http_tool_allowlist and http_client is not None:
        tools.append(make_http_get(settings.http_tool_allowlist, http_client, timeout_s=settings.tool_timeout_s))
    return tools


@asynccontextmanager
async def open_tools(settings: Settings, *, extra: Sequence[Any] = ()) -> AsyncIterator[list[BaseTool]]:
    """Built-in tools, the project's (``extra``: LangChain tools or plain functions) and every MCP server's tools,
    usable until the context exits.

    Raises ``ConfigError`` (naming the server, never quoting its error) when an MCP server cannot be reached, and
    when two tools share a name.
    """
    async with httpx.AsyncClient(timeout=settings.tool_timeout_s, follow_redirects=False) as http_client:
        tools = builtin_tools(settings, http_client=http_client)
        tools += [as_tool(item) for item in extra]
        tools += await load_mcp_server_tools(settings.mcp_servers, timeout_s=min(settings.tool_timeout_s, 60.0))
        duplicates = sorted(name for name, count in Counter(t.name for t in tools).items() if count > 1)
        if duplicates:
            raise ConfigError(
                f"Two tools are named {duplicates[0]!r}; rename one (the project's, or on its MCP server)."
            )
        yield tools


def as_tool(item: Any) -> BaseTool:
    """A project's tool: a LangChain tool as it is, a (sync or async) function made one (its docstring says what
    it does, its type hints give its arguments)."""
    if isinstance(item, BaseTool):
        return item
    if callable(item):
        if not (getattr(item, "__doc__", None) or "").strip():
            raise ConfigError(f"Tool {getattr(item, '__name__', item)!r} needs a docstring: the model reads it.")
        made: BaseTool = tool(item)
        return made
    raise ConfigError(f"Tool entry {type(item).__name__!r} is neither a LangChain tool nor a function.")


__all__ = ["BUILTIN_TOOLS", "as_tool", "builtin_tools", "open_tools"]
