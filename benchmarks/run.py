"""One benchmark run: every scenario on every target against one mock model, then ``benchmarks/RESULTS.md``.

    python -m benchmarks.run --quick          # a few minutes: 1/10/50 users, growth to 50 turns
    python -m benchmarks.run                  # the issue's sizes: 1/10/50/200/500 users, growth to 1,000 turns

Each (target, scenario) gets a fresh server process on fresh storage, so peak RSS and storage numbers belong to
that scenario alone. Targets run one after the other on the same machine and the same mock, so their ratios hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks import report
from benchmarks.load import Result, mock_alone, run_concurrency, run_growth, run_loop, run_ttft
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.options import add_mock_options, add_pg_url_option
from benchmarks.procs import ProcessProbe
from benchmarks.targets import CONTEXT_BUDGET_TOKENS, DEFAULT_TARGETS, TARGETS, Target, launched

PRESETS: dict[str, dict[str, Any]] = {
    "full": {
        "users": "1,10,50,200,500",
        "turns": 10,
        "ttft_users": "1,10,50",
        "ttft_turns": 5,
        "growth_turns": 1000,
        "reference_users": "1,10,50",
        "reference_growth_turns": 200,
        "budget": 60.0,
        "drain": 120.0,
        "growth_budget": 900.0,
        "embedded_requests": 5,
    },
    "quick": {
        "users": "1,10,50",
        "turns": 2,
        "ttft_users": "1,10",
        "ttft_turns": 3,
        "growth_turns": 50,
        "reference_users": "1,10,50",
        "reference_growth_turns": 50,
        "budget": 60.0,
        "drain": 60.0,
        "growth_budget": 120.0,
        "embedded_requests": 3,
    },
}
SCENARIOS = ("concurrency", "ttft", "growth", "embedded")


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _line(result: Result) -> str:
    s = result.summary()
    parts = [f"{result.target} {result.scenario} users={result.users}: {s['ok']}/{s['planned']} ok"]
    if s["throughput"]:
        parts.append(f"{s['throughput']:.2f} turns/s, p50 {report._dur(s['p50'])}")
    if s["ttft_p50"] is not None:
        parts.append(f"TTFT p50 {report._dur(s['ttft_p50'])}")
    if s["stopped"] or s["errors"]:
        parts.append(report._note(s))
    return ", ".join(parts)


async def _scenarios(target: Target, args: argparse.Namespace, mock_url: str, workdir: Path) -> list[Result]:
    results: list[Result] = []
    runs: list[tuple[str, int]] = []
    # The seed's design serves one turn at a time whoever sends it: its sqlite/postgres twins of seed-memory show
    # nothing new at high concurrency or past turn 200 (the issue's own mark), only minutes of waiting.
    reference = target.app == "seed" and target.storage != "memory"
    growth_turns = args.reference_growth_turns if target.app == "seed" else args.growth_turns
    if "concurrency" in args.scenarios:
        runs += [("concurrency", n) for n in _ints(args.reference_users if reference else args.users)]
    if target.workers > 1:  # the scaling question only: throughput under concurrency
        runs = [run for run in runs if run[1] >= 50]
    elif "ttft" in args.scenarios:
        runs += [("ttft", n) for n in _ints(args.ttft_users)]
    if target.app == "floor":  # no history to grow, no stream: the floor under /chat only
        runs = [run for run in runs if run[0] == "concurrency"]
    elif "growth" in args.scenarios and target.workers == 1:
        runs.append(("growth", 1))
    if "ttft" in args.scenarios and target.app == "seed":
        results.append(Result("ttft", target.name, 0, 0, stopped="n/a: no streaming endpoint"))
        runs = [run for run in runs if run[0] != "ttft"]
    for scenario, users in runs:
        try:
            async with launched(target, mock_url=mock_url, workdir=workdir, pg_admin_url=args.pg_url) as subject:
                if scenario == "concurrency":
                    result = await run_concurrency(
                        subject, users=users, turns=args.turns, budget_s=args.budget, drain_s=args.drain
                    )
                elif scenario == "ttft":
                    result = await run_ttft(
                        subject, users=users, turns=args.ttft_turns, budget_s=args.budget, drain_s=args.drain
                    )
                else:
                    result = await run_growth(subject, turns=growth_turns, budget_s=args.growth_budget)
        except (RuntimeError, OSError, psycopg.Error, httpx.HTTPError) as exc:
            _log(f"{target.name} {scenario} failed: {exc}")
            result = Result(scenario, target.name, users, 0, stopped=f"failed: {str(exc).splitlines()[0][:200]}")
        _log(_line(result))
        results.append(result)
    return results


async def settle(pg_url: str, *, quiet_load: float = 0.5, max_wait_s: float = 180) -> None:
    """Start from a quiet machine: PostgreSQL writes out what earlier work left dirty (a checkpoint), then the
    1-minute load average falls below ``quiet_load`` (at most ``max_wait_s``). Right after a test suite, the
    first target measured ran at half speed: the database and the kernel were still catching up."""
    with contextlib.suppress(psycopg.Error, OSError):
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True, connect_timeout=5) as conn:
            await conn.execute("CHECKPOINT")
    deadline = time.monotonic() + max_wait_s
    if os.getloadavg()[0] >= quiet_load:
        _log(f"waiting for the machine to quieten (load {report.load_average()})")
    while os.getloadavg()[0] >= quiet_load and time.monotonic() < deadline:  # noqa: ASYNC110 - an OS reading, no event
        await asyncio.sleep(5)


async def run(args: argparse.Namespace) -> str:
    started = time.monotonic()
    await settle(args.pg_url)
    env = report.environment(args.pg_url)
    targets = [TARGETS[name] for name in args.targets.split(",")]
    if any(t.storage == "postgres" for t in targets) and env["postgresql"].startswith("unreachable"):
        _log(f"PostgreSQL {env['postgresql']} at {args.pg_url}: skipping the postgres targets")
        targets = [t for t in targets if t.storage != "postgres"]
    results: list[Result] = []
    embedded: list[dict[str, Any]] = []
    mock_cpu = ""
    mock = MockOpenAIServer(
        own_process=True, ttft=args.mock_ttft, tokens=args.mock_tokens, token_interval=args.mock_token_interval
    )
    with tempfile.TemporaryDirectory(prefix="chatplane-bench-") as tmp, mock:
        args.mock_alone = await mock_alone(mock.url)
        probe = ProcessProbe(mock.pid)
        cpu_before = probe.cpu_seconds()
        try:
            for done, target in enumerate(targets, 1):
                _log(f"target {target.name}")
                results += await _scenarios(target, args, mock.url, Path(tmp))
                if done < len(targets):  # a long run keeps what it has measured so far
                    took = time.monotonic() - started
                    _write(args.output, render(args, env, targets, results, [], "", took, f"{done}/{len(targets)}"))
        finally:
            calls = sum(len(r.prompt_messages) for r in results)
            if calls:
                mock_cpu = f"{(probe.cpu_seconds() - cpu_before) * 1000 / calls:.2f} ms of CPU per model call"
        if "embedded" in args.scenarios:
            from benchmarks.embedded import run_embedded

            _log("embedded model")
            try:
                embedded = await run_embedded(args.embedded_requests, args.embedded_max_tokens, Path(tmp))
            except (RuntimeError, OSError, ImportError, httpx.HTTPError) as exc:
                _log(f"embedded benchmark failed: {type(exc).__name__}: {exc}")
    args.raw = [asdict(r) for r in results] + [{"embedded": embedded}]
    return render(args, env, targets, results, embedded, mock_cpu, time.monotonic() - started)


def _write(output: str, markdown: str) -> None:
    if output != "-":
        Path(output).write_text(markdown)


def render(
    args: argparse.Namespace,
    env: dict[str, str],
    targets: list[Target],
    results: list[Result],
    embedded: list[dict[str, Any]],
    mock_cpu: str,
    took_s: float,
    partial: str = "",
) -> str:
    latency = args.mock_ttft + args.mock_tokens * args.mock_token_interval
    command = "python -m benchmarks.run " + " ".join(args.argv)
    machine = report.table(
        ["", ""],
        [
            ["date", env["date"]],
            ["machine", f"{env['cpu']}, {env['ram']} RAM"],
            ["OS", env["os"]],
            ["load average (1/5/15 min) at start / end", f"{env['load']} / {report.load_average()}"],
            ["Python", env["python"]],
            ["chatplane", env["chatplane"]],
            ["packages", env["packages"]],
            ["SQLite / PostgreSQL", f"{env['sqlite']} / {env['postgresql']}"],
            ["PostgreSQL round trip: back to back / after 20 ms idle / after 400 ms idle", env["round_trip"]],
        ],
    )
    sizes = (
        f"concurrency: {args.users} users × {args.turns} turns (seed-sqlite / seed-postgres: {args.reference_users}; "
        f"chatplane-postgres-w2: 50 users and up); TTFT: {args.ttft_users} users × {args.ttft_turns} turns; "
        f"growth: {args.growth_turns} turns (seed targets: {args.reference_growth_turns}); budget {args.budget:g} s "
        f"per run ({args.growth_budget:g} s for growth), after which no new turn starts, then {args.drain:g} s for "
        "the turns in flight to finish"
    )
    sections = [
        "# chatplane benchmark results",
        f"Written by `{command.strip()}` in {took_s / 60:.1f} min. How to read it: `benchmarks/README.md`."
        + (f" **Partial: {partial} targets done, still running.**" if partial else ""),
        machine,
        "## Set-up",
        "\n".join(
            [
                f"- **Mock model** (`benchmarks/mock_openai.py`, its own process): first token after "
                f"{args.mock_ttft * 1000:.0f} ms, then {args.mock_tokens} tokens {args.mock_token_interval * 1000:.0f} "
                f'ms apart: **{latency * 1000:.0f} ms per call** ("overhead" = latency − {latency * 1000:.0f} ms).'
                + (f" The mock used {mock_cpu}." if mock_cpu else "")
                + _floor(getattr(args, "mock_alone", None)),
                "- **chatplane-\\*** — `python -m chatplane serve` with `CHATPLANE_MODEL=openai:mock`, "
                "`OPENAI_BASE_URL=<mock>/v1`, `CHATPLANE_LOG_LEVEL=warning`, "
                f"`CHATPLANE_CONTEXT_BUDGET_TOKENS={CONTEXT_BUDGET_TOKENS}`, per-user quotas off (every request "
                "is the one local user), other settings default; `-w2`: `--workers 2` (CPU and RSS are the sum of "
                "the workers').",
                "- **seed-\\*** — `benchmarks/seed_app.py` (the seed's design: sync `invoke` in `async def`, sync "
                "savers) under `uvicorn --log-level warning --no-access-log`.",
                "- **floor** — `benchmarks/floor_app.py`: FastAPI that sends each message alone to the model and "
                "returns its answer (no graph, no storage, no auth), under the same uvicorn: what HTTP in and out "
                "and this machine cost before any agent work (concurrency only).",
                f"- Targets: {', '.join(t.name for t in targets)}. Each scenario starts a fresh server on fresh "
                "storage (SQLite file / new PostgreSQL database) and is warmed up with 3 turns on a session of its own "
                "(chatplane: 3 more over `/chat/stream`) before anything is measured. The load generator runs in the "
                "runner process.",
                f"- Sizes: {sizes}.",
            ]
        ),
        report.concurrency_tables(results),
        report.ttft_table(results),
        report.growth_tables(results),
    ]
    if embedded:
        sections += [
            "## Embedded model (SmolLM2-135M on llama.cpp): through chatplane vs direct",
            report.embedded_table(embedded),
            "Requests alternate between the two paths, one at a time, after one warm-up each; "
            f"{args.embedded_max_tokens}-token cap, temperature 0, the same system prompt and question.",
        ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _floor(alone: dict[str, float] | None) -> str:
    if not alone:
        return ""
    return (
        " Called straight from the load generator, one call at a time, it answers in "
        f"{alone['streamed'] * 1000:.1f} ms streamed (as chatplane's `/chat/stream` calls it) and "
        f"{alone['json'] * 1000:.1f} ms as one JSON body (as `POST /chat` of every target does), p50: the floor under "
        "every latency below (client, HTTP and the 1 ms timer resolution of the event loops included)."
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS), help=f"comma list of {', '.join(TARGETS)}")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    parser.add_argument("--users", help="concurrency levels, comma list (full: 1,10,50,200,500)")
    parser.add_argument("--turns", type=int, help="turns per user in the concurrency scenario")
    parser.add_argument("--ttft-users", help="concurrent streams, comma list")
    parser.add_argument("--ttft-turns", type=int, help="turns per user in the TTFT scenario")
    parser.add_argument("--growth-turns", type=int, help="turns of the one growing session")
    parser.add_argument("--budget", type=float, help="seconds per concurrency/TTFT run before no new turn starts")
    parser.add_argument("--growth-budget", type=float, help="seconds for the growth run")
    parser.add_argument("--drain", type=float, help="seconds to let turns in flight finish after it")
    parser.add_argument("--reference-users", help="concurrency levels for seed-sqlite / seed-postgres")
    parser.add_argument("--reference-growth-turns", type=int, help="growth turns of the seed targets")
    add_mock_options(parser)
    parser.add_argument("--embedded-requests", type=int)
    parser.add_argument("--embedded-max-tokens", type=int, default=128)
    add_pg_url_option(parser)
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS.md")), help="'-': stdout only")
    parser.add_argument("--json", help="also write every raw result here")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    args.argv = argv
    for name, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = [t for t in args.targets.split(",") if t not in TARGETS] + [
        s for s in args.scenarios if s not in SCENARIOS
    ]
    if unknown:
        raise SystemExit(f"unknown targets/scenarios: {', '.join(unknown)}")
    markdown = run_loop(run(args))
    _write(args.output, markdown)
    if args.output != "-":
        _log(f"wrote {args.output}")
    if args.json:
        Path(args.json).write_text(json.dumps(args.raw, indent=1))
    print(markdown)


if __name__ == "__main__":
    main()
