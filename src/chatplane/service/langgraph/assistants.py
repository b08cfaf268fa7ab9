"""``/assistants``: LangGraph's assistants API on chatplane's (``AssistantService``) — create, get, patch, delete,
search, count, versions, latest, schemas, graph, subgraphs.

Each graph's default assistant is there under LangGraph's own id (``uuid5``) and under its graph id, read-only; a
user's own assistants are theirs alone (another user's is the same 404 as a missing one). A field chatplane does
not take is a 422 naming it: ``delete_threads`` on delete, a version ``metadata`` filter that is not JSON.
"""

from __future__ import annotations

import builtins
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from chatplane.agents.inputs import jsonschema_of
from chatplane.assistant_schemas import MAX_PAGE, Config, Context, Metadata
from chatplane.core import UserServices
from chatplane.errors import InvalidInputError
from chatplane.schemas import ID_PATTERN
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.langgraph.shapes import assistant_dict, select, version_dict
from chatplane.storage.assistants import Assistant

router = langgraph_router("/assistants")

AssistantPath = Annotated[str, Path(pattern=ID_PATTERN)]
SortBy = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]
Field_ = Literal[
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "created_at",
    "updated_at",
    "metadata",
    "version",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a field chatplane does not take: a 422 naming it


class AssistantCreate(_Body):
    graph_id: str = Field(min_length=1, max_length=128)
    assistant_id: str | None = Field(None, pattern=ID_PATTERN)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    config: Config | None = None
    context: Context | None = None
    metadata: Metadata | None = None


class AssistantPatch(_Body):
    graph_id: str | None = Field(None, min_length=1, max_length=128)
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    config: Config | None = None
    context: Context | None = None
    metadata: Metadata | None = None


class AssistantFilter(_Body):
    graph_id: str | None = Field(None, max_length=128)
    metadata: dict[str, Any] | None = None
    name: str | None = Field(None, max_length=200)


class AssistantSearch(AssistantFilter):
    limit: int = Field(10, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000_000)
    sort_by: SortBy | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[Field_] | None = None


class VersionSearch(_Body):
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class LatestVersion(_Body):
    version: int = Field(ge=1)


async def _every(mine: UserServices, body: AssistantFilter) -> builtins.list[Assistant]:
    """Every assistant matching ``body``'s filters: the defaults, then the owner's (newest first)."""
    found: builtins.list[Assistant] = []
    while True:
        page = await mine.assistants.search(
            graph_id=body.graph_id, metadata=body.metadata, name=body.name, limit=MAX_PAGE, offset=len(found)
        )
        found += page
        if len(page) < MAX_PAGE:
            return found


@router.post("")
async def create_assistant(body: AssistantCreate, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    """A new assistant (version 1); an id you have is a 409 unless ``if_exists: do_nothing``."""
    assistant = await agent.for_user(user.id).assistants.create(
        body.graph_id,
        assistant_id=body.assistant_id,
        name=body.name,
        description=body.description,
        config=body.config,
        context=body.context,
        metadata=body.metadata,
        if_exists=body.if_exists,
    )
    return assistant_dict(assistant)


@router.post("/search")
async def search_assistants(
    body: AssistantSearch, agent: AgentDep, user: CurrentUser, response: Response
) -> builtins.list[dict[str, Any]]:
    """The assistants matching every filter; ``X-Pagination-Next`` names the next page's offset while one may
    follow. Unsorted: the defaults, then yours newest first."""
    mine = agent.for_user(user.id)
    if body.sort_by is None:
        page = await mine.assistants.search(
            graph_id=body.graph_id, metadata=body.metadata, name=body.name, limit=body.limit, offset=body.offset
        )
    else:
        every = [assistant_dict(a) for a in await _every(mine, body)]
        every.sort(key=lambda a: (a[body.sort_by or "created_at"], a["assistant_id"]), reverse=body.sort_order != "asc")
        if len(every) > body.offset + body.limit:
            response.headers["X-Pagination-Next"] = str(body.offset + body.limit)
        return [select(a, body.select) for a in every[body.offset : body.offset + body.limit]]
    if len(page) == body.limit:
        response.headers["X-Pagination-Next"] = str(body.offset + body.limit)
    return [select(assistant_dict(a), body.select) for a in page]


@router.post("/count")
async def count_assistants(body: AssistantFilter, agent: AgentDep, user: CurrentUser) -> int:
    return len(await _every(agent.for_user(user.id), body))


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: AssistantPath, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    return assistant_dict(await agent.for_user(user.id).assistants.resolve(assistant_id))


@router.patch("/{assistant_id}")
async def update_assistant(
    assistant_id: AssistantPath, body: AssistantPatch, agent: AgentDep, user: CurrentUser
) -> dict[str, Any]:
    """A new version made current: the fields given replace the current ones (``metadata`` merged key by key)."""
    assistant = await agent.for_user(user.id).assistants.update(
        assistant_id,
        graph_id=body.graph_id,
        name=body.name,
        description=body.description,
        config=body.config,
        context=body.context,
        metadata=body.metadata,
    )
    return assistant_dict(assistant)


@router.delete("/{assistant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_assistant(
    assistant_id: AssistantPath,
    agent: AgentDep,
    user: CurrentUser,
    delete_threads: Annotated[bool, Query()] = False,
) -> Response:
    """The assistant with all its versions. Its threads stay (``delete_threads`` is refused: delete them)."""
    if delete_threads:
        raise InvalidInputError("`delete_threads` is not supported: delete the threads themselves.")
    await agent.for_user(user.id).assistants.delete(assistant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{assistant_id}/versions")
async def list_versions(
    assistant_id: AssistantPath, body: VersionSearch, agent: AgentDep, user: CurrentUser
) -> builtins.list[dict[str, Any]]:
    """The assistant's versions, newest first, whose metadata has each key of ``metadata`` with that value."""
    mine = agent.for_user(user.id).assistants
    versions = await mine.versions(assistant_id, limit=MAX_PAGE)
    wanted = body.metadata or {}
    versions = [v for v in versions if all(k in v.metadata and v.metadata[k] == x for k, x in wanted.items())]
    return [version_dict(v) for v in versions[body.offset : body.offset + body.limit]]


@router.post("/{assistant_id}/latest")
async def set_latest(
    assistant_id: AssistantPath, body: LatestVersion, agent: AgentDep, user: CurrentUser
) -> dict[str, Any]:
    return assistant_dict(await agent.for_user(user.id).assistants.set_version(assistant_id, body.version))


@router.get("/{assistant_id}/schemas")
async def get_schemas(assistant_id: AssistantPath, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    """The assistant's graph's JSON schemas (``config_schema``: None — a run's config is LangGraph's own)."""
    assistant = await agent.for_user(user.id).assistants.resolve(assistant_id)
    schemas = agent.registry.schemas(assistant.graph_id)
    return {
        "graph_id": assistant.graph_id,
        "input_schema": schemas["input"],
        "output_schema": schemas["output"],
        "state_schema": schemas["state"],
        "config_schema": None,
        "context_schema": schemas["context"],
    }


def _xray(value: str) -> bool | int:
    """LangGraph's ``xray``: a boolean, or how many levels of subgraphs to draw."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.isdigit() and int(value) <= 64:
        return int(value)
    raise InvalidInputError("`xray` must be true, false or a number of levels.")


@router.get("/{assistant_id}/graph")
async def get_graph(
    assistant_id: AssistantPath, agent: AgentDep, user: CurrentUser, xray: Annotated[str, Query()] = "false"
) -> dict[str, Any]:
    """The assistant's graph drawn as LangGraph draws it (nodes and edges), subgraphs too with ``xray``."""
    assistant = await agent.for_user(user.id).assistants.resolve(assistant_id)
    graph = agent.registry.get(assistant.graph_id).sample
    drawn = await graph.aget_graph(xray=_xray(xray))
    result: dict[str, Any] = drawn.to_json()
    return result


@router.get("/{assistant_id}/subgraphs")
@router.get("/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs(
    assistant_id: AssistantPath,
    agent: AgentDep,
    user: CurrentUser,
    namespace: str | None = None,
    recurse: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """The graph's subgraphs by namespace, each with its schemas (empty for a graph without subgraphs)."""
    assistant = await agent.for_user(user.id).assistants.resolve(assistant_id)
    graph = agent.registry.get(assistant.graph_id).sample
    found: dict[str, Any] = {}
    async for ns, subgraph in graph.aget_subgraphs(namespace=namespace, recurse=recurse):
        found[ns] = {
            "graph_id": assistant.graph_id,
            "input_schema": jsonschema_of(subgraph, "input"),
            "output_schema": jsonschema_of(subgraph, "output"),
            "state_schema": jsonschema_of(subgraph, "state"),
            "config_schema": None,
            "context_schema": jsonschema_of(subgraph, "context"),
        }
    return found
