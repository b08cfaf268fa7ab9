"""FastAPI dependencies, as ``Annotated`` aliases.

Every one is ``async def``, even those that only read ``app.state``: FastAPI runs a plain ``def`` dependency in a
worker thread, a hand-over and a wake-up per request for an attribute read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from starlette.requests import HTTPConnection

from chatplane.agent import ProductionAgent
from chatplane.config import Settings
from chatplane.service.auth import Authenticator, User
from chatplane.service.ratelimit import RateLimits


async def get_settings(request: HTTPConnection) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_agent(request: HTTPConnection) -> ProductionAgent:
    agent: ProductionAgent = request.app.state.agent
    return agent


def _rate_limits(request: HTTPConnection) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def current_user(request: HTTPConnection) -> User:
    """The authenticated caller, counted against their request rate limit."""
    authenticator: Authenticator = request.app.state.authenticator
    headers = request.headers
    user = await authenticator.authenticate(headers.get("authorization"), headers.get("x-api-key"))
    await _rate_limits(request).check_request(user)
    request.state.user = user
    return user


async def run_allowed(request: HTTPConnection, user: Annotated[User, Depends(current_user)]) -> User:
    """The caller, if they may start another run now (token budget, runs at once)."""
    await _rate_limits(request).check_new_run(user)
    return user


SettingsDep = Annotated[Settings, Depends(get_settings)]
AgentDep = Annotated[ProductionAgent, Depends(get_agent)]
CurrentUser = Annotated[User, Depends(current_user)]
RunAllowedUser = Annotated[User, Depends(run_allowed)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Send the same request again with the same key (after a 503 or a lost connection): you get "
        "the first request's run, never a second message. A key is good for CHATPLANE_IDEMPOTENCY_TTL_S.",
    ),
]
