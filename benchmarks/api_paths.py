"""The same turn through chatplane's run APIs, in one run, one table: the native ``/v1`` path, the LangGraph
Platform API path that ``langgraph-sdk`` (``client.runs.wait``) and ``RemoteGraph`` take (and ``v1-input``, which
tells the two apart: the LangGraph body over ``/v1``), and the MCP and A2A paths.

=============  ==================================================================================================
``v1``         ``POST /v1/threads/{id}/runs {"message"}``: the run, waited for (its ``output``)
``v1-input``   the same with LangGraph's ``{"input": {"messages": [...]}}`` for a body instead of ``message``
``langgraph``  ``POST /threads/{id}/runs/wait {"assistant_id": "chat", "input": {"messages": [...]}}`` — the body
               ``client.runs.wait(thread_id, "chat", input=...)`` sends; the thread's values back
``mcp``        ``POST /mcp`` ``tools/call`` of the ``chat`` tool in an MCP session (opened before the clock starts;
               its thread is made by the first, unmeasured turn), as the mcp SDK's client sends it
``a2a``        ``POST /a2a/chat`` ``SendMessage`` in the context the first, unmeasured turn started (A2A 1.0)
``protocol``   the thread-scoped protocol ``client.threads.stream`` speaks: ``POST /threads/{id}/commands``
               ``run.start``, then ``POST /threads/{id}/stream/events`` (``lifecycle`` and ``values``) ``since`` the
               seq it answered, read until the run's ``lifecycle`` ``completed``
``langgraph-dev`` (``--langgraph-dev``) the ``langgraph`` requests to ``langgraph dev``, langgraph-api's in-memory
               server, serving LangChain's ``create_agent`` on the same mock (``benchmarks/langgraph_dev``), with
               ``--n-jobs-per-worker`` as many as there are users (its default, 10, would queue the rest)
=============  ==================================================================================================

All over raw HTTP on the load generator's aiohttp client (one connection per user), so the comparison is the
server's and not two client libraries'. Each user's thread is created before the clock starts; every (path, users)
gets a fresh ``chatplane-sqlite`` server (``--target``: another) on fresh storage and the same mock model
(``--paths``: some of them). ``langgraph dev`` runs from a virtualenv of its own (``make .venv-langgraph-dev``;
``make bench-langgraph-dev`` runs this with it)::

    python -m benchmarks.api_paths                      # 1, 50 and 200 users, 10 turns each
    python -m benchmarks.api_paths --users 1,50 --turns 3
    python -m benchmarks.api_paths --langgraph-dev      # and langgraph dev beside them
    python -m benchmarks.api_paths --workers 6 --users 200 --paths langgraph --langgraph-dev  # a bigger host

``--workers N`` serves chatplane as ``chatplane serve --workers N`` on PostgreSQL (and Redis): how its throughput
grows with the host's cores, where ``langgraph dev`` keeps its state in one process and stays on one. The table's
*machine busy* column says whether the host's cores were full (then neither server can go faster here), and
*machine CPU ms/turn* what a turn cost all of them together: the server, its database, the mock and this load
generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.load import Result, Subject, _client, _measured, _message, run_loop
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.options import add_mock_options, add_pg_url_option
from benchmarks.procs import REPO_ROOT, ServerProcess, clean_env, free_port
from benchmarks.storage_probes import NoStorage
from benchmarks.targets import TARGETS, launched

PATHS = ("v1", "v1-input", "langgraph", "mcp", "a2a", "protocol")
_MCP_HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
LANGGRAPH_DEV = "langgraph-dev"
LANGGRAPH_DEV_VENV = REPO_ROOT / ".venv-langgraph-dev"
LANGGRAPH_DEV_PROJECT = Path(__file__).parent / "langgraph_dev"
Turn = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


async def _post(client: aiohttp.ClientSession, url: str, body: dict[str, Any], ok: Callable[[Any], bool]) -> Any:
    async with client.post(url, json=body) as response:
        data = await response.json(content_type=None)
        if response.status not in (200, 201) or not ok(data):
            raise RuntimeError(f"HTTP {response.status}: {str(data)[:200]}")
        return data


async def new_thread(path: str, client: aiohttp.ClientSession, base: str) -> Turn:
    """Create the user's thread on ``path`` (not timed); → one turn on it."""
    if path.startswith("v1"):  # chatplane's own API
        thread = await _post(client, f"{base}/v1/threads", {"agent": "chat"}, lambda d: "thread_id" in d)
        url = f"{base}/v1/threads/{thread['thread_id']}/runs"

        async def v1_turn(session: aiohttp.ClientSession, text: str) -> None:
            await _post(session, url, {"message": text}, lambda d: d.get("status") == "succeeded")

        async def v1_input_turn(session: aiohttp.ClientSession, text: str) -> None:
            body = {"input": {"messages": [{"role": "user", "content": text}]}}
            await _post(session, url, body, lambda d: d.get("status") == "succeeded")

        return v1_turn if path == "v1" else v1_input_turn
    if path == "mcp":
        return await _mcp_session(client, base)
    if path == "a2a":
        return _a2a_context(base)
    thread = await _post(client, f"{base}/threads", {"metadata": {"graph_id": "chat"}}, lambda d: "thread_id" in d)
    if path == "protocol":
        return _protocol_thread(f"{base}/threads/{thread['thread_id']}")
    url = f"{base}/threads/{thread['thread_id']}/runs/wait"

    async def langgraph_turn(session: aiohttp.ClientSession, text: str) -> None:
        body = {"assistant_id": "chat", "input": {"messages": [{"role": "user", "content": text}]}}
        await _post(session, url, body, lambda d: isinstance(d, dict) and "__error__" not in d and "messages" in d)

    return langgraph_turn


async def _mcp_session(client: aiohttp.ClientSession, base: str) -> Turn:
    """An MCP session (``initialize``, ``notifications/initialized``); → a ``tools/call`` of ``chat`` in it."""
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}
    async with client.post(f"{base}/mcp", json=body, headers=_MCP_HEADERS) as response:
        await response.read()
        headers = {**_MCP_HEADERS, "mcp-session-id": response.headers["mcp-session-id"]}
    async with client.post(
        f"{base}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    ) as response:
        await response.read()

    async def mcp_turn(session: aiohttp.ClientSession, text: str) -> None:
        call = {"name": "chat", "arguments": {"message": text}}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}
        async with session.post(f"{base}/mcp", json=body, headers=headers) as response:
            data = await response.json(content_type=None)
        if response.status != 200 or data.get("result", {}).get("isError") is not False:
            raise RuntimeError(f"HTTP {response.status}: {str(data)[:200]}")

    return mcp_turn


def _protocol_thread(url: str) -> Turn:
    """→ a ``run.start`` command on the thread at ``url``, then its events until the run's lifecycle ends."""
    ids = iter(range(1, 1 << 30))
    channels = ["lifecycle", "values"]

    async def protocol_turn(session: aiohttp.ClientSession, text: str) -> None:
        params = {"assistant_id": "chat", "input": {"messages": [{"role": "user", "content": text}]}}
        command = {"id": next(ids), "method": "run.start", "params": params}
        answer = await _post(session, f"{url}/commands", command, lambda d: d.get("type") == "success")
        since = answer["meta"]["applied_through_seq"]
        async with session.post(f"{url}/stream/events", json={"channels": channels, "since": since}) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue
                event = json.loads(line[5:])
                if event["method"] == "lifecycle" and event["params"]["data"]["event"] in ("completed", "failed"):
                    if event["params"]["data"]["event"] == "failed":
                        raise RuntimeError(f"run failed: {str(event)[:200]}")
                    return
        raise RuntimeError("the stream ended before the run did")

    return protocol_turn


def _a2a_context(base: str) -> Turn:
    """→ a ``SendMessage`` to ``chat``; the first starts a context, the next go on in it."""
    context: dict[str, str] = {}

    async def a2a_turn(session: aiohttp.ClientSession, text: str) -> None:
        message = {"messageId": uuid.uuid4().hex, "role": "ROLE_USER", "parts": [{"text": text}], **context}
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
        async with session.post(f"{base}/a2a/chat", json=body, headers={"A2A-Version": "1.0"}) as response:
            data = await response.json(content_type=None)
        task = (data.get("result") or {}).get("task") or {}
        if response.status != 200 or task.get("status", {}).get("state") != "TASK_STATE_COMPLETED":
            raise RuntimeError(f"HTTP {response.status}: {str(data)[:200]}")
        context["contextId"] = task["contextId"]

    return a2a_turn


async def run_path(
    subject: Subject,
    path: str,
    *,
    users: int,
    turns: int,
    budget_s: float,
    on_ready: Callable[[], Awaitable[None]] | None = None,
) -> Result:
    """``users`` at once on ``path``, ``turns`` turns each, after one unmeasured turn each (threads warm);
    ``on_ready`` is awaited after those, before the first measured turn (``benchmarks.callgrind`` counts from
    there)."""
    result = Result(f"api-{path}", subject.name, users, turns)
    tag = uuid.uuid4().hex[:6]
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(_client()) for _ in range(users)]
        turns_of = [await new_thread(path, client, subject.url) for client in clients]
        await asyncio.gather(
            *(turn(client, f"[{tag}] warm-up") for turn, client in zip(turns_of, clients, strict=True))
        )
        if on_ready is not None:
            await on_ready()
        deadline = time.monotonic() + budget_s

        async def user(i: int) -> None:
            for n in range(turns):
                if time.monotonic() > deadline:
                    result.stopped = f"budget {budget_s:g} s"
                    return
                started = time.perf_counter()
                try:
                    await turns_of[i](clients[i], _message(tag, i, n))
                except (TimeoutError, RuntimeError, aiohttp.ClientError) as exc:
                    result.error(str(exc)[:200] or type(exc).__name__)
                    continue
                result.ok += 1
                result.latencies.append(time.perf_counter() - started)

        async with _measured(subject, result):
            await asyncio.gather(*(user(i) for i in range(users)))
    return result


@contextlib.asynccontextmanager
async def langgraph_dev(mock_url: str, workdir: Path, users: int) -> AsyncIterator[Subject]:
    """``langgraph dev`` serving ``benchmarks/langgraph_dev`` from a folder of its own (it keeps its state there)."""
    binary = LANGGRAPH_DEV_VENV / "bin" / "langgraph"
    if not binary.exists():
        raise SystemExit(f"{binary} not found: `make .venv-langgraph-dev` installs langgraph dev")
    port = free_port()
    project = workdir / f"langgraph-dev-{port}"
    shutil.copytree(LANGGRAPH_DEV_PROJECT, project, ignore=shutil.ignore_patterns("requirements.txt", ".langgraph_api"))
    argv = [str(binary), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--n-jobs-per-worker", str(max(users, 10)), "--config", "langgraph.json"]
    env = {"OPENAI_BASE_URL": f"{mock_url}/v1", "OPENAI_API_KEY": "x", "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    env |= {"LOG_LEVEL": "WARNING", "PYTHONPATH": ""}
    server = ServerProcess(
        argv, clean_env(env), port=port, cwd=project, health_path="/ok", log_path=workdir / f"langgraph-dev-{port}.log"
    )
    await server.start(120.0)
    try:
        yield Subject(LANGGRAPH_DEV, server.url, mock_url, server.pid, NoStorage(), streaming=False)
    finally:
        server.stop()


async def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    config = {"ttft": args.mock_ttft, "tokens": args.mock_tokens, "token_interval": args.mock_token_interval}
    target = TARGETS[args.target]
    if args.workers > 1:
        target = dataclasses.replace(TARGETS["chatplane-postgres"], name=f"chatplane-postgres-w{args.workers}")
        target = dataclasses.replace(target, workers=args.workers)
    mock = MockOpenAIServer(own_process=True, **config)
    paths = [*args.paths, LANGGRAPH_DEV] if args.langgraph_dev else list(args.paths)
    with tempfile.TemporaryDirectory(prefix="chatplane-api-paths-") as tmp, mock:
        for users in args.users:
            for path in paths:
                server = (
                    langgraph_dev(mock.url, Path(tmp), users)
                    if path == LANGGRAPH_DEV
                    else launched(target, mock_url=mock.url, workdir=Path(tmp), pg_admin_url=args.pg_url)
                )
                async with server as subject:
                    result = await run_path(subject, path, users=users, turns=args.turns, budget_s=args.budget)
                print(f"  {path:<10} {users:>4} users: {_row(result)}", flush=True)
                results.append(result)
    return results


def _row(result: Result) -> str:
    s = result.summary()
    return (
        f"{s['ok']} ok, {s['errors']} errors, {s['throughput'] or 0:.1f} turns/s, p50 {_ms(s['p50'])} ms, "
        f"p95 {_ms(s['p95'])} ms, {_num(s['cpu_ms_per_turn'])} ms CPU/turn"
    )


def table(results: list[Result]) -> str:
    """One Markdown table: each user count on every path, and each path's throughput against ``v1``'s."""
    lines = [
        "| users | path | turns ok / errors | turns/s | p50 ms | p95 ms | server CPU ms/turn | database CPU ms/turn "
        "| vs `v1` | machine busy | machine CPU ms/turn | speed probe ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    native = {r.users: r.summary()["throughput"] for r in results if r.scenario == "api-v1"}
    for r in results:
        s = r.summary()
        base = native.get(r.users)
        ratio = f"{s['throughput'] / base:.0%}" if base and s["throughput"] else "—"
        lines.append(
            f"| {r.users} | `{r.scenario.removeprefix('api-')}` | {s['ok']} / {s['errors']} | "
            f"{s['throughput'] or 0:.1f} | {_ms(s['p50'])} | {_ms(s['p95'])} | {_num(s['cpu_ms_per_turn'])} | "
            f"{_num(s['db_cpu_ms_per_turn'])} | {ratio} | {_pct(s['machine_busy'])} | "
            f"{_num(s['machine_cpu_ms_per_turn'])} | {_num(s['speed_probe_ms'])} |"
        )
    return "\n".join(lines)


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_paths", description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="1,50,200", help="concurrency levels, comma list")
    parser.add_argument("--turns", type=int, default=10, help="measured turns per user")
    parser.add_argument("--target", default="chatplane-sqlite", choices=sorted(t for t in TARGETS if "chatplane" in t))
    parser.add_argument(
        "--workers", type=int, default=1, help="N > 1: chatplane serve --workers N on PostgreSQL (instead of --target)"
    )
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per run before no new turn starts")
    parser.add_argument(
        "--langgraph-dev", action="store_true", help="also langgraph dev (from .venv-langgraph-dev), same requests"
    )
    add_mock_options(parser)
    add_pg_url_option(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    args.users = [int(n) for n in args.users.split(",") if n]
    args.paths = [p for p in args.paths.split(",") if p]
    if unknown := set(args.paths) - set(PATHS):
        raise SystemExit(f"--paths: no such path {', '.join(sorted(unknown))}")
    results = run_loop(run(args))
    print(table(results))


if __name__ == "__main__":
    main()
