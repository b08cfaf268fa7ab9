"""Assistants: ``/v1/assistants`` — create, list, search, read, update (a new version), delete, list versions, pin
one. The graphs' defaults are listed for everyone and cannot be changed; a user's own are theirs alone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from chatplane.assistant_schemas import (
    MAX_PAGE,
    AssistantCreate,
    AssistantOut,
    AssistantPatch,
    AssistantPin,
    AssistantSearch,
)
from chatplane.schemas import ID_PATTERN, ErrorBody
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.storage.assistants import Assistant

router = APIRouter(prefix="/v1/assistants", tags=["assistants"])
_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (401, 404, 409, 422, 429, 503)}

AssistantPath = Annotated[
    str, Path(pattern=ID_PATTERN, description="An assistant's id, or a graph id (its default assistant).")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0)]


def assistant_out(assistant: Assistant) -> AssistantOut:
    return AssistantOut(
        assistant_id=assistant.assistant_id,
        graph_id=assistant.graph_id,
        name=assistant.name,
        description=assistant.description,
        config=assistant.config,
        context=assistant.context,
        metadata=assistant.metadata,
        version=assistant.version,
        created_at=assistant.created_at,
        updated_at=assistant.updated_at,
        default=assistant.is_default,
    )


@router.post("", response_model=AssistantOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_assistant(body: AssistantCreate, agent: AgentDep, user: CurrentUser) -> AssistantOut:
    """A new assistant of a graph, at version 1 (409 if you have one with that id, unless `if_exists: do_nothing`)."""
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
    return assistant_out(assistant)


@router.get("", response_model=list[AssistantOut], responses=_ERRORS)
async def list_assistants(
    agent: AgentDep,
    user: CurrentUser,
    graph_id: Annotated[str | None, Query(max_length=128, description="Only this graph's assistants.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AssistantOut]:
    """The graphs' default assistants, then yours, newest first."""
    found = await agent.for_user(user.id).assistants.search(graph_id=graph_id, limit=limit, offset=offset)
    return [assistant_out(a) for a in found]


@router.post("/search", response_model=list[AssistantOut], responses=_ERRORS)
async def search_assistants(body: AssistantSearch, agent: AgentDep, user: CurrentUser) -> list[AssistantOut]:
    """The default assistants, then yours (newest first), that match every filter given."""
    found = await agent.for_user(user.id).assistants.search(
        graph_id=body.graph_id, metadata=body.metadata, name=body.name, limit=body.limit, offset=body.offset
    )
    return [assistant_out(a) for a in found]


@router.get("/{assistant_id}", response_model=AssistantOut, responses=_ERRORS)
async def get_assistant(assistant_id: AssistantPath, agent: AgentDep, user: CurrentUser) -> AssistantOut:
    return assistant_out(await agent.for_user(user.id).assistants.resolve(assistant_id))


@router.patch("/{assistant_id}", response_model=AssistantOut, responses=_ERRORS)
async def update_assistant(
    assistant_id: AssistantPath, body: AssistantPatch, agent: AgentDep, user: CurrentUser
) -> AssistantOut:
    """A new version — the current one with the fields given (`metadata` merged, the others replaced) — made
    current. A default assistant cannot be changed (409)."""
    assistant = await agent.for_user(user.id).assistants.update(
        assistant_id,
        graph_id=body.graph_id,
        name=body.name,
        description=body.description,
        config=body.config,
        context=body.context,
        metadata=body.metadata,
    )
    return assistant_out(assistant)


@router.delete("/{assistant_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_assistant(assistant_id: AssistantPath, agent: AgentDep, user: CurrentUser) -> Response:
    """Delete the assistant with all its versions (a default assistant cannot be deleted: 409)."""
    await agent.for_user(user.id).assistants.delete(assistant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{assistant_id}/versions", response_model=list[AssistantOut], responses=_ERRORS)
async def list_versions(
    assistant_id: AssistantPath, agent: AgentDep, user: CurrentUser, limit: Limit = 10, offset: Offset = 0
) -> list[AssistantOut]:
    """The assistant's versions, newest first."""
    versions = await agent.for_user(user.id).assistants.versions(assistant_id, limit=limit, offset=offset)
    return [assistant_out(v) for v in versions]


@router.post("/{assistant_id}/latest", response_model=AssistantOut, responses=_ERRORS)
async def pin_version(
    assistant_id: AssistantPath, body: AssistantPin, agent: AgentDep, user: CurrentUser
) -> AssistantOut:
    """Make one of the assistant's versions its current one (later updates still number from the latest)."""
    return assistant_out(await agent.for_user(user.id).assistants.set_version(assistant_id, body.version))
