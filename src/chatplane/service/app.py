"""The FastAPI application: ``create_app(settings)``; everything heavy starts in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel

import chatplane
from chatplane.agent import ProductionAgent
from chatplane.config import Settings, get_settings
from chatplane.errors import ChatplaneError, describe_exception
from chatplane.service.errors import install_error_handlers
from chatplane.service.middleware import BodySizeLimit, UnexpectedErrorGuard
from chatplane.service.routes import agents, chat, health, runs, threads, ws

log = logging.getLogger("chatplane.service")


def create_app(settings: Settings | None = None, *, model: BaseChatModel | None = None) -> FastAPI:
    """Build the app. ``model`` replaces the configured chat model (tests pass a scripted one)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        agent = ProductionAgent(model, settings=settings)
        try:
            await agent.start()
        except ChatplaneError as exc:
            log.error("chatplane cannot start: %s", exc.message)
            raise
        except Exception as exc:
            log.error("chatplane cannot start: %s", describe_exception(exc))
            raise
        try:
            app.state.agent = agent
            log.info("chatplane ready: model %s, storage %s", settings.model, agent.storage.kind)
            yield
        finally:
            await agent.aclose()

    app = FastAPI(
        title="chatplane",
        version=chatplane.__version__,
        description="A production-grade service for LLM agents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(UnexpectedErrorGuard)  # outermost: sees whatever nothing else handled
    for module in (chat, threads, runs, ws, agents, health):
        app.include_router(module.router)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory chatplane.service.app:app_factory`` (settings from the environment)."""
    return create_app()
