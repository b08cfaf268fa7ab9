"""Usage: ``GET /v1/usage`` — your tokens by day and model, with a cost estimate (see ``chatplane.storage.usage``)."""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from chatplane.errors import InvalidInputError
from chatplane.schemas import ID_PATTERN, ErrorBody, UsageReport
from chatplane.service.deps import AgentDep, CurrentUser, SettingsDep
from chatplane.storage.usage import MAX_DAYS

router = APIRouter(prefix="/v1", tags=["usage"])
_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (401, 404, 422, 429, 503)}
DEFAULT_DAYS = 30
EARLIEST, LATEST = datetime.date(1970, 1, 1), datetime.date(9999, 12, 30)
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


@router.get("/usage", response_model=UsageReport, responses=_ERRORS)
async def get_usage(
    agent: AgentDep,
    user: CurrentUser,
    settings: SettingsDep,
    since: Annotated[
        str | None,
        Query(pattern=DATE, description=f"First day (UTC, YYYY-MM-DD); default {DEFAULT_DAYS - 1} days before until."),
    ] = None,
    until: Annotated[str | None, Query(pattern=DATE, description="Last day (UTC, included); default today.")] = None,
    thread_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="Only this thread's runs (one of yours).")
    ] = None,
) -> UsageReport:
    """Your token usage — every run, thread or stateless — as totals, by model and by day, with its estimated cost
    from the server's price table."""
    last = _day("until", until) if until else datetime.datetime.now(datetime.UTC).date()
    first = _day("since", since) if since else max(EARLIEST, last - datetime.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise InvalidInputError("since must not be after until.")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInputError(f"Ask for at most {MAX_DAYS} days at a time.")
    return await agent.for_user(user.id).runs.usage(first, last, thread_id=thread_id)


def _day(name: str, value: str) -> datetime.date:
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"{name} is not a date (YYYY-MM-DD).") from None
    if not EARLIEST <= day <= LATEST:
        raise InvalidInputError(f"{name} must be between {EARLIEST} and {LATEST}.")
    return day
