"""The app's lifespan: everything the server runs on, started in order and stopped in the reverse order::

    observability      logging, tracing, metrics       start-up is logged in the configured format
    agent              model, storage, tools, runs      (closed again if anything below fails to start)
    security           authentication, rate limits, the API-key change listener
    run observation    run hooks, the model / tool callback handler
    retention job      when CHATPLANE_RETENTION_DAYS is set
    automation         the scheduler (due schedules) and the webhook dispatcher
      — serve —
    automation         stops before storage closes
    MCP server         the /mcp server's session manager (its requests' tasks); A2A's dispatcher
      — serve —
    MCP server         requests still in it cancelled
    retention job      stops before storage closes
    security, agent    running runs get the shutdown grace, then are handed back to the queue
    observability      traces flushed last: the spans of runs that finished during the grace are exported

Each layer is handed what it needs explicitly; none of them starts another.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel

from chatplane.agent import ProductionAgent
from chatplane.config import Settings, production_problems
from chatplane.errors import ChatplaneError, ConfigError, describe_exception
from chatplane.observability.operations import Operations
from chatplane.retention import RetentionJob
from chatplane.service.a2a import a2a_dispatcher
from chatplane.service.auth import Authenticator
from chatplane.service.automation import start_automation
from chatplane.service.mcp import mcp_sessions
from chatplane.service.ratelimit import RateLimits
from chatplane.storage.key_changes import KeyChangeListener
from chatplane.storage.keys import ApiKeyStore

log = logging.getLogger("chatplane.service")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_YOUNG_COLLECTION_THRESHOLD = 10_000


def make_lifespan(
    settings: Settings, operations: Operations, *, model: BaseChatModel | None, own_process: bool
) -> Lifespan:
    """The lifespan of an app on ``settings``, observed by ``operations``; see ``create_app`` for the rest."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        operations.start()
        try:
            agent, key_changes = await _start_agent(app, settings, model)
            try:
                _observe_runs(agent, operations)
                retention = _start_retention(agent, settings, operations)
                automation = start_automation(agent, settings, app.state.rate_limits)
                try:
                    app.state.agent = agent
                    if own_process:
                        _freeze_start_up_objects()
                    app.state.a2a_rpc = a2a_dispatcher(agent, app.state.rate_limits)
                    async with mcp_sessions(app, agent, settings):
                        log.info("chatplane ready: model %s, storage %s", settings.model, agent.storage.kind)
                        yield
                finally:
                    await automation.aclose()
                    if retention is not None:
                        await retention.stop()
            finally:
                if key_changes is not None:
                    await key_changes.aclose()
                await agent.aclose(grace_s=settings.shutdown_grace_s)
        finally:
            await operations.close()

    return lifespan


async def _start_agent(
    app: FastAPI, settings: Settings, model: BaseChatModel | None
) -> tuple[ProductionAgent, KeyChangeListener | None]:
    """Start the agent (model, storage, runs) and wire security onto it; if either fails, log why once (without
    the exception's text), close what started and raise."""
    agent = ProductionAgent(model, settings=settings)
    try:
        if settings.env == "production" and (problems := production_problems(settings)):
            raise ConfigError("Refusing to start in production: " + " ".join(problems))
        await agent.start()
        return agent, await _wire_security(app, agent, settings)
    except ChatplaneError as exc:
        log.error("chatplane cannot start: %s", exc.message)
        await agent.aclose()
        raise
    except Exception as exc:
        log.error("chatplane cannot start: %s", describe_exception(exc))
        await agent.aclose()
        raise


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
    app.state.rate_limits = rate_limits = RateLimits(settings, agent.storage.runs)
    agent.runs.hooks.finished.append(rate_limits.record_run)
    if agent.storage.kind != "postgres":
        return None
    listener = KeyChangeListener(settings.storage_url, keys.forget)
    keys.cache_trusted = lambda: listener.listening
    await listener.start()
    return listener


def _observe_runs(agent: ProductionAgent, operations: Operations) -> None:
    """Every run's start and finish (after the rate limits have recorded it), and its model and tool calls."""
    agent.runs.hooks.started.append(operations.run_started)
    agent.runs.hooks.finished.append(operations.run_finished)
    if operations.observer is not None:
        agent.runs.hooks.callbacks.append(operations.observer)


def _start_retention(agent: ProductionAgent, settings: Settings, operations: Operations) -> RetentionJob | None:
    """The background pruning of old threads and superseded checkpoints, when retention is configured."""
    if settings.retention_days is None:
        return None
    job = RetentionJob(agent.storage, settings, operations.pruned)
    job.start()
    return job


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
