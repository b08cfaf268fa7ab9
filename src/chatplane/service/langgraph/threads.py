"""``/threads``: LangGraph's threads API on chatplane's threads — create, get, patch, delete, search, count, copy, state
(latest, at a checkpoint, with subgraphs), update state, history, prune.

A thread is its registry row (``ThreadViews``) with a ``status`` worked out from its runs and latest checkpoint,
its latest ``values`` (a messages graph's whole conversation, transcript included) and the ``interrupts`` its
tasks wait on. Another user's thread is the same 404 as a missing one. Fields chatplane does not take — ``extract``,
``include``, a ``ttl`` strategy other than ``delete`` — are a 422 naming them.
"""

from __future__ import annotations

import builtins
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from chatplane.assistant_schemas import MAX_PAGE, Metadata
from chatplane.core.thread_state import as_command
from chatplane.core.thread_status import ThreadStatus
from chatplane.core.thread_views import ThreadView
from chatplane.errors import InvalidInputError
from chatplane.schemas import ID_PATTERN
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.service.langgraph import branch_states
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.langgraph.shapes import checkpoint_dict, select, state_dict, thread_dict, thread_interrupts

router = langgraph_router("/threads")

Fields = list[str] | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a field chatplane does not take: a 422 naming it


class Ttl(_Body):
    ttl: float = Field(gt=0, description="Minutes after its creation the thread is deleted.")
    strategy: Literal["delete"] = "delete"


class SuperstepUpdate(_Body):
    values: dict[str, Any] | builtins.list[Any] | None = None
    command: dict[str, Any] | None = None
    as_node: str = Field(max_length=200)

    def update(self) -> tuple[Any, str]:
        """``(values or the Command, as_node)``, as LangGraph's ``StateUpdate`` takes it."""
        return (as_command(self.command) if self.command else self.values), self.as_node


class Superstep(_Body):
    updates: builtins.list[SuperstepUpdate] = Field(min_length=1, max_length=MAX_PAGE)


class ThreadCreate(_Body):
    thread_id: str | None = Field(None, pattern=ID_PATTERN)
    metadata: Metadata | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: Ttl | None = None
    supersteps: builtins.list[Superstep] | None = Field(None, max_length=MAX_PAGE)


class ThreadPrune(_Body):
    thread_ids: list[str] = Field(max_length=MAX_PAGE)
    strategy: Literal["delete", "keep_latest"] = "delete"


class ThreadPatch(_Body):
    metadata: Metadata


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = Field(None, max_length=MAX_PAGE)
    status: ThreadStatus | None = None
    limit: int = Field(10, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000_000)
    sort_by: Literal["thread_id", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: Fields = None


class ThreadCount(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: ThreadStatus | None = None


class Checkpoint(_Body):
    thread_id: str | None = None
    checkpoint_ns: str | None = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class StateAt(_Body):
    checkpoint: Checkpoint
    subgraphs: bool = False
    select: Fields = None


class StateUpdate(_Body):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = Field(None, max_length=200)
    checkpoint: Checkpoint | None = None
    checkpoint_id: str | None = None


class HistoryQuery(_Body):
    limit: int = Field(10, ge=1, le=MAX_PAGE)
    before: Checkpoint | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: Checkpoint | None = None
    select: Fields = None


def _out(view: ThreadView) -> dict[str, Any]:
    return thread_dict(view.thread, view.status, view.values, thread_interrupts(view.snapshot))


def _checkpoint(checkpoint: Checkpoint | None, checkpoint_id: str | None = None) -> dict[str, Any] | None:
    if checkpoint is None and checkpoint_id is None:
        return None
    fields = checkpoint.model_dump(exclude_none=True) if checkpoint is not None else {}
    return {**fields, "checkpoint_id": checkpoint_id} if checkpoint_id else fields


@router.post("")
async def create_thread(body: ThreadCreate, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    """A new thread (``metadata.graph_id``: the graph it talks to; else the server's default agent until its first
    run names one); ``supersteps``: its state written by them, in order, as ``update_state`` does (an existing
    thread returned by ``if_exists: do_nothing`` is left as it is)."""
    views = agent.for_user(user.id).thread_views
    ttl_s = body.ttl.ttl * 60 if body.ttl is not None else None
    steps = [[u.update() for u in step.updates] for step in body.supersteps or ()]
    thread = await views.create(
        thread_id=body.thread_id, metadata=body.metadata, if_exists=body.if_exists, ttl_s=ttl_s, supersteps=steps
    )
    return _out(await views.view(thread))


@router.post("/search")
async def search_threads(body: ThreadSearch, agent: AgentDep, user: CurrentUser) -> builtins.list[dict[str, Any]]:
    """The threads matching every filter, newest first unless ``sort_by`` / ``sort_order`` say otherwise."""
    found = await agent.for_user(user.id).thread_views.search(
        metadata=body.metadata,
        values=body.values,
        status=body.status,
        ids=body.ids,
        sort_by=body.sort_by or "created_at",
        descending=body.sort_order != "asc",
        limit=body.limit,
        offset=body.offset,
    )
    return [select(_out(v), body.select) for v in found]


@router.post("/count")
async def count_threads(body: ThreadCount, agent: AgentDep, user: CurrentUser) -> int:
    views = agent.for_user(user.id).thread_views
    return await views.count(metadata=body.metadata, values=body.values, status=body.status)


@router.post("/prune")
async def prune_threads(body: ThreadPrune, agent: AgentDep, user: CurrentUser) -> dict[str, int]:
    """Your threads among ``thread_ids``, deleted (``delete``) or kept with only their latest checkpoints
    (``keep_latest``; a thread with an active run is left as it is); any other id is skipped. ``pruned_count``."""
    threads = agent.for_user(user.id).threads
    pruned = await threads.prune(body.thread_ids, keep_latest=body.strategy == "keep_latest")
    return {"pruned_count": pruned}


@router.get("/{thread_id}")
async def get_thread(
    thread_id: str, agent: AgentDep, user: CurrentUser, include: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    if include:
        raise InvalidInputError("`include` is not supported.")
    return _out(await agent.for_user(user.id).thread_views.view(thread_id))


@router.patch("/{thread_id}", response_model=None)
async def update_thread(
    thread_id: str,
    body: ThreadPatch,
    agent: AgentDep,
    user: CurrentUser,
    prefer: Annotated[str | None, Header()] = None,
) -> dict[str, Any] | Response:
    """The thread's metadata, merged key by key (``Prefer: return=minimal``: nothing back)."""
    mine = agent.for_user(user.id)
    thread = await mine.threads.update(thread_id, metadata=body.metadata)
    if prefer and "return=minimal" in prefer:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _out(await mine.thread_views.view(thread))


@router.delete("/{thread_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_thread(thread_id: str, agent: AgentDep, user: CurrentUser) -> Response:
    """The thread with its state and runs (active runs are cancelled first)."""
    await agent.for_user(user.id).threads.delete(thread_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{thread_id}/copy")
async def copy_thread(thread_id: str, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    """A new thread with the thread's metadata, graph, every checkpoint and its messages (409 while a run is
    active on it)."""
    mine = agent.for_user(user.id)
    copied = await mine.thread_views.states.copy(await mine.threads.get(thread_id))
    return _out(await mine.thread_views.view(copied))


@router.get("/{thread_id}/state")
async def get_state(
    thread_id: str,
    agent: AgentDep,
    user: CurrentUser,
    subgraphs: Annotated[bool, Query()] = False,
    select_: Annotated[builtins.list[str] | None, Query(alias="select")] = None,
) -> dict[str, Any]:
    """The latest state (``values.messages``: the whole conversation); ``subgraphs``: paused subgraphs' states in
    their tasks."""
    views = agent.for_user(user.id).thread_views
    thread = await agent.for_user(user.id).threads.get(thread_id)
    values, snapshot = await views.states.latest(thread, subgraphs=subgraphs)
    return select(state_dict(snapshot, values), select_)


@router.post("/{thread_id}/state/checkpoint")
async def get_state_at(thread_id: str, body: StateAt, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    mine = agent.for_user(user.id)
    thread = await mine.threads.get(thread_id)
    point = branch_states.branch_point(body.checkpoint.checkpoint_id)
    if point is not None:
        return select(await branch_states.state_at(mine, thread_id, point), body.select)
    snapshot = await mine.thread_views.states.at(thread, _checkpoint(body.checkpoint) or {}, subgraphs=body.subgraphs)
    return select(state_dict(snapshot), body.select)


@router.get("/{thread_id}/state/{checkpoint_id}")
async def get_state_at_id(
    thread_id: str,
    checkpoint_id: str,
    agent: AgentDep,
    user: CurrentUser,
    subgraphs: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    mine = agent.for_user(user.id)
    thread = await mine.threads.get(thread_id)
    point = branch_states.branch_point(checkpoint_id)
    if point is not None:
        return await branch_states.state_at(mine, thread_id, point)
    return state_dict(await mine.thread_views.states.at(thread, {"checkpoint_id": checkpoint_id}, subgraphs=subgraphs))


@router.post("/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    """LangGraph's ``update_state``: ``values`` as if ``as_node`` returned them, on the latest checkpoint or the
    one named (a fork). 409 while a run is active on the thread."""
    mine = agent.for_user(user.id)
    thread = await mine.threads.get(thread_id)
    config = await mine.thread_views.states.update(
        thread, body.values, as_node=body.as_node, checkpoint=_checkpoint(body.checkpoint, body.checkpoint_id)
    )
    return {"checkpoint": checkpoint_dict(config)}


@router.post("/{thread_id}/history")
async def get_history(
    thread_id: str, body: HistoryQuery, agent: AgentDep, user: CurrentUser
) -> builtins.list[dict[str, Any]]:
    """The thread's states, newest first: ``limit``, older than ``before``, from ``checkpoint``, whose metadata has
    each key of ``metadata``."""
    mine = agent.for_user(user.id)
    thread = await mine.threads.get(thread_id)
    before = {"checkpoint_id": body.before} if isinstance(body.before, str) else _checkpoint(body.before)
    if body.checkpoint is None and not body.metadata:  # a messages graph's thread: its current branch, turn by turn
        states = await branch_states.thread_history(mine, thread, limit=body.limit, before=before)
        return [select(s, body.select) for s in states]
    snapshots = await mine.thread_views.states.history(
        thread, limit=body.limit, before=before, checkpoint=_checkpoint(body.checkpoint), metadata=body.metadata
    )
    return [select(state_dict(s), body.select) for s in snapshots]
