"""Agents as an MCP server: ``/mcp`` (streamable HTTP) exposes each assistant the caller may use as a tool.

==============  ============================================================================================
``endpoint``    the route, authentication, the SDK's server and session manager (started by the lifespan)
``tools``       assistants → tools; a call → a run on the session's (or the given) thread of the caller's
==============  ============================================================================================
"""

from chatplane.service.mcp.endpoint import PATH, add_mcp_route, mcp_sessions

__all__ = ["PATH", "add_mcp_route", "mcp_sessions"]
