"""A soak under faults (issue #29): users sending one message after another for a bounded time, on a private
PostgreSQL cluster with ``chatplane serve --workers N`` and Redis, while a worker is killed with SIGKILL every K
seconds and PostgreSQL is crashed (``pg_ctl -m immediate restart``) every M seconds. Then every thread's history is
checked against what its user sent and was told (``soak_verify.py``), and the tables are printed.

    python -m benchmarks.soak --minutes 20 --users 100 --kill-every 60 --crash-every 300   # the issue's setting
    python -m benchmarks.soak --quick                                                      # 3 min, 30 users

uvicorn's supervisor (``--workers``) starts a new worker in place of a killed one; the soak records how long that
took. The model is the mock (``benchmarks/mock_openai.py``, echoing each message so answers can be matched), and
chatplane runs on its default settings (context budget included) apart from the per-user quotas: without API keys
every user is the one local user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.load import run_loop
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.options import add_mock_options
from benchmarks.pg_cluster import ThrowawayCluster
from benchmarks.procs import ServerProcess, clean_env, free_port
from benchmarks.report import environment
from benchmarks.soak_client import Users, create_threads, user_loop
from benchmarks.soak_report import Fault, gave_up, per_fault, per_minute, raw, verdict_table
from benchmarks.soak_verify import verify
from benchmarks.targets import CHATPLANE_NO_QUOTAS

QUICK = {"minutes": 3.0, "users": 30, "kill_every": 40.0, "crash_every": 75.0}


def workers_of(supervisor: int) -> list[int]:
    """The worker processes of a ``--workers`` server (its multiprocessing children, not the resource tracker),
    oldest first."""
    found = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(supervisor).children():
            with contextlib.suppress(psutil.Error):
                if "resource_tracker" not in " ".join(child.cmdline()):
                    found.append((child.create_time(), child.pid))
    return [pid for _, pid in sorted(found)]


async def kill_worker(supervisor: int, fault: Fault) -> None:
    """SIGKILL the oldest worker (so kills take turns between the slots), then wait for the supervisor to start
    its replacement (the process, not yet serving)."""
    before = workers_of(supervisor)
    if not before:
        fault.detail = "no worker found"
        return
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    fault.detail = f"SIGKILL worker {victim}"
    while time.monotonic() - fault.at < 120:
        now = workers_of(supervisor)
        if victim not in now and len(now) >= len(before):
            fault.took_s = time.monotonic() - fault.at
            return
        await asyncio.sleep(0.1)


async def crash_database(cluster: ThrowawayCluster, fault: Fault) -> None:
    fault.detail = "pg_ctl -m immediate restart"
    try:
        await asyncio.to_thread(cluster.crash)
    except Exception as exc:  # recorded: the soak goes on, the verdict will say what it did
        fault.detail += f" failed: {type(exc).__name__}"
        return
    fault.took_s = time.monotonic() - fault.at


def schedule(seconds: float, kill_every: float, crash_every: float) -> list[tuple[float, str]]:
    """Kills at K, 2K, ...; crashes at M, 2M, ... (moved by K/2 when they would fall on a kill), before the end."""
    kills = [k * kill_every for k in range(1, int(seconds // kill_every) + 1)] if kill_every > 0 else []
    crashes = [m * crash_every for m in range(1, int(seconds // crash_every) + 1)] if crash_every > 0 else []
    crashes = [c + kill_every / 2 if any(abs(c - k) < 5 for k in kills) else c for c in crashes]
    return sorted((t, kind) for kinds, kind in ((kills, "kill"), (crashes, "crash")) for t in kinds if t < seconds)


async def run_faults(
    plan: list[tuple[float, str]], started: float, supervisor: int, cluster: ThrowawayCluster, faults: list[Fault]
) -> None:
    pending: list[asyncio.Task[None]] = []
    for offset, kind in plan:
        await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
        fault = Fault(kind, time.monotonic())
        faults.append(fault)
        print(f"[soak] {offset:5.0f} s  {kind}", file=sys.stderr, flush=True)
        if kind == "kill":
            pending.append(asyncio.create_task(kill_worker(supervisor, fault)))
        else:
            pending.append(asyncio.create_task(crash_database(cluster, fault)))
    await asyncio.gather(*pending)


def server_for(args: argparse.Namespace, cluster: ThrowawayCluster, mock_url: str, workdir: Path) -> ServerProcess:
    port = free_port()
    env = {
        **CHATPLANE_NO_QUOTAS,
        "OPENAI_BASE_URL": f"{mock_url}/v1",
        "OPENAI_API_KEY": "x",
        "CHATPLANE_MODEL": "openai:mock",
        "CHATPLANE_STORAGE_URL": cluster.url,
        "CHATPLANE_REDIS_URL": args.redis_url,
        "CHATPLANE_HOST": "127.0.0.1",
        "CHATPLANE_PORT": str(port),
        "CHATPLANE_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "chatplane", "serve", "--workers", str(args.workers)]
    return ServerProcess(
        argv, clean_env(env), port=port, cwd=workdir, health_path="/healthz", log_path=workdir / "server.log"
    )


def setting(args: argparse.Namespace, cluster: ThrowawayCluster, plan: list[tuple[float, str]]) -> str:
    env = environment(cluster.url)
    kills = sum(1 for _, kind in plan if kind == "kill")
    return "\n".join(
        [
            f"- {env['date']}; {env['cpu']}; load average before: {env['load']}; chatplane {env['chatplane']}",
            f"- {args.users} users × {args.minutes:g} min, `serve --workers {args.workers}`, PostgreSQL "
            f"{env['postgresql']} (a private cluster, fsync off), Redis `{args.redis_url}`",
            f"- faults: {kills} worker kills (every {args.kill_every:g} s), "
            f"{len(plan) - kills} PostgreSQL crashes (every {args.crash_every:g} s, moved by half a kill interval "
            "off a kill)",
            f"- client: timeout {args.timeout:g} s, resent with the same `Idempotency-Key` on 503/5xx/409/429/"
            f"connection errors/timeouts for up to {args.retry_for:g} s; drain {args.drain:g} s, settle "
            f"{args.settle:g} s",
            f"- mock model: echo, first token {args.mock_ttft:g} s + {args.mock_tokens} × "
            f"{args.mock_token_interval:g} s",
        ]
    )


async def soak(args: argparse.Namespace) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="chatplane-soak-"))
    cluster = ThrowawayCluster(free_port(), settings="-c max_connections=200")
    cluster.init()
    cluster.start()
    mock = MockOpenAIServer(
        own_process=True,
        reply="echo",
        ttft=args.mock_ttft,
        tokens=args.mock_tokens,
        token_interval=args.mock_token_interval,
    ).start()
    server = server_for(args, cluster, mock.url, workdir)
    try:
        await server.start()
        return await _measure(args, cluster, server, workdir)
    finally:
        server.stop()
        mock.stop()
        cluster.destroy()


async def _measure(args: argparse.Namespace, cluster: ThrowawayCluster, server: ServerProcess, workdir: Path) -> str:
    seconds = args.minutes * 60
    plan = schedule(seconds, args.kill_every, args.crash_every)
    about = setting(args, cluster, plan)
    threads = await create_threads(server.url, args.users)
    started = time.monotonic()
    users = Users(server.url, args.timeout, started + seconds, started + seconds + args.drain, args.retry_for)
    users.threads = threads
    faults: list[Fault] = []
    fault_task = asyncio.create_task(run_faults(plan, started, server.pid, cluster, faults))
    await asyncio.gather(*(user_loop(users, user) for user in range(args.users)))
    await fault_task
    print(f"[soak] users done at {time.monotonic() - started:.0f} s; settling", file=sys.stderr, flush=True)
    await asyncio.sleep(args.settle)
    verdict = await verify(users, cluster.url)
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(raw(users, faults, started)))
    parts = [
        about,
        verdict_table(verdict, users),
        "Per minute (by the 200's arrival; latency: first send to the 200, resends included):",
        per_minute(users, started),
        "Per fault:",
        per_fault(faults, users, started),
    ]
    if verdict.evidence:
        parts.append("Evidence:\n" + "\n".join(f"- {line}" for line in verdict.evidence))
    if given_up := gave_up(users):
        parts.append(f"Given up ({len(given_up)}):\n" + "\n".join(f"- {line}" for line in given_up[:20]))
    parts.append(f"Server log: {workdir / 'server.log'}")
    return "\n\n".join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 minutes, 30 users, kill every 40 s, crash every 75 s")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between worker kills (0: none)")
    parser.add_argument("--crash-every", type=float, default=300.0, help="seconds between PostgreSQL crashes (0: none)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0, help="the client's timeout per request")
    parser.add_argument("--retry-for", type=float, default=60.0, help="give a message up after this long")
    parser.add_argument("--drain", type=float, default=60.0, help="after the end, seconds to finish the last messages")
    parser.add_argument("--settle", type=float, default=30.0, help="then seconds before runs count as orphaned")
    parser.add_argument("--redis-url", default=os.environ.get("CHATPLANE_SOAK_REDIS_URL", "redis://127.0.0.1:6379/12"))
    parser.add_argument("--output", help="also write the report to this file")
    parser.add_argument("--json", help="write every message and attempt the users saw to this file")
    add_mock_options(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == _parser().get_default(name):
                setattr(args, name, value)
    text = run_loop(soak(args))
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
