"""Schedules: ``/v1/crons`` — create, list, read, change, delete an assistant run on a cron expression."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from chatplane.core.schedules import ScheduleService, ScheduleSpec
from chatplane.schedule_schemas import ScheduleCreate, ScheduleList, ScheduleOut, SchedulePatch, epoch
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.service.routes.threads import _ERRORS
from chatplane.storage.schedules import Schedule

router = APIRouter(prefix="/v1/crons", tags=["schedules"])
_PAYLOAD = ("message", "input", "config", "context", "multitask")


def schedule_out(schedule: Schedule) -> ScheduleOut:
    payload = schedule.payload
    return ScheduleOut(
        schedule_id=schedule.schedule_id,
        assistant_id=schedule.assistant_id,
        thread_id=schedule.thread_id,
        schedule=schedule.schedule,
        timezone=schedule.timezone,
        metadata=schedule.metadata,
        webhook=schedule.webhook,
        end_time=schedule.end_time,
        enabled=schedule.enabled,
        next_run_at=schedule.next_run_at,
        last_run_id=schedule.last_run_id,
        last_run_at=schedule.last_tick,
        last_error=schedule.last_error,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
        **{name: payload.get(name) for name in _PAYLOAD},
    )


def _service(agent: AgentDep, user: CurrentUser) -> ScheduleService:
    return ScheduleService(agent.services, user.id)


@router.post("", response_model=ScheduleOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_schedule(body: ScheduleCreate, agent: AgentDep, user: CurrentUser) -> ScheduleOut:
    """Run an assistant on a cron expression in a time zone, on one of your threads or a new thread each time."""
    spec = ScheduleSpec(
        schedule=body.schedule,
        timezone=body.timezone,
        assistant_id=body.assistant_id,
        thread_id=body.thread_id,
        payload={name: getattr(body, name) for name in _PAYLOAD},
        metadata=body.metadata,
        webhook=body.webhook,
        end_time=epoch(body.end_time),
        enabled=body.enabled,
    )
    return schedule_out(await _service(agent, user).create(spec))


@router.get("", response_model=ScheduleList, responses=_ERRORS)
async def list_schedules(
    agent: AgentDep,
    user: CurrentUser,
    assistant_id: str | None = None,
    thread_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ScheduleList:
    """Your schedules, oldest first."""
    found = await _service(agent, user).list(limit=limit, offset=offset, assistant_id=assistant_id, thread_id=thread_id)
    return ScheduleList(schedules=[schedule_out(s) for s in found])


@router.get("/{schedule_id}", response_model=ScheduleOut, responses=_ERRORS)
async def get_schedule(schedule_id: str, agent: AgentDep, user: CurrentUser) -> ScheduleOut:
    return schedule_out(await _service(agent, user).get(schedule_id))


@router.patch("/{schedule_id}", response_model=ScheduleOut, responses=_ERRORS)
async def update_schedule(schedule_id: str, body: SchedulePatch, agent: AgentDep, user: CurrentUser) -> ScheduleOut:
    """Change what is given; a new expression, time zone or end time (or enabling it again) counts from now."""
    given = body.model_fields_set
    spec = ScheduleSpec(
        schedule=body.schedule,
        timezone=body.timezone,
        payload={name: getattr(body, name) for name in _PAYLOAD if getattr(body, name) is not None},
        metadata=body.metadata,
        webhook=body.webhook,
        end_time=epoch(body.end_time),
        enabled=body.enabled,
    )
    clear_end = "end_time" in given and body.end_time is None
    return schedule_out(await _service(agent, user).update(schedule_id, spec, clear_end_time=clear_end))


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_schedule(schedule_id: str, agent: AgentDep, user: CurrentUser) -> Response:
    await _service(agent, user).delete(schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
