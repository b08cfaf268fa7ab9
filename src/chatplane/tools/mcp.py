"""Tools from MCP servers (``CHATPLANE_MCP_SERVERS``), loaded with ``langchain-mcp-adapters``.

Each server entry is a ``langchain-mcp-adapters`` connection (``stdio`` or ``streamable_http``). The tools are
loaded once, at start-up, and each call opens its own session (the adapters' default): a server that crashes or
restarts between calls costs one failed call, not every later one. A server that cannot be reached at start-up
stops the start with a ``ConfigError`` naming it — the text of the underlying error is only logged, as a
type-and-location description, since it can quote commands, URLs or tokens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from langchain_core.tools import BaseTool

from chatplane.errors import ConfigError, describe_exception

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0


async def load_mcp_server_tools(
    servers: Mapping[str, Mapping[str, Any]], *, timeout_s: float = START_TIMEOUT_S
) -> list[BaseTool]:
    """The tools of every server in ``servers``; ``ConfigError`` naming the first server that fails."""
    if not servers:
        return []
    from langchain_mcp_adapters.client import MultiServerMCPClient  # heavy: imported only when servers are set

    client = MultiServerMCPClient({name: dict(conn) for name, conn in servers.items()})  # type: ignore[misc]
    tools: list[BaseTool] = []
    for name in servers:
        try:
            async with asyncio.timeout(timeout_s):
                loaded = await client.get_tools(server_name=name)
        except Exception as exc:  # any failure to start a server is a configuration problem
            log.error("MCP server %r failed at start-up (%s)", name, describe_exception(exc))
            raise ConfigError(
                f"The MCP server {name!r} could not be reached at start-up; check its entry in CHATPLANE_MCP_SERVERS."
            ) from exc
        log.info("MCP server %r: %d tools", name, len(loaded))
        tools.extend(loaded)
    return tools
