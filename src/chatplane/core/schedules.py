"""A user's schedules (crons): create, read, list, change, delete — and what one tick of a schedule runs.

A schedule runs an assistant on a cron expression in an IANA time zone, on one of the owner's threads or on a new
thread each tick, until its end time. Its runs are ordinary runs of its owner, accepted through ``RunService``: the
same checks, limits, usage and webhooks as any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from chatplane.core.run_input import RunInput
from chatplane.core.runs import RunService
from chatplane.core.services import Services
from chatplane.errors import InvalidInputError
from chatplane.schedules.expression import check_schedule, check_timezone, next_tick
from chatplane.storage.runs import Multitask, Run
from chatplane.storage.schedules import Schedule, ScheduleStore
from chatplane.webhooks.guard import check_webhook_url

_THREAD_NAMESPACE = uuid.UUID("5f3c1f0e-8a43-4f6e-9d0b-6a1e2c7c2a91")
_MULTITASK = ("reject", "enqueue", "interrupt")
_cleanups: set[asyncio.Task[None]] = set()
"""Deletions of ticks' threads waiting for their run (held so that they are not collected midway)."""


@dataclass
class ScheduleSpec:
    """What a schedule is made of, as a caller gives it (``None``: not given)."""

    schedule: str | None = None
    timezone: str | None = None
    assistant_id: str | None = None
    thread_id: str | None = None
    payload: dict[str, Any] | None = None
    """``message`` or ``input``, ``config``, ``context``, ``metadata`` (the runs'), ``multitask``."""
    metadata: dict[str, Any] | None = None
    webhook: str | None = None
    end_time: float | None = None
    enabled: bool | None = None


def tick_thread_id(schedule_id: str, tick: float) -> str:
    """The new thread of one tick of a schedule that makes one per tick: the same for the same tick, so a tick run
    again after a lost claim finds the thread (and the run) the first attempt made."""
    return str(uuid.uuid5(_THREAD_NAMESPACE, f"{schedule_id}:{tick:.3f}"))


def first_tick(schedule: str, timezone: str, end_time: float | None, now: float) -> float | None:
    tick = next_tick(schedule, timezone, now)
    return None if tick is None or (end_time is not None and tick > end_time) else tick


class ScheduleService:
    """``owner``'s schedules: another user's is a 404 here, the same as a missing one."""

    def __init__(self, services: Services, owner: str) -> None:
        self._services = services
        self.store = ScheduleStore(services.storage.db)
        self.owner = owner

    def _check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("message", "input") if payload.get(name) is not None]
        if len(given) != 1:
            raise InvalidInputError("A schedule's run takes one of `message` or `input`.")
        multitask = payload.get("multitask")
        if multitask is not None and multitask not in _MULTITASK:
            raise InvalidInputError("`multitask` must be reject, enqueue or interrupt.")
        return {k: v for k, v in payload.items() if v is not None}

    async def create(self, spec: ScheduleSpec) -> Schedule:
        settings = self._services.settings
        if spec.schedule is None:
            raise InvalidInputError("`schedule` is required.")
        expression = check_schedule(spec.schedule)
        timezone = check_timezone(spec.timezone)
        assistant_id = spec.assistant_id or settings.default_agent
        await self._services.targets.thread_agent(assistant_id, self.owner)  # a 422 if the owner has no such one
        if spec.thread_id is not None:
            await self._services.storage.threads.get(spec.thread_id, self.owner)  # a 404 unless it is theirs
        webhook = self._webhook(spec.webhook)
        payload = self._check_payload(spec.payload or {})
        now = time.time()
        if spec.end_time is not None and spec.end_time <= now:
            raise InvalidInputError("`end_time` must be in the future.")
        enabled = spec.enabled if spec.enabled is not None else True
        return await self.store.create(
            self.owner,
            {
                "assistant_id": assistant_id,
                "thread_id": spec.thread_id,
                "schedule": expression,
                "timezone": timezone,
                "payload": payload,
                "metadata": spec.metadata or {},
                "webhook": webhook,
                "end_time": spec.end_time,
                "enabled": enabled,
                "next_run_at": first_tick(expression, timezone, spec.end_time, now),
            },
            cap=settings.max_schedules_per_user,
        )

    def _webhook(self, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        return check_webhook_url(url, production=self._services.settings.env == "production")

    async def get(self, schedule_id: str) -> Schedule:
        return await self.store.get(schedule_id, self.owner)

    async def list(
        self, *, limit: int, offset: int = 0, sort_by: str = "created_at", descending: bool = False, **filters: Any
    ) -> list[Schedule]:
        return await self.store.list(
            self.owner, limit=limit, offset=offset, sort_by=sort_by, descending=descending, **filters
        )

    async def count(self, **filters: Any) -> int:
        return await self.store.count(self.owner, **filters)

    async def update(self, schedule_id: str, spec: ScheduleSpec, *, clear_end_time: bool = False) -> Schedule:
        """Change what ``spec`` gives; a new expression, time zone, end time or re-enabling moves the next tick to
        the first one from now. ``clear_end_time``: the schedule no longer ends."""
        current = await self.get(schedule_id)
        changes: dict[str, Any] = {}
        if spec.schedule is not None:
            changes["schedule"] = check_schedule(spec.schedule)
        if spec.timezone is not None:
            changes["timezone"] = check_timezone(spec.timezone)
        given = {name: value for name, value in (spec.payload or {}).items() if value is not None}
        if given:
            merged = {**current.payload, **given}
            if "message" in given:
                merged.pop("input", None)
            if "input" in given:
                merged.pop("message", None)
            changes["payload"] = self._check_payload(merged)
        if spec.metadata is not None:
            changes["metadata"] = {**current.metadata, **spec.metadata}
        if spec.webhook is not None:
            changes["webhook"] = self._webhook(spec.webhook)
        if spec.end_time is not None or clear_end_time:
            if spec.end_time is not None and spec.end_time <= time.time():
                raise InvalidInputError("`end_time` must be in the future.")
            changes["end_time"] = spec.end_time
        if spec.enabled is not None:
            changes["enabled"] = spec.enabled
        if {"schedule", "timezone", "end_time"} & set(changes) or (spec.enabled and not current.enabled):
            changes["next_run_at"] = first_tick(
                changes.get("schedule", current.schedule),
                changes.get("timezone", current.timezone),
                changes.get("end_time", current.end_time),
                time.time(),
            )
        if not changes:
            return current
        return await self.store.update(schedule_id, self.owner, changes)

    async def delete(self, schedule_id: str) -> None:
        await self.store.delete(schedule_id, self.owner)


async def start_tick(services: Services, schedule: Schedule, tick: float) -> str:
    """Start the run of ``schedule``'s tick at ``tick`` as its owner; its run id. Run again for the same tick (a
    claim lost midway), it returns the run the first call started: the idempotency key is the schedule and tick."""
    payload = schedule.payload
    metadata = {**(payload.get("metadata") or {}), "schedule_id": schedule.schedule_id, "schedule_tick": tick}
    request = RunInput(
        message=payload.get("message"),
        input=payload.get("input"),
        config=payload.get("config"),
        context=payload.get("context"),
        metadata=metadata,
        interrupt_before=_nodes(payload.get("interrupt_before")),
        interrupt_after=_nodes(payload.get("interrupt_after")),
    )
    multitask: Multitask = payload.get("multitask") or "enqueue"
    runs = RunService(services, schedule.owner)
    new_thread = schedule.thread_id is None
    run = await runs.send(
        schedule.thread_id or tick_thread_id(schedule.schedule_id, tick),
        request,
        multitask=multitask,
        stream_tokens=False,
        agent=schedule.assistant_id,
        create_as=schedule.assistant_id if new_thread else None,
        idempotency_key=f"schedule-{schedule.schedule_id}-{int(tick * 1000)}",
        webhook=schedule.webhook,
    )
    if new_thread and payload.get("on_run_completed") == "delete":
        _delete_when_done(services, runs, run)
    return run.run_id


def _nodes(value: Any) -> tuple[str, ...] | Literal["*"]:
    """A stored breakpoint list (``"*"``, or node names) as ``RunInput`` takes it."""
    return "*" if value == "*" else tuple(value or ())


def _delete_when_done(services: Services, runs: RunService, run: Run) -> None:
    """``on_run_completed: delete``: the run's new thread deleted once the run ends or pauses, as a stateless run's
    is (by this process: one that stops before leaves the thread)."""

    async def delete() -> None:
        with contextlib.suppress(Exception):
            async for _ in runs.events(run):
                pass
            await services.delete_thread(run.thread_id)

    task = asyncio.get_running_loop().create_task(delete(), name="schedule-thread-cleanup")
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)
