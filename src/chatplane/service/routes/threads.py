"""Threads: ``/v1/threads`` — create, list, read, rename, delete, read messages; start runs on them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from chatplane.agent import raise_if_unsuccessful
from chatplane.core.run_input import RunInput
from chatplane.errors import error_from_code
from chatplane.messages import message_to_wire
from chatplane.runs import Run
from chatplane.runs.jsonable import to_jsonable
from chatplane.schemas import (
    ErrorBody,
    Message,
    MessageList,
    RunCreate,
    RunError,
    RunOut,
    ThreadCreate,
    ThreadList,
    ThreadOut,
    ThreadPatch,
    ThreadState,
)
from chatplane.service.deps import AgentDep, CurrentUser, IdempotencyKeyHeader, RunAllowedUser, SettingsDep
from chatplane.service.streaming import run_event_stream
from chatplane.storage.threads import Thread

router = APIRouter(prefix="/v1/threads", tags=["threads"])
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409, 422, 429, 502, 503, 504)
}


def run_input(body: RunCreate) -> RunInput:
    """What a run is asked to do, as the core checks it against the thread's graph."""
    return RunInput(
        message=body.message,
        input=body.input,
        context=body.context,
        config=body.config,
        command=body.command.model_dump(exclude_unset=True) if body.command is not None else None,
        stream_mode=tuple(body.stream_mode),
        stream_subgraphs=body.stream_subgraphs,
        interrupt_before=_nodes(body.interrupt_before),
        interrupt_after=_nodes(body.interrupt_after),
        durability=body.durability,
    )


def _nodes(nodes: list[str] | str | None) -> tuple[str, ...] | Literal["*"]:
    return "*" if nodes == "*" else tuple(nodes or ())


def thread_out(thread: Thread) -> ThreadOut:
    return ThreadOut.model_validate(thread, from_attributes=True)


def run_out(run: Run, output: Message | None = None) -> RunOut:
    error = None
    if run.error_code:
        error = RunError(code=run.error_code, message=error_from_code(run.error_code).message)
    return RunOut(
        run_id=run.run_id,
        thread_id=run.thread_id,
        agent=run.agent,
        status=run.status,
        multitask=run.multitask,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        usage=run.usage,
        error=error,
        output=output,
    )


@router.post("", response_model=ThreadOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_thread(body: ThreadCreate, agent: AgentDep, user: CurrentUser) -> ThreadOut:
    thread = await agent.for_user(user.id).threads.create(
        agent=body.agent, title=body.title, metadata=body.metadata, ttl_days=body.ttl_days, model=body.model
    )
    return thread_out(thread)


@router.get("", response_model=ThreadList)
async def list_threads(
    agent: AgentDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ThreadList:
    """Your threads, newest first."""
    threads, next_cursor = await agent.for_user(user.id).threads.list(limit=limit, cursor=cursor)
    return ThreadList(threads=[thread_out(t) for t in threads], next_cursor=next_cursor)


@router.get("/{thread_id}", response_model=ThreadOut, responses=_ERRORS)
async def get_thread(thread_id: str, agent: AgentDep, user: CurrentUser) -> ThreadOut:
    return thread_out(await agent.for_user(user.id).threads.get(thread_id))


@router.patch("/{thread_id}", response_model=ThreadOut, responses=_ERRORS)
async def update_thread(thread_id: str, body: ThreadPatch, agent: AgentDep, user: CurrentUser) -> ThreadOut:
    mine = agent.for_user(user.id).threads
    return thread_out(await mine.update(thread_id, title=body.title, metadata=body.metadata))


@router.delete("/{thread_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_thread(thread_id: str, agent: AgentDep, user: CurrentUser) -> Response:
    """Delete the thread with its messages and runs (active runs are cancelled first)."""
    await agent.for_user(user.id).threads.delete(thread_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{thread_id}/messages", response_model=MessageList, responses=_ERRORS)
async def list_messages(
    thread_id: str,
    agent: AgentDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,9}$")] = None,
) -> MessageList:
    """The thread's messages, oldest first, ``limit`` at a time."""
    messages = await agent.for_user(user.id).threads.messages(thread_id)
    start = int(cursor or 0)
    page = messages[start : start + limit]
    next_cursor = str(start + limit) if start + limit < len(messages) else None
    return MessageList(messages=[message_to_wire(m) for m in page], next_cursor=next_cursor)


@router.get("/{thread_id}/runs", response_model=list[RunOut], responses=_ERRORS)
async def list_runs(thread_id: str, agent: AgentDep, user: CurrentUser) -> list[RunOut]:
    """The thread's latest runs, newest first."""
    return [run_out(r) for r in await agent.for_user(user.id).threads.runs(thread_id)]


@router.post(
    "/{thread_id}/runs",
    response_model=RunOut,
    responses={202: {"model": RunOut, "description": "Accepted (background: true)"}, **_ERRORS},
)
async def create_run(
    thread_id: str,
    body: RunCreate,
    agent: AgentDep,
    user: RunAllowedUser,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RunOut:
    """Send a message. Waits for the answer, or with ``background: true`` answers 202 at once (a waited-for run
    streams no ``token`` events: the model gives its answer whole)."""
    mine = agent.for_user(user.id)
    run = await mine.runs.send(
        thread_id,
        run_input(body),
        multitask=body.multitask,
        stream_tokens=body.background,
        agent=body.assistant_id,
        idempotency_key=idempotency_key,
        bind=body.assistant_id is not None,  # a thread no run was made on yet takes this assistant
        webhook=body.webhook,
    )
    if body.background:
        response.status_code = status.HTTP_202_ACCEPTED
        return run_out(run)
    last, answer = await mine.runs.outcome(run)
    if last is not None and last.type == "run_failed":
        # The error the run's event carries: its row may not say so (a database that failed as it was recorded).
        raise_if_unsuccessful(last)
    out = run_out(await mine.runs.get(run.run_id), Message(**answer) if answer else None)
    if answer is None and body.message is None:  # a graph's own input: its state is what it gave
        out.values = to_jsonable((await mine.threads.state(thread_id))[0])
    return out


@router.post(
    "/{thread_id}/runs/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Run events (SSE)"}, **_ERRORS},
)
async def create_run_stream(
    thread_id: str,
    body: RunCreate,
    agent: AgentDep,
    user: RunAllowedUser,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Send a message and stream the run's events. Disconnecting does not stop the run: re-attach with
    ``GET /v1/runs/{run_id}/stream`` and ``Last-Event-ID``."""
    mine = agent.for_user(user.id)
    run = await mine.runs.send(
        thread_id,
        run_input(body),
        multitask=body.multitask,
        agent=body.assistant_id,
        idempotency_key=idempotency_key,
        bind=body.assistant_id is not None,  # a thread no run was made on yet takes this assistant
        webhook=body.webhook,
    )
    return run_event_stream(mine.runs.events(run, run.resumed_after), settings.sse_ping_s)


@router.get("/{thread_id}/state", response_model=ThreadState, responses=_ERRORS)
async def get_state(thread_id: str, agent: AgentDep, user: CurrentUser) -> ThreadState:
    """The thread's latest state — for any graph, with or without messages — and what a paused run waits for."""
    values, snapshot = await agent.for_user(user.id).threads.state(thread_id)
    config = getattr(snapshot, "config", None) or {}
    interrupts = [to_jsonable(i) for i in getattr(snapshot, "interrupts", ()) or ()]
    return ThreadState(
        values=to_jsonable(values),
        next=list(getattr(snapshot, "next", ()) or ()),
        interrupts=interrupts,
        checkpoint_id=config.get("configurable", {}).get("checkpoint_id"),
        created_at=getattr(snapshot, "created_at", None),
    )
