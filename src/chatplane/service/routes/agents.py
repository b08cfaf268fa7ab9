"""``GET /agents``: the agent kinds a thread can talk to."""

from __future__ import annotations

from fastapi import APIRouter

from chatplane.agents import AGENTS
from chatplane.schemas import AgentInfo, AgentList

router = APIRouter(tags=["agents"])


@router.get("/agents", response_model=AgentList)
async def list_agents() -> AgentList:
    return AgentList(agents=[AgentInfo(name=k.name, description=k.description) for k in AGENTS.values()])
