"""The load generator: scenarios against a running app that serves ``POST /chat`` (chatplane, the seed or the floor).

=============  ==================================================================================================
``concurrency``  N users at once, each on its own session, T turns each, through ``POST /chat``
``ttft``         the same over ``POST /chat/stream`` (chatplane only): time to the first ``token`` event
``growth``       one session, many turns in a row: latency, prompt size and storage as the thread grows
=============  ==================================================================================================

Every scenario records the latency of each turn, the server's CPU time and peak RSS (by pid), the prompts the mock
model received (its ``/_stats``), and the storage's size and bytes written (``storage_probes``). ``Result.summary()``
turns that into the numbers of the results table. Stand-alone::

    python -m benchmarks.load concurrency --url http://127.0.0.1:8000 --mock-url http://127.0.0.1:9000 \\
        --pid 1234 --users 10 --turns 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import httpx
import psutil
import uvloop

from benchmarks.procs import ProcessProbe
from benchmarks.storage_probes import NoStorage, PostgresProbe, SqliteProbe, StorageProbe

T = TypeVar("T")

MIB = 1024 * 1024


@dataclass
class Subject:
    """An app under load: where it listens, its pid (for CPU/RSS), its storage, and the mock it talks to."""

    name: str
    url: str
    mock_url: str
    pid: int | None = None
    storage: StorageProbe = field(default_factory=NoStorage)
    streaming: bool = True


@dataclass
class TurnSample:
    turn: int
    latency: float
    storage: int | None
    written: int | None


@dataclass
class Result:
    scenario: str
    target: str
    users: int
    turns_per_user: int
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    stopped: str | None = None
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    samples: list[TurnSample] = field(default_factory=list)
    cpu_s: float | None = None
    db_cpu_s: float | None = None
    client_cpu_s: float | None = None  # the load generator's own (this process)
    machine_busy_s: float | None = None  # every core's busy time, whoever used it (``psutil.cpu_times``)
    machine_cores: int | None = None
    peak_rss: int | None = None
    storage_before: int | None = None
    storage_after: int | None = None
    written_before: int | None = None
    written_after: int | None = None
    prompt_messages: list[int] = field(default_factory=list)
    prompt_bytes: list[int] = field(default_factory=list)
    mock_in_flight_peak: int = 0
    model_latency: float = 0.0
    model_ttft: float = 0.0
    speed_probe_ms: list[float] = field(default_factory=list)  # ``speed_probe()`` before and after

    @property
    def planned(self) -> int:
        return self.users * self.turns_per_user

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    def summary(self) -> dict[str, Any]:
        """The table's numbers (seconds, KiB, MiB); None where not measured."""
        lat = sorted(self.latencies)
        ttft = sorted(self.ttfts)
        turns = self.ok or None
        return {
            "target": self.target,
            "scenario": self.scenario,
            "users": self.users,
            "planned": self.planned,
            "ok": self.ok,
            "errors": self.errors,
            "stopped": self.stopped,
            "wall_s": self.wall_s,
            "throughput": self.ok / self.wall_s if self.wall_s else None,
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "p99": percentile(lat, 99),
            "overhead_p50": _minus(percentile(lat, 50), self.model_latency),
            "ttft_p50": percentile(ttft, 50),
            "ttft_p95": percentile(ttft, 95),
            "ttft_p99": percentile(ttft, 99),
            "ttft_overhead_p50": _minus(percentile(ttft, 50), self.model_ttft),
            "cpu_ms_per_turn": self.cpu_s * 1000 / turns if self.cpu_s is not None and turns else None,
            "db_cpu_ms_per_turn": self.db_cpu_s * 1000 / turns if self.db_cpu_s is not None and turns else None,
            "client_cpu_ms_per_turn": (
                self.client_cpu_s * 1000 / turns if self.client_cpu_s is not None and turns else None
            ),
            "machine_cpu_ms_per_turn": (
                self.machine_busy_s * 1000 / turns if self.machine_busy_s is not None and turns else None
            ),
            "machine_busy": (
                self.machine_busy_s / (self.wall_s * self.machine_cores)
                if self.machine_busy_s is not None and self.machine_cores and self.wall_s
                else None
            ),
            "peak_rss_mib": self.peak_rss / MIB if self.peak_rss else None,
            "prompt_messages_max": max(self.prompt_messages, default=None),
            "prompt_kib_max": max(self.prompt_bytes) / 1024 if self.prompt_bytes else None,
            "stored_kib_per_turn": _per_turn(self.storage_before, self.storage_after, turns),
            "written_kib_per_turn": _per_turn(self.written_before, self.written_after, turns),
            "storage_mib": self.storage_after / MIB if self.storage_after is not None else None,
            "mock_in_flight_peak": self.mock_in_flight_peak,
            "model_latency": self.model_latency,
            "speed_probe_ms": sum(self.speed_probe_ms) / len(self.speed_probe_ms) if self.speed_probe_ms else None,
            "errors_seen": self.error_samples,
        }


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (linear interpolation) of already sorted values; None if empty."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def _minus(value: float | None, base: float) -> float | None:
    return None if value is None else value - base


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop (what the servers under test run on): the load generator's own CPU per request is
    lower, and it shares the cores with them."""
    return uvloop.run(main)


def _per_turn(before: int | None, after: int | None, turns: int | None) -> float | None:
    if before is None or after is None or not turns:
        return None
    return (after - before) / turns / 1024


def _message(tag: str, user: int, turn: int) -> str:
    return f"[{tag}] user {user:03d}, turn {turn:04d}: please answer briefly."


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _client() -> aiohttp.ClientSession:
    """A client for one simulated user (one connection), on aiohttp: the load generator shares the cores with the
    server under test, and httpx cost about 0.85 ms of CPU per request here against aiohttp's 0.25 ms."""
    connector = aiohttp.TCPConnector(limit=1, ssl=_ssl_context())
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=60.0))


_CLIENT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def speed_probe() -> float:
    """Milliseconds of CPU for a fixed piece of pure Python: how fast this machine runs right now. On a shared
    virtual machine it takes 25–50% longer at some minutes than at others, and every CPU and throughput number
    moves with it."""
    best = math.inf
    for _ in range(3):
        started = time.process_time()
        total = 0
        for i in range(200_000):
            total += i % 7
        best = min(best, time.process_time() - started)
    return best * 1000


def _machine_busy_s() -> float:
    """Seconds the machine's cores have been busy since boot (all but idle and I/O wait), whoever used them: the
    server, its database, the mock, this load generator — and anything else running, so measure on a quiet machine."""
    times = psutil.cpu_times()
    # Linux counts guest time inside user time already (and guest_nice inside nice): left out, not counted twice.
    counted_twice = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0) - counted_twice)


@contextlib.asynccontextmanager
async def _measured(subject: Subject, result: Result) -> AsyncIterator[None]:
    """Counters before and after the body: mock stats, CPU, peak RSS, storage size and bytes written."""
    process = ProcessProbe(subject.pid) if subject.pid is not None else None
    async with httpx.AsyncClient(timeout=30) as mock:
        config = (await mock.get(f"{subject.mock_url}/_control")).json()
        result.model_ttft = float(config["ttft"])
        result.model_latency = result.model_ttft + int(config["tokens"]) * float(config["token_interval"])
        (await mock.post(f"{subject.mock_url}/_stats/reset")).raise_for_status()
        result.storage_before = await subject.storage.size()
        result.written_before = await subject.storage.written()
        cpu_before = process.cpu_seconds() if process else None
        db_cpu_before = await subject.storage.server_cpu()
        result.speed_probe_ms.append(speed_probe())
        client_cpu_before = time.process_time()
        machine_before = _machine_busy_s()
        if process:
            process.reset_peak_rss()
        started = time.perf_counter()
        try:
            yield
        finally:
            result.wall_s = time.perf_counter() - started
            result.client_cpu_s = time.process_time() - client_cpu_before
            result.machine_busy_s = _machine_busy_s() - machine_before
            result.machine_cores = psutil.cpu_count()
            result.speed_probe_ms.append(speed_probe())
            if process is not None and cpu_before is not None:
                result.cpu_s = process.cpu_seconds() - cpu_before
                result.peak_rss = process.peak_rss()
            db_cpu_after = await subject.storage.server_cpu()
            if db_cpu_before is not None and db_cpu_after is not None:
                result.db_cpu_s = sum(t - db_cpu_before.get(pid, 0.0) for pid, t in db_cpu_after.items())
            result.storage_after = await subject.storage.size()
            result.written_after = await subject.storage.written()
            stats = (await mock.get(f"{subject.mock_url}/_stats")).json()
            result.prompt_messages = stats["prompt_messages"]
            result.prompt_bytes = stats["prompt_bytes"]
            result.mock_in_flight_peak = stats["in_flight_peak"]


async def _chat_turn(client: aiohttp.ClientSession, url: str, body: dict[str, str], result: Result) -> float | None:
    """One ``POST /chat``; its latency in seconds, or None (counted as an error)."""
    started = time.perf_counter()
    try:
        async with client.post(f"{url}/chat", json=body) as response:
            status, text = response.status, await response.text()
    except _CLIENT_ERRORS as exc:
        result.error(type(exc).__name__)
        return None
    latency = time.perf_counter() - started
    if status != 200 or '"response"' not in text:
        result.error(f"HTTP {status}: {text[:200]}")
        return None
    result.ok += 1
    result.latencies.append(latency)
    return latency


async def _stream_turn(client: aiohttp.ClientSession, url: str, body: dict[str, str], result: Result) -> None:
    """One ``POST /chat/stream``: time to the first ``token`` event, and to ``done``."""
    started = time.perf_counter()
    first: float | None = None
    try:
        async with client.post(f"{url}/chat/stream", json=body) as response:
            if response.status != 200:
                result.error(f"HTTP {response.status}: {(await response.text())[:200]}")
                return
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    if event == "token" and first is None:
                        first = time.perf_counter() - started
                    elif event == "error":
                        result.error(f"error event: {line[:200]}")
                        return
                    elif event == "done":
                        break
            else:
                result.error("stream ended without a done event")
                return
    except _CLIENT_ERRORS as exc:
        result.error(type(exc).__name__)
        return
    result.ok += 1
    result.latencies.append(time.perf_counter() - started)
    if first is not None:
        result.ttfts.append(first)


async def _users(
    subject: Subject, result: Result, users: int, turns: int, budget_s: float, drain_s: float, stream: bool
) -> None:
    """``users`` concurrent users, ``turns`` turns each; no new turn after ``budget_s``, all cut at + ``drain_s``."""
    tag = uuid.uuid4().hex[:6]
    deadline = time.monotonic() + budget_s

    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(_client()) for _ in range(users)]

        async def user(i: int) -> None:
            client = clients[i]
            body = {"user_id": f"bench-{tag}-{i:03d}", "session_id": f"s-{tag}-{i:03d}", "message": ""}
            for turn in range(turns):
                if time.monotonic() > deadline:
                    result.stopped = f"budget {budget_s:g} s"
                    return
                body["message"] = _message(tag, i, turn)
                if stream:
                    await _stream_turn(client, subject.url, body, result)
                else:
                    await _chat_turn(client, subject.url, body, result)

        tasks = [asyncio.create_task(user(i)) for i in range(users)]
        _, pending = await asyncio.wait(tasks, timeout=budget_s + drain_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            result.stopped = f"budget {budget_s:g} s (+{drain_s:g} s drain; {len(pending)} users cut)"


WARM_UP_TURNS = 3


async def warm_up(subject: Subject, turns: int = WARM_UP_TURNS) -> None:
    """A few turns on a session of their own, before anything is measured: a fresh server's first requests pay for
    one-time work (lazy imports, first connections, prepared statements) that no later turn pays again."""
    tag = uuid.uuid4().hex[:6]
    body = {"user_id": f"warm-{tag}", "session_id": f"warm-{tag}", "message": ""}
    scratch = Result("warm-up", subject.name, 1, turns)
    async with _client() as client:
        for turn in range(turns):
            body["message"] = _message(tag, 0, turn)
            await _chat_turn(client, subject.url, body, scratch)
            if subject.streaming:
                await _stream_turn(client, subject.url, body, scratch)


async def mock_alone(mock_url: str, calls: int = 20) -> dict[str, float]:
    """The mock called straight from this process, one call at a time, the way the apps call it (chatplane streams,
    the seed asks for one JSON body): p50 seconds of each. The floor under every latency measured through an app —
    this client, HTTP and the event loop's timer resolution included."""
    floor: dict[str, float] = {}
    async with _client() as client:
        for name, stream in (("streamed", True), ("json", False)):
            body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
            latencies = []
            for _ in range(calls + 2):  # the first two open the connection and warm up
                started = time.perf_counter()
                async with client.post(f"{mock_url}/v1/chat/completions", json=body) as response:
                    response.raise_for_status()
                    async for _chunk in response.content.iter_any():
                        pass
                latencies.append(time.perf_counter() - started)
            floor[name] = percentile(sorted(latencies[2:]), 50) or 0.0
    return floor


async def run_concurrency(
    subject: Subject,
    *,
    users: int,
    turns: int,
    budget_s: float = 600,
    drain_s: float = 60,
    warm_up_turns: int = WARM_UP_TURNS,
) -> Result:
    """``users`` users at once, ``turns`` turns each, after ``warm_up_turns`` unmeasured ones (0: the caller warmed
    the server up itself, e.g. before switching callgrind's instrumentation on)."""
    result = Result("concurrency", subject.name, users, turns)
    if warm_up_turns:
        await warm_up(subject, warm_up_turns)
    async with _measured(subject, result):
        await _users(subject, result, users, turns, budget_s, drain_s, stream=False)
    return result


async def run_ttft(subject: Subject, *, users: int, turns: int, budget_s: float = 600, drain_s: float = 60) -> Result:
    result = Result("ttft", subject.name, users, turns)
    if not subject.streaming:
        result.stopped = "n/a (no streaming endpoint)"
        return result
    await warm_up(subject)
    async with _measured(subject, result):
        await _users(subject, result, users, turns, budget_s, drain_s, stream=True)
    return result


async def run_growth(subject: Subject, *, turns: int, budget_s: float = 900, max_errors: int = 3) -> Result:
    """One session, ``turns`` turns in a row; storage sampled after each (outside the timed request)."""
    result = Result("growth", subject.name, 1, turns)
    tag = uuid.uuid4().hex[:6]
    body = {"user_id": f"bench-{tag}", "session_id": f"growth-{tag}", "message": ""}
    await warm_up(subject)
    async with _measured(subject, result), _client() as client:
        deadline = time.monotonic() + budget_s
        for turn in range(1, turns + 1):
            if time.monotonic() > deadline:
                result.stopped = f"stopped at turn {turn - 1} (budget {budget_s:g} s)"
                break
            body["message"] = _message(tag, 0, turn)
            latency = await _chat_turn(client, subject.url, body, result)
            if latency is None:
                if result.errors >= max_errors:
                    result.stopped = f"stopped at turn {turn} ({result.errors} errors)"
                    break
                continue
            size, written = await subject.storage.size(), await subject.storage.written()
            result.samples.append(TurnSample(turn, latency, size, written))
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["concurrency", "ttft", "growth"])
    parser.add_argument("--url", required=True, help="the app under load")
    parser.add_argument("--mock-url", required=True, help="the mock model the app talks to")
    parser.add_argument("--pid", type=int, help="the app's pid (CPU time, peak RSS)")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--budget", type=float, default=600, help="seconds before no new turn starts")
    parser.add_argument("--sqlite", help="the app's SQLite file (storage size)")
    parser.add_argument("--pg-url", help="the app's PostgreSQL database (storage size)")
    return parser


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    storage: StorageProbe = NoStorage()
    if args.sqlite and args.pid:
        storage = SqliteProbe(args.sqlite, ProcessProbe(args.pid))
    elif args.pg_url:
        storage = PostgresProbe(args.pg_url)
    subject = Subject(args.url, args.url, args.mock_url, args.pid, storage)
    try:
        if args.scenario == "concurrency":
            result = await run_concurrency(subject, users=args.users, turns=args.turns, budget_s=args.budget)
        elif args.scenario == "ttft":
            result = await run_ttft(subject, users=args.users, turns=args.turns, budget_s=args.budget)
        else:
            result = await run_growth(subject, turns=args.turns, budget_s=args.budget)
    finally:
        await storage.aclose()
    return result.summary()


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(run_loop(_main(_parser().parse_args(argv))), indent=2))


if __name__ == "__main__":
    main()
