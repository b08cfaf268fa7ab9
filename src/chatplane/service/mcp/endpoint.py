"""``/mcp``: the MCP server (streamable HTTP) on the mcp SDK's low-level ``Server`` and its
``StreamableHTTPSessionManager``.

The route (``McpEndpoint``) is added when the app is built; the server and its session manager are built and
started by the lifespan (``mcp_sessions``) and stopped before the agent closes. Each request is authenticated as
every route is (``deps.current_user``: a 401 with the stable error body without a credential, the rate limit), and
the caller reaches the tool handlers on the request the SDK passes them (``request.state.user``).

**Sessions keep no state in the process.** The SDK's stateful mode keeps each session in the memory of the
process that opened it, so with several workers or hosts a client's next request, on another connection, would
find no session there (a 404, a new session). chatplane's API processes are stateless, so the SDK runs stateless
and the session id is issued here, on the ``initialize`` response, as a random id the client sends back: a
conversation is the thread derived from (caller, session id, assistant) — any process finds it, and another user
sending the same id reaches a thread of their own, never the first user's. With no state there is nothing for a
``GET`` stream to carry (the server sends no requests or notifications of its own) and nothing to end: both are
405s, which MCP clients take as "not offered".

The local user (a loopback development server without keys, where no credential is asked) is answered only on a
loopback host name and from no foreign origin (only loopback ones and ``CHATPLANE_CORS_ORIGINS``): MCP servers
must guard against DNS rebinding, where a web page points a name of its own at 127.0.0.1 and talks to whoever
needs no credential there.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

import chatplane
from chatplane.agent import ProductionAgent
from chatplane.config import LOOPBACK_HOSTS, Settings
from chatplane.errors import ForbiddenError
from chatplane.service.auth import User
from chatplane.service.deps import current_user
from chatplane.service.mcp.tools import assistant_tools, call_assistant
from chatplane.service.ratelimit import RateLimits

PATH = "/mcp"
_ALLOW = {"Allow": "POST"}
_INSTRUCTIONS = (
    "Each tool is a chatplane assistant. Call it with a `message`; the conversation with that assistant goes on "
    "across calls in this session (or pass `thread` to continue a chatplane thread of yours)."
)


class McpEndpoint:
    """The ASGI app at ``/mcp``: authenticate, then hand the request to the session manager, a session id added to
    the answer of an ``initialize``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        user = await current_user(request)  # a refusal is the app's error response (its exception handlers)
        if user.via == "local":
            _refuse_rebinding(request)
        if request.method != "POST":
            raise HTTPException(405, "This MCP server sends nothing of its own and keeps no session to end.", _ALLOW)
        body = await request.body()  # within the app's body limits; handed on as it came
        session_id = uuid.uuid4().hex if _is_initialize(body) else None

        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        async def answer(message: Message) -> None:
            if session_id is not None and message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(MCP_SESSION_ID_HEADER, session_id)
            await send(message)

        manager: StreamableHTTPSessionManager = request.app.state.mcp_sessions
        await manager.handle_request(scope, replay, answer)


def _is_initialize(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


def _refuse_rebinding(request: Request) -> None:
    """For the local user: a loopback ``Host``, and no ``Origin`` but a loopback one or one of
    ``CHATPLANE_CORS_ORIGINS``."""
    settings: Settings = request.app.state.settings
    host = (request.headers.get("host") or "").lower()
    origin = request.headers.get("origin")
    foreign_origin = (
        origin is not None
        and _host_name(urlsplit(origin).netloc) not in LOOPBACK_HOSTS
        and origin not in settings.cors_origins
    )
    if _host_name(host) not in LOOPBACK_HOSTS or foreign_origin:
        raise ForbiddenError("Without a credential, /mcp answers only on a loopback address (127.0.0.1, localhost).")


def _host_name(netloc: str) -> str:
    """``host:port`` → ``host`` (``[::1]:8000`` → ``::1``)."""
    if netloc.startswith("["):
        return netloc[1:].partition("]")[0]
    return netloc.rpartition(":")[0] if netloc.count(":") == 1 else netloc


def add_mcp_route(app: FastAPI) -> None:
    app.router.routes.append(Route(PATH, McpEndpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False))


@asynccontextmanager
async def mcp_sessions(app: FastAPI, agent: ProductionAgent, settings: Settings) -> AsyncIterator[None]:
    """The MCP server and its session manager, running while the app serves (``app.state.mcp_sessions``)."""
    manager = StreamableHTTPSessionManager(
        _server(agent, app.state.rate_limits),
        stateless=True,  # sessions are ids issued by ``McpEndpoint``, kept by no process
        json_response=True,  # an answer is one JSON body: the server streams nothing else
        max_request_body_size=settings.max_body_bytes,
    )
    # The manager's task group lives in a task of its own: entered and exited there, whichever task runs the
    # lifespan's start and end (uvicorn uses one; an in-process test harness may not).
    running, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with manager.run():
            running.set()
            await stop.wait()

    task = asyncio.create_task(serve(), name="mcp-sessions")
    await asyncio.wait([task, asyncio.create_task(running.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # it failed to start: raise why
    app.state.mcp_sessions = manager
    try:
        yield
    finally:
        stop.set()
        await task


def _server(agent: ProductionAgent, limits: RateLimits) -> Server[Any, Request]:
    server: Server[Any, Request] = Server("chatplane", version=chatplane.__version__, instructions=_INSTRUCTIONS)

    def caller() -> tuple[User, str]:
        request = server.request_context.request
        assert request is not None  # streamable HTTP passes every request its HTTP request
        return request.state.user, request.headers.get(MCP_SESSION_ID_HEADER, "")

    @server.list_tools()  # type: ignore[no-untyped-call, untyped-decorator]
    async def list_tools() -> list[types.Tool]:
        user, _ = caller()
        return await assistant_tools(agent, user)

    # Arguments are checked by ``call_assistant``: the SDK's check uses one tool cache for every caller.
    @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        user, session_id = caller()
        return await call_assistant(agent, user, session_id, name, arguments, limits.check_new_run)

    return server
