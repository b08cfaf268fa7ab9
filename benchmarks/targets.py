"""The apps a benchmark run compares, each started fresh (new process, new storage) for every scenario.

=====================  ===========================================================================================
``chatplane-sqlite``   ``python -m chatplane serve``, ``CHATPLANE_STORAGE_URL=sqlite:///<tmp>/chatplane.storage.database``
``chatplane-postgres`` the same on a new PostgreSQL database (created, then dropped)
``chatplane-memory``   the same on ``memory://`` (not in the default set)
``seed-memory``        ``uvicorn benchmarks.seed_app:app`` with ``MemorySaver``
``seed-sqlite``        the same with ``SqliteSaver`` (sync) on a new file
``seed-postgres``      the same with ``PostgresSaver`` (sync) on a new database
``chatplane-postgres-w2`` ``chatplane serve --workers 2`` on PostgreSQL: does throughput scale with cores?
``floor``              ``uvicorn benchmarks.floor_app:app``: one model call per request and nothing else (no storage)
=====================  ===========================================================================================

Every app is pointed at the mock model by ``OPENAI_BASE_URL``. ``launched(..., src=DIR)`` runs chatplane from
another source tree (``PYTHONPATH=DIR/src``: a git worktree of an older commit, measured by this same harness), and
``wrapper`` puts a command in front of the server's (``valgrind --tool=callgrind ...``).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from benchmarks.load import Subject
from benchmarks.procs import REPO_ROOT, ProcessProbe, ServerProcess, clean_env, free_port
from benchmarks.storage_probes import NoStorage, PostgresProbe, SqliteProbe, StorageProbe

App = Literal["chatplane", "seed", "floor"]
StorageKind = Literal["memory", "sqlite", "postgres"]


@dataclass(frozen=True)
class Target:
    name: str
    app: App
    storage: StorageKind
    workers: int = 1

    @property
    def streaming(self) -> bool:
        return self.app == "chatplane"


TARGETS = {
    t.name: t
    for t in (
        Target("chatplane-sqlite", "chatplane", "sqlite"),
        Target("chatplane-postgres", "chatplane", "postgres"),
        Target("chatplane-memory", "chatplane", "memory"),
        Target("seed-memory", "seed", "memory"),
        Target("seed-sqlite", "seed", "sqlite"),
        Target("seed-postgres", "seed", "postgres"),
        Target("chatplane-postgres-w2", "chatplane", "postgres", workers=2),
        Target("floor", "floor", "memory"),
    )
}
DEFAULT_TARGETS = (
    "chatplane-sqlite",
    "chatplane-postgres",
    "chatplane-postgres-w2",
    "seed-memory",
    "seed-sqlite",
    "seed-postgres",
    "floor",
)
CHATPLANE_ON = {"sqlite": "chatplane-sqlite", "postgres": "chatplane-postgres"}
"""chatplane's single-process target on each storage: what ``callgrind`` and ``cpu_per_turn`` compare trees on."""
CONTEXT_BUDGET_TOKENS = 4000
"""chatplane's ``CHATPLANE_CONTEXT_BUDGET_TOKENS`` in every run (its default for remote models is 100,000)."""
CHATPLANE_NO_QUOTAS = {
    # Without API keys every request belongs to the one local user: per-user quotas would cap the whole benchmark.
    "CHATPLANE_RATE_LIMIT_PER_MINUTE": "0",
    "CHATPLANE_MAX_CONCURRENT_RUNS_PER_USER": "0",
    "CHATPLANE_TOKENS_PER_DAY": "0",
}


@asynccontextmanager
async def fresh_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (its URL); dropped on exit."""
    name = f"chatplane_bench_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@asynccontextmanager
async def _storage_url(target: Target, workdir: Path, pg_admin_url: str) -> AsyncIterator[str]:
    if target.storage == "postgres":
        async with fresh_database(pg_admin_url) as url:
            yield url
    elif target.storage == "sqlite":
        path = workdir / f"{target.name}-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"  # an absolute path: sqlite:////tmp/...
    else:
        yield "memory://" if target.app == "chatplane" else "memory"


def source_env(src: Path) -> dict[str, str]:
    """The environment entries that make ``import chatplane`` load the tree at ``src`` (before any installed copy)."""
    return {"PYTHONPATH": os.pathsep.join([str(src.resolve() / "src"), str(REPO_ROOT)])}


def _command(
    target: Target, port: int, storage_url: str, mock_url: str, src: Path | None = None
) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment, health path) of the target's server; chatplane from ``src`` when given."""
    model_env = {"OPENAI_BASE_URL": f"{mock_url}/v1", "OPENAI_API_KEY": "x"}
    if target.app == "chatplane":
        env = {
            **model_env,
            **CHATPLANE_NO_QUOTAS,
            "CHATPLANE_MODEL": "openai:mock",
            "CHATPLANE_STORAGE_URL": storage_url,
            "CHATPLANE_HOST": "127.0.0.1",
            "CHATPLANE_PORT": str(port),
            "CHATPLANE_LOG_LEVEL": "warning",
            "CHATPLANE_CONTEXT_BUDGET_TOKENS": str(CONTEXT_BUDGET_TOKENS),
        }
        argv = [sys.executable, "-m", "chatplane", "serve"]
        if target.workers > 1:  # several processes share run events through Redis
            argv += ["--workers", str(target.workers)]
            env["CHATPLANE_REDIS_URL"] = os.environ.get("CHATPLANE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
        if src is not None:
            env.update(source_env(src))
        return argv, clean_env(env), "/healthz"
    module = "benchmarks.seed_app:app" if target.app == "seed" else "benchmarks.floor_app:app"
    argv = [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log"]
    return argv, clean_env({**model_env, "SEED_STORAGE": storage_url}), "/openapi.json"


@asynccontextmanager
async def launched(
    target: Target,
    *,
    mock_url: str,
    workdir: Path,
    pg_admin_url: str,
    src: Path | None = None,
    wrapper: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
    start_within_s: float = 120.0,
) -> AsyncIterator[Subject]:
    """The target running on fresh storage, as a ``Subject`` for the load generator; stopped and cleaned on exit.

    ``src``: chatplane's source tree (default: whatever ``import chatplane`` finds); ``wrapper``: argv put in front
    of the server's (its pid stays the server's: valgrind runs the program in its own process); ``extra_env``: added
    to the server's environment."""
    async with _storage_url(target, workdir, pg_admin_url) as storage_url:
        port = free_port()
        argv, env, health = _command(target, port, storage_url, mock_url, src)
        env.update(extra_env or {})
        server = ServerProcess(
            [*wrapper, *argv],
            env,
            port=port,
            cwd=workdir,
            health_path=health,
            log_path=workdir / f"{target.name}-{port}.log",
        )
        await server.start(start_within_s)
        probe: StorageProbe = NoStorage()
        if target.storage == "sqlite":
            probe = SqliteProbe(storage_url.removeprefix("sqlite:///"), ProcessProbe(server.pid))
        elif target.storage == "postgres":
            probe = PostgresProbe(storage_url)
        try:
            yield Subject(target.name, server.url, mock_url, server.pid, probe, target.streaming)
        finally:
            await probe.aclose()
            server.stop()
