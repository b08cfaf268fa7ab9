"""The FastAPI application: ``create_app(settings)``; everything heavy starts in its lifespan (``lifespan.py``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from langchain_core.language_models import BaseChatModel

import chatplane
from chatplane.config import Settings, get_settings
from chatplane.observability.operations import Operations
from chatplane.service import a2a, langgraph
from chatplane.service.errors import install_error_handlers
from chatplane.service.lifespan import make_lifespan
from chatplane.service.mcp import add_mcp_route
from chatplane.service.middleware import BodyLimits, InboundCheck, UnexpectedErrorGuard
from chatplane.service.observe import observe
from chatplane.service.routes import (
    agents,
    assistants,
    branches,
    chat,
    health,
    openai,
    runs,
    schedules,
    store,
    threads,
    usage,
    users,
    web,
    webhooks,
    ws,
)
from chatplane.service.routing import serve_flat


def create_app(
    settings: Settings | None = None, *, model: BaseChatModel | None = None, own_process: bool = False
) -> FastAPI:
    """Build the app. ``model`` replaces the configured chat model (tests pass a scripted one). ``own_process``:
    the app is the process's only one (``chatplane serve``), so it may tune process-wide state at start-up."""
    settings = settings or get_settings()
    operations = Operations(settings, version=chatplane.__version__)  # started first by the lifespan, closed last
    app = FastAPI(
        title="chatplane",
        version=chatplane.__version__,
        description="A production-grade service for LLM agents.",
        lifespan=make_lifespan(settings, operations, model=model, own_process=own_process),
        # chatplane traces and measures requests itself (chatplane.observability, its own tracer provider); FastAPI's
        # native OpenTelemetry would add a second set on whatever global provider the environment configures.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.operations = operations
    install_error_handlers(app)
    app.add_middleware(InboundCheck)  # innermost: its refusals carry the CORS headers too
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Api-Key", "X-Request-ID"]
            + ["Mcp-Session-Id", "Mcp-Protocol-Version", "A2A-Version"],  # browser MCP and A2A clients
            expose_headers=["Retry-After", "X-Request-ID", "Content-Location", "Location", "X-Pagination-Next"]
            + ["Mcp-Session-Id"],
        )
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes, timeout_s=settings.request_body_timeout_s)
    app.add_middleware(UnexpectedErrorGuard)  # sees whatever nothing else handled
    observe(app, operations)  # the request observer is outermost; GET /metrics
    # Flat, runs' routes early (routing.py says why); the LangGraph Platform API is at the root path.
    routes = (chat, threads, runs, langgraph, branches, assistants, ws, openai, agents, health, web, usage, schedules)
    serve_flat(app.router, *(module.router for module in (*routes, webhooks, store, users)))
    add_mcp_route(app)  # /mcp: assistants as MCP tools
    serve_flat(app.router, a2a.router)  # A2A: agent cards, /a2a/{assistant}
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory chatplane.service.app:app_factory`` (settings from the environment)."""
    return create_app(own_process=True)
