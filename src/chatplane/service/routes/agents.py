"""``GET /agents``: the graphs (and assistants) a caller may talk to, with the schemas of what a run takes."""

from __future__ import annotations

from fastapi import APIRouter

from chatplane.agents.catalog import default_assistant_id
from chatplane.schemas import AgentInfo, AgentList
from chatplane.service.deps import AgentDep, CurrentUser

router = APIRouter(tags=["agents"])


@router.get("/agents", response_model=AgentList)
async def list_agents(agent: AgentDep, user: CurrentUser) -> AgentList:
    registry = agent.registry
    agents = []
    for served in registry.all():
        schemas = registry.schemas(served.graph_id)
        agents.append(
            AgentInfo(
                name=served.graph_id,
                description=served.description,
                graph_id=served.graph_id,
                assistant_id=default_assistant_id(served.graph_id),
                kind="agent" if served.kind is not None else "graph",
                messages=served.has_messages,
                input_schema=schemas["input"],
                context_schema=schemas["context"],
            )
        )
    return AgentList(agents=agents, tools=registry.kinds.tool_names())
