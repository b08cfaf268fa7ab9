"""``/runs/crons``, ``/threads/{id}/runs/crons``: LangGraph's crons API (``client.crons`` of ``langgraph-sdk``) on
chatplane's schedules (``chatplane.core.schedules``) — create (on a thread, or a new thread each run), update,
delete, search, count — with LangGraph's ``Cron`` shape.

Taken: ``schedule``, ``timezone``, ``assistant_id``, ``input``, ``config``, ``context``, ``metadata``, ``webhook``,
``end_time``, ``enabled``, ``multitask_strategy``, ``interrupt_before`` / ``interrupt_after`` (each run's static
breakpoints), ``on_run_completed`` (a cron that makes a thread per run: ``delete``, LangGraph's default, deletes it
once the run ends or pauses; ``keep``; a thread's cron has none, as in LangGraph); ``stream_mode``,
``stream_subgraphs`` and ``stream_resumable`` are accepted and have nothing to do (nobody streams a scheduled
run; its events can still be followed). Refused with a 422 naming them: ``checkpoint_during``, ``durability``, a
``metadata`` filter in a search.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Response, status
from pydantic import BaseModel, ConfigDict, Field

from chatplane.assistant_schemas import MAX_PAGE
from chatplane.core.schedules import ScheduleService, ScheduleSpec
from chatplane.errors import InvalidInputError
from chatplane.schedule_schemas import epoch
from chatplane.schemas import ID_PATTERN
from chatplane.service.deps import AgentDep, CurrentUser
from chatplane.service.langgraph.routing import langgraph_router
from chatplane.service.langgraph.run_body import assistant_id_of, breakpoints
from chatplane.service.langgraph.shapes import select
from chatplane.storage.schedules import SORTABLE, Schedule

router = langgraph_router()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    webhook: str | None = Field(None, max_length=2048)
    timezone: str | None = Field(None, max_length=64)
    enabled: bool | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    multitask_strategy: str | None = None
    stream_mode: Any = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    interrupt_before: Any = None
    interrupt_after: Any = None
    checkpoint_during: Any = None
    durability: Any = None

    def refuse_unsupported(self) -> None:
        for name in ("checkpoint_during", "durability"):
            if getattr(self, name) is not None:
                raise InvalidInputError(f"`{name}` is not supported for crons.")
        if self.multitask_strategy not in (None, "reject", "enqueue", "interrupt"):
            raise InvalidInputError("`multitask_strategy` must be reject, enqueue or interrupt.")

    def payload(self, *, stateless: bool = False) -> dict[str, Any]:
        """What each run is given. ``stateless`` (a new cron that makes a thread per run): ``on_run_completed``
        defaults to ``delete``, as LangGraph's does."""
        stops = {
            name: breakpoints(value, name) if value is not None else None
            for name, value in (("interrupt_before", self.interrupt_before), ("interrupt_after", self.interrupt_after))
        }
        return {
            "input": self.input,
            "config": self.config,
            "context": self.context,
            "multitask": self.multitask_strategy,
            "on_run_completed": self.on_run_completed or ("delete" if stateless else None),
            **{name: list(value) if isinstance(value, tuple) else value for name, value in stops.items()},
        }


class CronCreate(_Body):
    assistant_id: str = Field(pattern=ID_PATTERN)
    schedule: str = Field(max_length=200)
    end_time: datetime | None = None


class CronPatch(_Body):
    schedule: str | None = Field(None, max_length=200)
    end_time: datetime | None = None


class CronSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000_000)
    sort_by: str | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class CronCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: dict[str, Any] | None = None


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp is not None else None


def cron_shape(schedule: Schedule, graph_ids: Any) -> dict[str, Any]:
    """LangGraph's ``Cron``."""
    payload = schedule.payload
    keys = ("input", "config", "context", "interrupt_before", "interrupt_after")
    run_payload: dict[str, Any] = {k: payload[k] for k in keys if payload.get(k)}
    if payload.get("message") is not None:
        run_payload["input"] = {"messages": [{"role": "user", "content": payload["message"]}]}
    if payload.get("multitask"):
        run_payload["multitask_strategy"] = payload["multitask"]
    if schedule.webhook:
        run_payload["webhook"] = schedule.webhook
    return {
        "cron_id": schedule.schedule_id,
        "assistant_id": assistant_id_of(schedule.assistant_id, graph_ids),
        "thread_id": schedule.thread_id,
        "on_run_completed": payload.get("on_run_completed", "keep") if schedule.thread_id is None else None,
        "end_time": _iso(schedule.end_time),
        "schedule": schedule.schedule,
        "timezone": schedule.timezone,
        "created_at": _iso(schedule.created_at),
        "updated_at": _iso(schedule.updated_at),
        "payload": run_payload,
        "user_id": schedule.owner,
        "next_run_date": _iso(schedule.next_run_at),
        "metadata": schedule.metadata,
        "enabled": schedule.enabled,
    }


def _spec(body: CronCreate | CronPatch, *, stateless: bool = False, **fields: Any) -> ScheduleSpec:
    body.refuse_unsupported()
    return ScheduleSpec(
        schedule=body.schedule,
        timezone=body.timezone,
        payload=body.payload(stateless=stateless),
        metadata=body.metadata,
        webhook=body.webhook,
        end_time=epoch(body.end_time),
        enabled=body.enabled,
        **fields,
    )


async def _create(agent: AgentDep, user: CurrentUser, body: CronCreate, thread_id: str | None) -> dict[str, Any]:
    if body.input is None:
        raise InvalidInputError("`input` is required: what each scheduled run is given.")
    service = ScheduleService(agent.services, user.id)
    spec = _spec(body, stateless=thread_id is None, assistant_id=body.assistant_id, thread_id=thread_id)
    schedule = await service.create(spec)
    return cron_shape(schedule, agent.services.catalog)


@router.post("/runs/crons")
async def create_cron(body: CronCreate, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    """A cron whose every run gets a new thread."""
    return await _create(agent, user, body, None)


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(thread_id: str, body: CronCreate, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    """A cron whose runs go to the caller's thread ``thread_id``."""
    return await _create(agent, user, body, thread_id)


@router.patch("/runs/crons/{cron_id}")
async def update_cron(cron_id: str, body: CronPatch, agent: AgentDep, user: CurrentUser) -> dict[str, Any]:
    service = ScheduleService(agent.services, user.id)
    clear_end = "end_time" in body.model_fields_set and body.end_time is None
    schedule = await service.update(cron_id, _spec(body), clear_end_time=clear_end)
    return cron_shape(schedule, agent.services.catalog)


@router.delete("/runs/crons/{cron_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_cron(cron_id: str, agent: AgentDep, user: CurrentUser) -> Response:
    await ScheduleService(agent.services, user.id).delete(cron_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _filters(body: CronSearch | CronCount) -> dict[str, Any]:
    if body.metadata:
        raise InvalidInputError("`metadata` filters are not supported in a cron search.")
    return {"assistant_id": body.assistant_id, "thread_id": body.thread_id}


@router.post("/runs/crons/search")
async def search_crons(body: CronSearch, agent: AgentDep, user: CurrentUser) -> list[dict[str, Any]]:
    filters = _filters(body)
    if body.sort_by is not None and body.sort_by not in SORTABLE:
        raise InvalidInputError("`sort_by` must be one of " + ", ".join(sorted(SORTABLE)) + ".")
    service = ScheduleService(agent.services, user.id)
    found = await service.list(
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by or "created_at",
        descending=body.sort_order == "desc",
        enabled=body.enabled,
        **filters,
    )
    now = datetime.now(UTC).isoformat()
    return [select({**cron_shape(s, agent.services.catalog), "now": now}, body.select) for s in found]


@router.post("/runs/crons/count")
async def count_crons(body: CronCount, agent: AgentDep, user: CurrentUser) -> int:
    return await ScheduleService(agent.services, user.id).count(**_filters(body))
