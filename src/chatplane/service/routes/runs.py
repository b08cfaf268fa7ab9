"""Runs: ``/v1/runs/{run_id}`` — status, re-attach to the stream, cancel, resume after approval."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from chatplane.errors import InvalidInputError
from chatplane.schemas import ResumeRequest, RunOut
from chatplane.service.deps import AgentDep, CurrentUser, RunAllowedUser, SettingsDep
from chatplane.service.routes.threads import _ERRORS, run_out
from chatplane.service.streaming import parse_last_event_id, run_event_stream

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.get("/{run_id}", response_model=RunOut, responses=_ERRORS)
async def get_run(run_id: str, agent: AgentDep, user: CurrentUser) -> RunOut:
    return run_out(await agent.for_user(user.id).runs.get(run_id))


@router.get(
    "/{run_id}/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Run events (SSE)"}, **_ERRORS},
)
async def stream_run(
    run_id: str,
    agent: AgentDep,
    user: CurrentUser,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(ge=0, description="Replay events after this id (or Last-Event-ID).")] = None,
) -> Response:
    """Re-attach: the events after ``Last-Event-ID`` (or ``after``), then live ones until the run ends."""
    mine = agent.for_user(user.id).runs
    run = await mine.get(run_id)
    start = after if after is not None else parse_last_event_id(last_event_id)
    return run_event_stream(mine.events(run, start), settings.sse_ping_s)


@router.post("/{run_id}/cancel", response_model=RunOut, responses=_ERRORS)
async def cancel_run(run_id: str, agent: AgentDep, user: CurrentUser) -> RunOut:
    """Stop the run now. What the model had generated is kept in the thread, marked ``cancelled``."""
    return run_out(await agent.for_user(user.id).runs.cancel(run_id))


@router.post("/{run_id}/retry", response_model=RunOut, status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def retry_run(run_id: str, agent: AgentDep, user: RunAllowedUser) -> RunOut:
    """Run a failed run again (a new run): the thread goes on from where it stopped — its message is already
    there. Follow it like any run."""
    return run_out(await agent.for_user(user.id).runs.retry(run_id))


@router.post("/{run_id}/resume", response_model=RunOut, status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def resume_run(run_id: str, body: ResumeRequest, agent: AgentDep, user: CurrentUser) -> RunOut:
    """Answer a run waiting for a human: ``decisions`` for tool approval (approve / edit / reject, one per pending
    tool call), or ``resume`` — what a graph's own ``interrupt(...)`` returns."""
    mine = agent.for_user(user.id).runs
    if body.decisions is not None:
        return run_out(await mine.resume(run_id, [d.model_dump(exclude_none=True) for d in body.decisions]))
    if "resume" not in body.model_fields_set:
        raise InvalidInputError("Send `decisions` (tool approval) or `resume` (a graph's interrupt).")
    return run_out(await mine.resume(run_id, value=body.resume))
