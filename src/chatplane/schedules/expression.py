"""A schedule's cron expression in an IANA time zone: checked once, and its next tick after a moment.

Parsing and iterating cron expressions is ``croniter``'s (the library langgraph-api schedules its crons with);
chatplane only fixes which forms it accepts: five fields (minute hour day month weekday) or six with the seconds
FIRST (``*/10 * * * * *``: every ten seconds), as in Quartz, Spring and node-cron. Ticks are computed in the
schedule's time zone (``zoneinfo``), so ``0 9 * * *`` in ``Europe/Paris`` stays at 09:00 local time across
daylight-saving changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from chatplane.errors import InvalidInputError

MAX_EXPRESSION_CHARS = 200


def check_timezone(name: str | None, field: str = "timezone") -> str:
    """``name`` as an IANA time zone (default UTC); a 422 naming ``field`` if there is no such zone."""
    if name is None or name == "":
        return "UTC"
    if len(name) > 64:
        raise InvalidInputError(f"`{field}` is not a known IANA time zone (e.g. Europe/Paris, UTC).")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"`{field}` is not a known IANA time zone (e.g. Europe/Paris, UTC).") from None
    return name


def check_schedule(expression: str, field: str = "schedule") -> str:
    """``expression`` normalised (single spaces), if it is a cron expression of five or six fields; a 422 naming
    ``field`` otherwise."""
    fields = expression.split() if isinstance(expression, str) and len(expression) <= MAX_EXPRESSION_CHARS else []
    normalised = " ".join(fields)
    if len(fields) not in (5, 6) or not croniter.is_valid(normalised, second_at_beginning=len(fields) == 6):
        raise InvalidInputError(
            f"`{field}` is not a valid cron expression: five fields (minute hour day month weekday), or six with "
            "the seconds first."
        )
    return normalised


def next_tick(expression: str, timezone: str, after: float) -> float | None:
    """The first tick of ``expression`` in ``timezone`` strictly after ``after`` (a UNIX time); None if it has none
    (an impossible date such as 30 February)."""
    start = datetime.fromtimestamp(after, UTC).astimezone(ZoneInfo(timezone))
    try:
        nxt = croniter(expression, start, second_at_beginning=len(expression.split()) == 6).get_next(datetime)
    except CroniterError:
        return None
    return float(nxt.timestamp())
