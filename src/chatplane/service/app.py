"""The FastAPI application: ``create_app(settings)``; everything heavy starts in the lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from langchain_core.language_models import BaseChatModel

import chatplane
from chatplane.agent import ProductionAgent
from chatplane.config import Settings, get_settings, production_problems
from chatplane.errors import ChatplaneError, ConfigError, describe_exception
from chatplane.observability.setup import install_operations
from chatplane.service.auth import Authenticator
from chatplane.service.errors import install_error_handlers
from chatplane.service.middleware import BodySizeLimit, UnexpectedErrorGuard
from chatplane.service.ratelimit import RateLimits
from chatplane.service.routes import agents, chat, health, openai, runs, threads, usage, web, ws
from chatplane.storage.key_changes import KeyChangeListener
from chatplane.storage.keys import ApiKeyStore

log = logging.getLogger("chatplane.service")


_YOUNG_COLLECTION_THRESHOLD = 10_000


def _freeze_start_up_objects() -> None:
    """Move everything start-up created (modules, graphs, pools: a few hundred thousand objects) out of the cyclic
    garbage collector's generations. Its full collections then walk only what requests create: at 50 concurrent
    users that took garbage collection from ~9% of a turn's CPU to ~2% (``benchmarks``' in-process run).

    The youngest generation is collected every 10,000 net allocations instead of 700: a turn allocates tens of
    thousands of short-lived objects (LangGraph, LangChain, pydantic), and most young collections found nothing to
    free. 12.4M → 12.2M instructions per turn under callgrind; the few extra objects waiting are a few MB at most."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, older, oldest)


def create_app(
    settings: Settings | None = None, *, model: BaseChatModel | None = None, own_process: bool = False
) -> FastAPI:
    """Build the app. ``model`` replaces the configured chat model (tests pass a scripted one). ``own_process``:
    the app is the process's only one (``chatplane serve``), so it may tune process-wide state at start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        agent = ProductionAgent(model, settings=settings)
        try:
            if settings.env == "production" and (problems := production_problems(settings)):
                raise ConfigError("Refusing to start in production: " + " ".join(problems))
            await agent.start()
            key_changes = await _wire_security(app, agent, settings)
        except ChatplaneError as exc:
            log.error("chatplane cannot start: %s", exc.message)
            await agent.aclose()
            raise
        except Exception as exc:
            log.error("chatplane cannot start: %s", describe_exception(exc))
            await agent.aclose()
            raise
        try:
            app.state.agent = agent
            if own_process:
                _freeze_start_up_objects()
            log.info("chatplane ready: model %s, storage %s", settings.model, agent.storage.kind)
            yield
        finally:
            if key_changes is not None:
                await key_changes.aclose()
            await agent.aclose(grace_s=settings.shutdown_grace_s)

    app = FastAPI(
        title="chatplane",
        version=chatplane.__version__,
        description="A production-grade service for LLM agents.",
        lifespan=lifespan,
        # chatplane traces and measures requests itself (chatplane.observability, its own tracer provider); FastAPI's
        # native OpenTelemetry would add a second set on whatever global provider the environment configures.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(UnexpectedErrorGuard)  # sees whatever nothing else handled
    install_operations(app, settings)  # logs, metrics, traces, retention job; its request observer is outermost
    for module in (chat, threads, runs, ws, openai, agents, health, web, usage):
        app.include_router(module.router)
    return app


async def _wire_security(app: FastAPI, agent: ProductionAgent, settings: Settings) -> KeyChangeListener | None:
    """Authentication and limits on ``app.state``; on PostgreSQL, the listener that lets API keys be cached."""
    keys = ApiKeyStore(agent.storage.db)
    authenticator = Authenticator(settings, keys)
    if not authenticator.jwt_enabled and not await keys.any_active():
        if settings.env == "production":
            raise ConfigError(
                "Refusing to start in production without authentication: create an API key "
                "(`chatplane keys create --user NAME`) or set CHATPLANE_JWT_SECRET / CHATPLANE_JWT_JWKS."
            )
        if not authenticator.local_user_allowed:
            log.warning(
                "No API keys exist and the server is not bound to loopback: every request will be refused "
                "until you create one with `chatplane keys create --user NAME`."
            )
    app.state.authenticator = authenticator
    app.state.rate_limits = rate_limits = RateLimits(settings, agent.runs.runs)
    agent.runs.finish_hooks.append(rate_limits.record_run)
    if agent.storage.kind != "postgres":
        return None
    listener = KeyChangeListener(settings.storage_url, keys.forget)
    keys.cache_trusted = lambda: listener.listening
    await listener.start()
    return listener


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory chatplane.service.app:app_factory`` (settings from the environment)."""
    return create_app(own_process=True)
