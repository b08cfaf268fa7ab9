"""Wire shapes of ``/v1/crons`` (schedules) and of webhooks, shared by the service and the SDK."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatplane.schemas import ID_PATTERN

Multitask = Literal["reject", "enqueue", "interrupt"]

_SCHEDULE = (
    "A cron expression: five fields (minute hour day month weekday, e.g. `0 9 * * 1-5`), or six with the seconds "
    "first (`*/10 * * * * *`)."
)
_WEBHOOK = "A URL told each run's outcome when it ends: a signed POST (see docs/security.md); https only in production."


def epoch(moment: datetime | None) -> float | None:
    """``moment`` as a UNIX time; one without an offset is taken as UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleCreate(_Body):
    schedule: str = Field(description=_SCHEDULE, examples=["0 9 * * 1-5"], max_length=200)
    timezone: str | None = Field(None, description="IANA time zone of the expression (default UTC).", max_length=64)
    assistant_id: str | None = Field(
        None, pattern=ID_PATTERN, description="The assistant (or graph) to run; default: the server's default agent."
    )
    thread_id: str | None = Field(
        None, pattern=ID_PATTERN, description="One of your threads every run goes to; unset: a new thread per run."
    )
    message: str | None = Field(None, min_length=1, description="The user message each run sends.")
    input: dict[str, Any] | None = Field(None, description="Or the graph's input, for each run.")
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    multitask: Multitask | None = Field(None, description="If the thread is busy at a tick (default `enqueue`).")
    metadata: dict[str, Any] | None = Field(None, description="Yours to keep on the schedule.")
    webhook: str | None = Field(None, description=_WEBHOOK, max_length=2048)
    end_time: datetime | None = Field(None, description="No run after this moment (ISO 8601; UTC without an offset).")
    enabled: bool = True


class SchedulePatch(_Body):
    schedule: str | None = Field(None, description=_SCHEDULE, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    message: str | None = Field(None, min_length=1)
    input: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    multitask: Multitask | None = None
    metadata: dict[str, Any] | None = Field(None, description="Merged into the schedule's metadata.")
    webhook: str | None = Field(None, description=_WEBHOOK + " An empty string removes it.", max_length=2048)
    end_time: datetime | None = Field(None, description="`null` removes the end time.")
    enabled: bool | None = None


class ScheduleOut(BaseModel):
    schedule_id: str
    assistant_id: str
    thread_id: str | None
    schedule: str
    timezone: str
    message: str | None = None
    input: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    multitask: Multitask | None = None
    metadata: dict[str, Any]
    webhook: str | None
    end_time: float | None
    enabled: bool
    next_run_at: float | None = Field(description="When the next run starts (UNIX time); null: none will.")
    last_run_id: str | None
    last_run_at: float | None = Field(description="The tick last run (UNIX time).")
    last_error: str | None = Field(description="Why the last tick started no run (an error code), if it did not.")
    created_at: float
    updated_at: float


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]


class WebhookSecret(BaseModel):
    secret: str = Field(description="The key webhooks are signed with (`whsec_` + base64), in Standard Webhooks form.")


class WebhookAttempt(BaseModel):
    attempt: int
    url: str
    at: float
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    error: str | None = Field(description="Why it failed (`http 500`, `timeout`, `refused: loopback address` …).")
    duration_ms: int


class WebhookDelivery(BaseModel):
    run_id: str
    url: str
    status: Literal["waiting", "pending", "delivered", "failed"] = Field(
        description="`waiting`: the run has not ended; `pending`: being delivered (or waiting for a retry)."
    )
    created_at: float
    next_attempt_at: float | None
    give_up_at: float
    finished_at: float | None
    attempts: list[WebhookAttempt]
