"""current_time: now, in a named IANA zone; an unknown zone is a clear error for the model."""

from __future__ import annotations

from datetime import datetime

import pytest
from langchain_core.tools import ToolException

from chatplane.tools.clock import make_current_time


async def test_defaults_to_utc() -> None:
    answer = await make_current_time().ainvoke({})
    assert "(UTC, UTC+0000)" in answer
    stamp = datetime.fromisoformat(answer.rsplit(" — ", 1)[1])
    assert abs((datetime.now(stamp.tzinfo) - stamp).total_seconds()) < 60


async def test_named_zone() -> None:
    answer = await make_current_time().ainvoke({"timezone": "Asia/Tokyo"})
    assert "(Asia/Tokyo, UTC+0900)" in answer


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "UTC+3"])
async def test_unknown_zone_is_a_clear_error(zone: str) -> None:
    with pytest.raises(ToolException, match="Unknown time zone .* use an IANA name"):
        await make_current_time().ainvoke({"timezone": zone})
