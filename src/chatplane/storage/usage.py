"""Token usage and its cost, from the run records: per run, per thread, per user, by day and model.

Every run records the tokens its model calls reported (``usage_metadata``: ``input_tokens``, ``output_tokens``,
``total_tokens``), the model it was configured with and its owner — thread runs and stateless OpenAI-compatible ones
(``thread_id = ''``) alike. ``usage_report`` adds them up in the database (one ``GROUP BY`` over the owner's runs in
the period, on the ``(owner, created_at)`` index) and prices them with ``CHATPLANE_PRICES``::

    {"openai:gpt-4o": {"input_per_million": 2.5, "output_per_million": 10}}

A price is looked up by model id, then by the name after ``provider:``. Days are UTC, by the run's creation time.
Run records go when their thread is deleted (by its owner or by retention), and their usage with them.
"""

from __future__ import annotations

import datetime
from typing import Any

from chatplane.schemas import DayUsage, ModelUsage, UsageReport, UsageTotals
from chatplane.storage.database import Database

UNKNOWN_MODEL = "unknown"
MAX_DAYS = 366

_TOKENS = ("input_tokens", "output_tokens", "total_tokens")


def _token_sum(db: Database, key: str) -> str:
    if db.dialect == "postgres":
        return f"COALESCE(sum((usage::jsonb ->> '{key}')::bigint), 0)"
    return f"COALESCE(sum(CAST(json_extract(usage, '$.{key}') AS INTEGER)), 0)"


def _day(db: Database) -> str:
    if db.dialect == "postgres":
        return "to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return "date(created_at, 'unixepoch')"


def _epoch(day: datetime.date) -> float:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC).timestamp()


def price_of(model: str, prices: dict[str, dict[str, float]]) -> dict[str, float] | None:
    return prices.get(model) or prices.get(model.partition(":")[2]) or None


def cost_of(model: str, input_tokens: int, output_tokens: int, prices: dict[str, dict[str, float]]) -> float | None:
    """The estimated cost of those tokens on ``model``, or None without a price for it."""
    price = price_of(model, prices)
    if price is None:
        return None
    per_input = float(price.get("input_per_million", 0.0))
    per_output = float(price.get("output_per_million", 0.0))
    return (input_tokens * per_input + output_tokens * per_output) / 1_000_000


async def usage_rows(
    db: Database, owner: str, start: float, end: float, thread_id: str | None = None
) -> list[dict[str, Any]]:
    """Runs and tokens of ``owner`` created in [start, end), by UTC day and model."""
    tokens = ", ".join(f"{_token_sum(db, key)} AS {key}" for key in _TOKENS)
    where = "owner = %s AND created_at >= %s AND created_at < %s"
    params: tuple[Any, ...] = (owner, start, end)
    if thread_id is not None:
        where += " AND thread_id = %s"
        params += (thread_id,)
    day = _day(db)
    return await db.fetchall(
        f"SELECT {day} AS day, COALESCE(model, '{UNKNOWN_MODEL}') AS model, count(*) AS runs, {tokens} "
        f"FROM chatplane_runs WHERE {where} GROUP BY {day}, COALESCE(model, '{UNKNOWN_MODEL}') ORDER BY 1, 2",
        params,
    )


def _add(into: UsageTotals, row: UsageTotals) -> None:
    into.runs += row.runs
    into.input_tokens += row.input_tokens
    into.output_tokens += row.output_tokens
    into.total_tokens += row.total_tokens
    if row.cost is not None:
        into.cost = (into.cost or 0.0) + row.cost


async def usage_report(
    db: Database,
    owner: str,
    since: datetime.date,
    until: datetime.date,
    prices: dict[str, dict[str, float]],
    *,
    thread_id: str | None = None,
) -> UsageReport:
    """``owner``'s usage from ``since`` to ``until`` (UTC days, both included): totals, by model and by day."""
    rows = await usage_rows(db, owner, _epoch(since), _epoch(until + datetime.timedelta(days=1)), thread_id)
    total = UsageTotals()
    by_model: dict[str, ModelUsage] = {}
    by_day: dict[str, DayUsage] = {}
    unpriced: set[str] = set()
    for row in rows:
        model = str(row["model"])
        counts = {key: int(row[key] or 0) for key in _TOKENS}
        cost = cost_of(model, counts["input_tokens"], counts["output_tokens"], prices)
        if cost is None:
            unpriced.add(model)
        item = ModelUsage(model=model, runs=int(row["runs"]), cost=cost, **counts)
        _add(total, item)
        _add(by_model.setdefault(model, ModelUsage(model=model)), item)
        day = by_day.setdefault(str(row["day"]), DayUsage(date=datetime.date.fromisoformat(str(row["day"]))))
        _add(day, item)
        day.models.append(item)
    return UsageReport(
        user=owner,
        since=since,
        until=until,
        thread_id=thread_id,
        total=total,
        by_model=sorted(by_model.values(), key=lambda m: m.model),
        by_day=[by_day[d] for d in sorted(by_day)],
        unpriced_models=sorted(unpriced),
    )
