"""The demo project served for the LangGraph API's tests, on SQLite and PostgreSQL, with API keys of two users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.langgraph.test_lg_assistants import serve_demo


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest, server_factory: Any, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """``(url, {"alice": key, "bob": key})`` of a real server of the demo project."""
    return serve_demo(request, server_factory, tmp_path)


def status_of(call: Any, *args: Any, **kwargs: Any) -> int:
    """The HTTP status a sync ``langgraph-sdk`` call ends with (200 if it raised nothing)."""
    try:
        call(*args, **kwargs)
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200
