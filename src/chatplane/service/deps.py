"""FastAPI dependencies, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from chatplane.agent import ProductionAgent
from chatplane.config import Settings
from chatplane.service.auth import User, current_user


def get_settings(request: HTTPConnection) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_agent(request: HTTPConnection) -> ProductionAgent:
    agent: ProductionAgent = request.app.state.agent
    return agent


SettingsDep = Annotated[Settings, Depends(get_settings)]
AgentDep = Annotated[ProductionAgent, Depends(get_agent)]
CurrentUser = Annotated[User, Depends(current_user)]
