"""Shared fixtures: settings, one storage fixture over memory / SQLite / PostgreSQL, in-process and real servers.

PostgreSQL: ``CHATPLANE_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``). Each test gets a
fresh database, dropped afterwards. Locally a missing server skips those tests; in CI (``CI=true``) it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from chatplane.config import Settings
from chatplane.service.app import create_app
from tests.servers import ServerProcess, free_port

PG_URL = os.environ.get("CHATPLANE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _no_real_model_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real provider: no keys, no endpoints from the developer's environment."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "CHATPLANE_OPENAI_API_KEY",
        "CHATPLANE_OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return type(exc).__name__


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    problem = _pg_available()
    if problem is not None:
        message = f"PostgreSQL is not reachable at {PG_URL} ({problem})"
        if IN_CI:
            pytest.fail(message + " — CI requires it.")
        pytest.skip(message)
    return PG_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test."""
    name = f"chatplane_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = pg_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


REDIS_URL = os.environ.get("CHATPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server (a database of its own); skipped locally without it, a failure in CI."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__})"
        if IN_CI:
            pytest.fail(message + " — CI requires it.")
        pytest.skip(message)
    return REDIS_URL


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
PERSISTENT_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _storage_url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'chatplane.storage.database'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=BACKENDS)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on memory, SQLite (a real file) and PostgreSQL (a real, fresh database)."""
    return _storage_url_for(request.param, request, tmp_path)


@pytest.fixture(params=PERSISTENT_BACKENDS)
def persistent_storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _storage_url_for(request.param, request, tmp_path)


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: a scripted model and memory storage unless told otherwise; no .env file."""
    values: dict[str, Any] = {"model": "fake:echo", "storage_url": "memory://"}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    """``await client_for(settings, model=None)`` → an httpx client on the app in-process, lifespan running."""
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:

        async def make(settings: Settings, model: Any = None) -> httpx.AsyncClient:
            app = create_app(settings, model=model)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chatplane.test")
            await stack.enter_async_context(client)
            client.app = app  # type: ignore[attr-defined]
            return client

        yield make


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """``server_factory(env)`` → a started ``ServerProcess`` (real uvicorn in a subprocess); all stopped at the end."""
    servers: list[ServerProcess] = []

    def make(env: dict[str, str], port: int | None = None, args: list[str] | None = None) -> ServerProcess:
        server = ServerProcess(env, port or free_port(), tmp_path, args)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()
