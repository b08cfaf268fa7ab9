"""Schedules users keep (``ScheduleStore``), and the claims that let exactly one process run each due tick.

A schedule's row holds its next tick (``next_run_at``). A process *claims* due rows — on PostgreSQL with
``SELECT … FOR UPDATE SKIP LOCKED``, so processes polling together each get different rows and never wait on each
other; on SQLite (one process) inside a write transaction — by writing its worker id and a lease on them. It then
starts the tick's run and *settles* the claim: the next tick after now (a tick missed while every process was
down runs once, not once per missed tick), the lease cleared. A process that dies between claim and settle leaves a
lease that runs out; another process claims the same tick again, and the run's idempotency key (the schedule and
the tick) gives it the run the first one may have started rather than a second one.
"""

from __future__ import annotations

import builtins
import time
import uuid
from dataclasses import dataclass
from typing import Any

from chatplane.errors import ScheduleLimitError, ScheduleNotFoundError
from chatplane.storage import claims
from chatplane.storage.database import Database, Row, dumps, loads

_COLUMNS = (
    "schedule_id, owner, assistant_id, thread_id, schedule, timezone, payload, metadata, webhook, end_time, "
    "enabled, next_run_at, last_run_id, last_tick, last_error, created_at, updated_at"
)
_EDITABLE = frozenset({"schedule", "timezone", "payload", "metadata", "webhook", "end_time", "enabled", "next_run_at"})
SORTABLE = {
    "schedule_id": "schedule_id",
    "cron_id": "schedule_id",
    "assistant_id": "assistant_id",
    "thread_id": "thread_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "next_run_date": "next_run_at",
    "next_run_at": "next_run_at",
    "end_time": "end_time",
}


@dataclass(frozen=True)
class Schedule:
    schedule_id: str
    owner: str
    assistant_id: str
    thread_id: str | None
    """The thread every tick's run goes to; None: a new thread per tick."""
    schedule: str
    timezone: str
    payload: dict[str, Any]
    """What each run is asked: ``message`` or ``input``, ``config``, ``context``, ``multitask``."""
    metadata: dict[str, Any]
    webhook: str | None
    end_time: float | None
    enabled: bool
    next_run_at: float | None
    last_run_id: str | None
    last_tick: float | None
    last_error: str | None
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Row) -> Schedule:
        return cls(
            schedule_id=row["schedule_id"],
            owner=row["owner"],
            assistant_id=row["assistant_id"],
            thread_id=row["thread_id"],
            schedule=row["schedule"],
            timezone=row["timezone"],
            payload=loads(row["payload"]),
            metadata=loads(row["metadata"]),
            webhook=row["webhook"],
            end_time=row["end_time"],
            enabled=bool(row["enabled"]),
            next_run_at=row["next_run_at"],
            last_run_id=row["last_run_id"],
            last_tick=row["last_tick"],
            last_error=row["last_error"],
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )


def _encode(name: str, value: Any) -> Any:
    if name in ("payload", "metadata"):
        return dumps(value or {})
    if name == "enabled":
        return 1 if value else 0
    return value


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- the owner's schedules ------------------------------------------------------------------------------------
    async def create(self, owner: str, fields: dict[str, Any], *, cap: int) -> Schedule:
        """A new schedule of ``owner`` (``ScheduleLimitError`` once they keep ``cap``; 0 = no cap). ``fields``:
        assistant_id, thread_id, schedule, timezone, payload, metadata, webhook, end_time, enabled, next_run_at."""
        now = time.time()
        schedule_id = str(uuid.uuid4())
        values = {
            "schedule_id": schedule_id,
            "owner": owner,
            "assistant_id": fields["assistant_id"],
            "thread_id": fields.get("thread_id"),
            "schedule": fields["schedule"],
            "timezone": fields["timezone"],
            "payload": dumps(fields.get("payload") or {}),
            "metadata": dumps(fields.get("metadata") or {}),
            "webhook": fields.get("webhook"),
            "end_time": fields.get("end_time"),
            "enabled": 1 if fields.get("enabled", True) else 0,
            "next_run_at": fields.get("next_run_at"),
            "created_at": now,
            "updated_at": now,
        }
        names = ", ".join(values)
        placeholders = ", ".join(["%s"] * len(values))
        # The cap is checked in the insert itself: two creates racing for the last place cannot both get it
        # (on PostgreSQL a concurrent insert is not seen by the count, so both could — a cap, not a quota).
        inserted = await self.db.execute(
            f"INSERT INTO chatplane_schedules ({names}) SELECT {placeholders} "
            "WHERE %s = 0 OR (SELECT count(*) FROM chatplane_schedules WHERE owner = %s) < %s",
            (*values.values(), cap, owner, cap),
        )
        if not inserted:
            raise ScheduleLimitError(f"You have {cap} schedules, as many as a user may keep; delete one first.")
        return await self.get(schedule_id, owner)

    async def get(self, schedule_id: str, owner: str) -> Schedule:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM chatplane_schedules WHERE schedule_id = %s AND owner = %s", (schedule_id, owner)
        )
        if row is None:
            raise ScheduleNotFoundError()
        return Schedule.from_row(row)

    def _where(self, owner: str, filters: dict[str, Any]) -> tuple[str, builtins.list[Any]]:
        clauses: builtins.list[str] = ["owner = %s"]
        params: builtins.list[Any] = [owner]
        for name in ("assistant_id", "thread_id"):
            if filters.get(name) is not None:
                clauses.append(f"{name} = %s")
                params.append(filters[name])
        if filters.get("enabled") is not None:
            clauses.append("enabled = %s")
            params.append(1 if filters["enabled"] else 0)
        return " AND ".join(clauses), params

    async def list(
        self,
        owner: str,
        *,
        limit: int,
        offset: int = 0,
        sort_by: str = "created_at",
        descending: bool = False,
        **filters: Any,
    ) -> list[Schedule]:
        """The owner's schedules matching ``filters`` (assistant_id, thread_id, enabled), sorted by ``sort_by``."""
        where, params = self._where(owner, filters)
        column = SORTABLE.get(sort_by, "created_at")
        order = "DESC" if descending else "ASC"
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM chatplane_schedules WHERE {where} "
            f"ORDER BY {column} {order}, schedule_id {order} LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [Schedule.from_row(row) for row in rows]

    async def count(self, owner: str, **filters: Any) -> int:
        where, params = self._where(owner, filters)
        row = await self.db.fetchone(f"SELECT count(*) AS n FROM chatplane_schedules WHERE {where}", params)
        return int(row["n"]) if row else 0

    async def update(self, schedule_id: str, owner: str, changes: dict[str, Any]) -> Schedule:
        """Change ``changes`` (names in ``_EDITABLE``) of the owner's schedule; a claim in flight is left alone."""
        unknown = set(changes) - _EDITABLE
        assert not unknown, unknown
        sets = ", ".join(f"{name} = %s" for name in changes)
        params = [_encode(name, value) for name, value in changes.items()]
        changed = await self.db.execute(
            f"UPDATE chatplane_schedules SET {sets}, updated_at = %s WHERE schedule_id = %s AND owner = %s",
            (*params, time.time(), schedule_id, owner),
        )
        if not changed:
            raise ScheduleNotFoundError()
        return await self.get(schedule_id, owner)

    async def delete(self, schedule_id: str, owner: str) -> None:
        if not await self.db.execute(
            "DELETE FROM chatplane_schedules WHERE schedule_id = %s AND owner = %s", (schedule_id, owner)
        ):
            raise ScheduleNotFoundError()

    # --- claims ---------------------------------------------------------------------------------------------------
    async def claim_due(self, now: float, worker: str, lease_until: float, limit: int = 20) -> builtins.list[Schedule]:
        """Claim up to ``limit`` schedules due at ``now`` that no live lease holds: theirs to run, until
        ``lease_until``. Each comes back with ``next_run_at`` = the tick to run."""
        rows = await claims.claim_due(
            self.db,
            table="chatplane_schedules",
            key="schedule_id",
            columns=_COLUMNS,
            due="next_run_at <= %s AND enabled = 1",
            order_by="next_run_at",
            now=now,
            worker=worker,
            lease_until=lease_until,
            limit=limit,
        )
        return [Schedule.from_row(row) for row in rows]

    async def settle(
        self,
        schedule: Schedule,
        worker: str,
        *,
        next_run_at: float | None,
        run_id: str | None,
        error: str | None,
    ) -> bool:
        """Record the claimed tick's outcome (its run, or why none started) and move on to ``next_run_at`` (None:
        the schedule is over, and disabled). Only the claim's holder settles it, and only that tick: False if the
        schedule was deleted, changed to another tick, or claimed again meanwhile."""
        return bool(
            await self.db.execute(
                "UPDATE chatplane_schedules SET next_run_at = %s, enabled = enabled * %s, last_run_id = COALESCE(%s, "
                "last_run_id), last_tick = %s, last_error = %s, worker = NULL, lease_until = NULL "
                "WHERE schedule_id = %s AND worker = %s AND next_run_at = %s",
                (
                    next_run_at,
                    1 if next_run_at is not None else 0,
                    run_id,
                    schedule.next_run_at,
                    error,
                    schedule.schedule_id,
                    worker,
                    schedule.next_run_at,
                ),
            )
        )
