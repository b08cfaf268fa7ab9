"""A real chatplane server with the demo project, for LangGraph's own clients (``langgraph-sdk``, ``RemoteGraph``)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client, get_sync_client

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


@pytest.fixture
async def lg_client(lg_server: Any) -> AsyncIterator[Any]:
    """``langgraph_sdk.get_client`` on ``lg_server``, closed at the end."""
    async with get_client(url=lg_server.url, api_key=None) as client:
        yield client


@pytest.fixture
def lg_sync_client(lg_server: Any) -> Iterator[Any]:
    with get_sync_client(url=lg_server.url, api_key=None) as client:
        yield client


def api_key(user: str, storage_url: str, cwd: Path) -> str:
    """An API key for ``user``, made as an operator would (``chatplane keys create``)."""
    args = [sys.executable, "-m", "chatplane", "keys", "create", "--user", user, "--storage", storage_url]
    output = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"cp_\S+", output)
    assert match is not None, output
    return match[0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_users(
    request: pytest.FixtureRequest, server_factory: Callable[..., Any], tmp_path: Path
) -> tuple[Any, str, str]:
    """The demo project on SQLite or PostgreSQL, with keys: ``(server, alice's key, bob's key)``."""
    storage = f"sqlite:///{tmp_path}/owners.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    alice_key, bob_key = api_key("alice", storage, tmp_path), api_key("bob", storage, tmp_path)
    return server_factory(demo_env(storage)), alice_key, bob_key
