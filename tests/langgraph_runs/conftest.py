"""A real chatplane server with the demo project, for LangGraph's own clients (``langgraph-sdk``, ``RemoteGraph``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DEMO = str(Path(__file__).parents[1] / "projects" / "demo" / "chatplane.json")


def demo_env(storage_url: str, **extra: str) -> dict[str, str]:
    return {
        "CHATPLANE_MODEL": "fake:echo",
        "CHATPLANE_CONFIG_FILE": DEMO,
        "CHATPLANE_STORAGE_URL": storage_url,
        "DEMO_STEP_S": "0.3",
        **extra,
    }


@pytest.fixture
def lg_server(server_factory: Callable[..., Any], tmp_path: Path) -> Any:
    """The demo project on SQLite, as the local user (no keys)."""
    return server_factory(demo_env(f"sqlite:///{tmp_path}/lg.db"))
