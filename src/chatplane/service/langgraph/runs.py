"""LangGraph's runs on a thread: ``/threads/{thread_id}/runs`` — create, stream, wait, list, get, delete, cancel,
join, join the stream. Stateless runs (``/runs``) are in ``stateless``.

A run goes through ``RunService.send`` like any other (the thread must talk to ``assistant_id``; the multitask
strategy decides when the thread is busy); its stream is LangGraph's parts (``stream``). Responses carry LangGraph's
``Content-Location`` (the run) and ``Location`` (where to reconnect: the run's stream, or its ``join``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Header, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from chatplane.core import UserServices
from chatplane.errors import RunNotFoundError
from chatplane.runs.jsonable import to_jsonable
from chatplane.service.deps import AgentDep, CurrentUser, IdempotencyKeyHeader, RunAllowedUser, SettingsDep
from chatplane.service.langgraph.branch_states import run_point
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.langgraph.run_body import LangGraphRunCreate, langgraph_status, run_shape
from chatplane.service.langgraph.shapes import ValuesResponse
from chatplane.service.langgraph.stream import (
    Part,
    PartTranslator,
    follow,
    lg_parts,
    parse_cursor,
    sse_response,
    stream_modes,
)
from chatplane.storage.runs import Run

router = langgraph_router()


def own_modes(run: Run) -> list[str]:
    """The LangGraph stream modes ``run`` was started with (``messages-tuple`` for its messages)."""
    return ["messages-tuple" if m == "messages" else m for m in run.input.get("stream_mode") or ["values"]]


def run_path(run: Run) -> str:
    return f"/threads/{run.thread_id}/runs/{run.run_id}"


async def start_run(
    mine: UserServices, thread_id: str, body: LangGraphRunCreate, idempotency_key: str | None = None
) -> tuple[Run, int]:
    """A new run of ``body`` on the owner's thread (created first for ``if_not_exists: create``), or the run the
    thread waits on, resumed by its ``command``; the event id to follow it after.

    The model streams token by token only when a part asks for tokens (``messages``, ``messages-tuple``): a run
    that is waited for, or streams only ``values`` / ``updates``, gets each answer whole — streaming every token
    to nobody costs a good part of a turn (as for ``/v1``'s waited runs)."""
    create_as = body.assistant_id if body.if_not_exists == "create" else None
    point = run_point(body.checkpoint, body.checkpoint_id, thread_id)
    if point is not None:  # a new branch from a point of the thread's history (chatplane.core.branches)
        run = await mine.branches.run_from(
            thread_id,
            point,
            body.run_input(from_checkpoint=True),
            multitask=body.multitask(),
            agent=body.assistant_id,
            idempotency_key=idempotency_key,
            stream_tokens=bool({"messages", "messages-tuple"} & set(body.modes())),
        )
        return run, run.resumed_after
    run = await mine.runs.send(
        thread_id,
        body.run_input(),
        multitask=body.multitask(),
        agent=body.assistant_id,
        create_as=create_as,
        idempotency_key=idempotency_key,
        stream_tokens=bool({"messages", "messages-tuple"} & set(body.modes())),
        bind=True,  # a thread created without a graph takes this one at its first run
        webhook=body.webhook,
        delay_s=body.after_seconds or 0,
    )
    return run, run.resumed_after


async def run_values(mine: UserServices, run: Run, after: int = 0) -> dict[str, Any]:
    """Once the run ends or pauses: its thread's values (with ``__interrupt__`` when it waits, as LangGraph's last
    ``values`` part has it), or ``{"__error__": {"error", "message"}}`` if it failed."""
    last = None
    async for event in follow(mine.runs, run, after):  # from ``after``: a resumed run's old pause is not its end
        last = event
    if last is not None and last.type == "run_failed":
        error = last.data.get("error") or {}
        return {"__error__": {"error": error.get("code", "error"), "message": error.get("message", "")}}
    # A messages graph's values are the whole conversation (its earlier turns are in the thread's transcript).
    final = mine.runs.final_values(run) if last is not None and last.type == "run_completed" else None
    if final is not None:  # it ran here: the values it ended with, not read back from its checkpoint
        return await mine.thread_views.states.as_json(run.thread_id, final.values, final.has_messages)
    values, snapshot = await mine.thread_views.states.latest(await mine.threads.get(run.thread_id))
    out: dict[str, Any] = to_jsonable(values)
    interrupts = getattr(snapshot, "interrupts", ()) or ()
    if interrupts:
        out["__interrupt__"] = [to_jsonable(i) for i in interrupts]
    return out


def stream_response(
    mine: UserServices,
    run: Run,
    modes: tuple[str, ...],
    ping_s: float,
    *,
    after: int = 0,
    cursor: tuple[int, int] | None = None,
    cancel_on_disconnect: bool = False,
) -> Response:
    """The run's parts as SSE, with the headers the SDK reconnects by (``Location``: this stream again, with its
    modes; it sends ``Last-Event-ID``)."""
    translator = PartTranslator(modes, run.run_id)
    if cursor is None:
        start = after
    else:  # resumed: from the client's last part (``messages`` accumulates from the first: from there)
        start = 0 if "messages" in modes else max(cursor[0] - 1, 0)
    parts = lg_parts(follow(mine.runs, run, start), translator, cursor, after)
    if cancel_on_disconnect:
        parts = _cancel_on_close(parts, mine, run)
    query = urlencode([("stream_mode", m) for m in modes])
    headers = {"Location": f"{run_path(run)}/stream?{query}", "Content-Location": run_path(run)}
    return sse_response(parts, ping_s, headers)


async def _cancel_on_close(parts: AsyncIterator[Part], mine: UserServices, run: Run) -> AsyncIterator[Part]:
    """``on_disconnect: cancel``: a client gone before the run ended cancels it."""
    ended = False
    try:
        async for part in parts:
            yield part
        ended = True
    finally:
        if not ended:
            with contextlib.suppress(Exception):
                await asyncio.shield(mine.runs.cancel(run.run_id))


async def _thread_run(mine: UserServices, thread_id: str, run_id: str) -> Run:
    run = await mine.runs.get(run_id)
    if run.thread_id != thread_id:
        raise RunNotFoundError()
    return run


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: str,
    body: LangGraphRunCreate,
    agent: AgentDep,
    user: RunAllowedUser,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Start a run in the background; follow it with ``join`` or its ``stream``."""
    mine = agent.for_user(user.id)
    body.modes()
    run, _ = await start_run(mine, thread_id, body, idempotency_key)
    response.headers["Content-Location"] = run_path(run)
    return run_shape(run, agent.services.catalog)


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(
    thread_id: str,
    body: LangGraphRunCreate,
    agent: AgentDep,
    user: RunAllowedUser,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Start a run and stream its parts. Disconnecting leaves it running (``on_disconnect: continue``) unless
    ``on_disconnect: cancel``."""
    mine = agent.for_user(user.id)
    modes = body.modes()
    run, after = await start_run(mine, thread_id, body, idempotency_key)
    cancel = body.on_disconnect == "cancel"
    return stream_response(mine, run, modes, settings.sse_ping_s, after=after, cancel_on_disconnect=cancel)


@router.post("/threads/{thread_id}/runs/wait", response_class=ValuesResponse)
async def wait_run(
    thread_id: str,
    body: LangGraphRunCreate,
    agent: AgentDep,
    user: RunAllowedUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ValuesResponse:
    """Start a run and answer with the thread's values once it ends or pauses."""
    mine = agent.for_user(user.id)
    body.modes()
    run, after = await start_run(mine, thread_id, body, idempotency_key)
    values = await _wait(mine, run, after, cancel=body.on_disconnect == "cancel")
    return ValuesResponse(values, headers={"Content-Location": run_path(run), "Location": f"{run_path(run)}/join"})


async def _wait(mine: UserServices, run: Run, after: int, *, cancel: bool) -> dict[str, Any]:
    """``run_values``; a client gone meanwhile cancels the run with ``on_disconnect: cancel``."""
    try:
        return await run_values(mine, run, after)
    except asyncio.CancelledError:
        if cancel:
            with contextlib.suppress(Exception):
                await asyncio.shield(mine.runs.cancel(run.run_id))
        raise


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    agent: AgentDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: Annotated[str | None, Query()] = None,
    select: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first; ``status`` in LangGraph's terms."""
    fetch = 1000 if status is not None else min(offset + limit, 1000)
    runs = await agent.for_user(user.id).threads.runs(thread_id, limit=fetch)
    if status is not None:
        runs = [r for r in runs if langgraph_status(r.status) == status]
    shapes = [run_shape(r, agent.services.catalog) for r in runs[offset : offset + limit]]
    return [{k: v for k, v in s.items() if k in select} for s in shapes] if select else shapes


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    return run_shape(await _thread_run(agent.for_user(user.id), thread_id, run_id), agent.services.catalog)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_run(thread_id: str, run_id: str, agent: AgentDep, user: CurrentUser) -> Response:
    """Forget a finished run (a 409 while it is active)."""
    mine = agent.for_user(user.id)
    await mine.runs.delete(await _thread_run(mine, thread_id, run_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str,
    run_id: str,
    agent: AgentDep,
    user: CurrentUser,
    wait: Annotated[bool, Query()] = False,
    action: Annotated[Literal["interrupt", "rollback"], Query()] = "interrupt",
) -> Response:
    """Cancel the run: ``interrupt`` keeps what it did so far; ``rollback`` undoes it (its checkpoints, then its
    record, are deleted: the thread is as before it). ``wait``: answer once it has stopped."""
    mine = agent.for_user(user.id)
    roll_back = action == "rollback"
    run = await mine.runs.cancel(await _thread_run(mine, thread_id, run_id), roll_back=roll_back)
    if wait and not roll_back:  # a rolled-back run has no record left to show
        return JSONResponse(run_shape(run, agent.services.catalog))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/threads/{thread_id}/runs/{run_id}/join", response_class=ValuesResponse)
async def join_run(thread_id: str, run_id: str, agent: AgentDep, user: CurrentUser) -> ValuesResponse:
    """Wait for the run to end or pause: the thread's values."""
    mine = agent.for_user(user.id)
    return ValuesResponse(await run_values(mine, await _thread_run(mine, thread_id, run_id)))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    agent: AgentDep,
    user: CurrentUser,
    settings: SettingsDep,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    cancel_on_disconnect: bool = False,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """Join the run's stream: the parts after ``Last-Event-ID`` (every one without it), then live ones.
    ``stream_mode`` defaults to the run's own (``messages-tuple`` for its messages)."""
    mine = agent.for_user(user.id)
    run = await _thread_run(mine, thread_id, run_id)
    asked = [m for m in stream_mode or () if m]  # the SDK sends ``stream_mode=`` for none
    modes = stream_modes(asked or own_modes(run))
    cursor = parse_cursor(last_event_id)
    cancel = cancel_on_disconnect
    return stream_response(mine, run, modes, settings.sse_ping_s, cursor=cursor, cancel_on_disconnect=cancel)


class RunsCancel(BaseModel):
    """``POST /runs/cancel`` (``client.runs.cancel_many``)."""

    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = None
    run_ids: list[str] | None = Field(None, max_length=1000)
    status: Literal["pending", "running", "all"] | None = None


@router.post("/runs/cancel", status_code=status.HTTP_204_NO_CONTENT)
async def cancel_runs(
    body: RunsCancel,
    agent: AgentDep,
    user: CurrentUser,
    action: Annotated[Literal["interrupt", "rollback"], Query()] = "interrupt",
) -> Response:
    """Cancel several of the caller's runs: ``run_ids`` of ``thread_id``, or every one with ``status`` (``pending``,
    ``running``, or ``all`` of the active ones); ``action`` as for one run."""
    await agent.for_user(user.id).runs.cancel_many(
        thread_id=body.thread_id, run_ids=body.run_ids, status=body.status, roll_back=action == "rollback"
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
