"""``current_time``: the date and time now, in an IANA time zone (UTC unless the model names one)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, ToolException, tool


async def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; ``ToolException`` with a usable message when there is none.

    ``ZoneInfo`` reads the zone file on first use, so the lookup runs in a worker thread (off the event loop).
    """
    key = name.strip() or "UTC"
    try:
        return await asyncio.to_thread(ZoneInfo, key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolException(
            f"Unknown time zone {key[:60]!r}; use an IANA name such as 'UTC', 'Europe/Paris' or 'Asia/Tokyo'."
        ) from exc


def describe(moment: datetime, zone_name: str) -> str:
    when = moment.strftime("%A %d %B %Y, %H:%M:%S")
    return f"{when} ({zone_name}, UTC{moment.strftime('%z')}) — {moment.isoformat()}"


def make_current_time() -> BaseTool:
    # No example zone in the description: small models copy an example instead of the place asked about.
    @tool("current_time")
    async def current_time(timezone: str = "UTC") -> str:
        """The current date and time in the IANA time zone ("Region/City") of the place asked about (default "UTC")."""
        tz = await zone(timezone)
        return describe(datetime.now(tz), tz.key)

    return current_time
