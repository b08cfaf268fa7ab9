"""CPU per turn at N users for one or more chatplane source trees, on SQLite and PostgreSQL, as one table.

    python -m benchmarks.cpu_per_turn --users 200                              # this tree, both storages
    python -m benchmarks.cpu_per_turn --src /tmp/old --src . --rounds 3        # before and after, interleaved
    python -m benchmarks.cpu_per_turn --graph chat --graph user                # built-in agent beside a user graph

The numbers are the concurrency scenario's (``load.run_concurrency``: N users at once, each on its own session,
``--turns`` turns each through ``POST /chat``, after the usual warm-up), on a server started by ``targets.launched``
exactly as ``benchmarks.run`` starts it — only chatplane's source tree changes (``--src DIR``:
``PYTHONPATH=DIR/src``). CPU ms/turn is the server process's user + system CPU ÷ turns; DB CPU ms/turn the
PostgreSQL backends' of the run's own database.

This machine's speed moves by 25-50% from minute to minute, so a before/after comparison runs the trees in rounds
(old, new, old, new, ...) and reports each tree's median with the speed probe beside it: compare medians taken in
the same session, and distrust a difference smaller than the spread of one tree's own rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.load import run_concurrency, run_loop
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.options import add_mock_options, add_pg_url_option
from benchmarks.run import settle
from benchmarks.sources import Source, resolve
from benchmarks.targets import CHATPLANE_ON, TARGETS, launched

GRAPH_ENV: dict[str, dict[str, str]] = {
    "chat": {},  # the built-in chat agent
    "user": {  # a team's own messages graph, loaded from a project file (benchmarks/project)
        "CHATPLANE_CONFIG_FILE": str(Path(__file__).parent / "project" / "chatplane.json"),
        "CHATPLANE_DEFAULT_AGENT": "user_chat",
    },
}


def _serves(source: Source, graph: str) -> bool:
    """Whether the tree can serve ``graph`` (a user's graph needs the project loader: trees from issue #22 on)."""
    return graph == "chat" or (source.path / "src" / "chatplane" / "agents" / "project.py").exists()


def _log(message: str) -> None:
    print(f"[cpu {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


async def _run(args: argparse.Namespace, sources: list[Source]) -> list[dict[str, Any]]:
    storages = list(CHATPLANE_ON) if args.storage == "both" else [args.storage]
    turns, budget = (1_000_000, args.seconds) if args.seconds else (args.turns, args.budget)
    rows: list[dict[str, Any]] = []
    mock = MockOpenAIServer(
        own_process=True, ttft=args.mock_ttft, tokens=args.mock_tokens, token_interval=args.mock_token_interval
    )
    if args.settle > 0:
        await settle(args.pg_url, max_wait_s=args.settle)
    with tempfile.TemporaryDirectory(prefix="chatplane-cpu-") as tmp, mock:
        for round_ in range(1, args.rounds + 1):
            for storage in storages:
                for source, graph in [(s, g) for s in sources for g in args.graph or ["chat"] if _serves(s, g)]:
                    async with launched(
                        TARGETS[CHATPLANE_ON[storage]],
                        mock_url=mock.url,
                        workdir=Path(tmp),
                        pg_admin_url=args.pg_url,
                        src=source.path,
                        extra_env=GRAPH_ENV[graph],
                    ) as subject:
                        result = await run_concurrency(
                            subject, users=args.users, turns=turns, budget_s=budget, drain_s=args.drain
                        )
                    label = source.label if graph == "chat" else f"{source.label} ({graph} graph)"
                    summary = {**result.summary(), "source": label, "storage": storage, "round": round_}
                    _log(
                        f"{source.label} {storage} round {round_}: {summary['ok']} turns, "
                        f"{_ms(summary['cpu_ms_per_turn'])} ms CPU/turn, speed probe "
                        f"{_ms(summary['speed_probe_ms'])}" + (f", {result.errors} errors" if result.errors else "")
                    )
                    rows.append(summary)
    return rows


def render(rows: list[dict[str, Any]], users: int) -> str:
    """Every run, then each (source, storage)'s median CPU per turn, its spread and its ratio to the first source."""
    runs = report.table(
        ["source", "storage", "round", "users", "turns ok", "turns/s", "CPU ms/turn", "DB CPU ms/turn", "speed probe"],
        [
            [
                r["source"],
                r["storage"],
                str(r["round"]),
                str(users),
                f"{r['ok']}" + (f" ({r['errors']} errors)" if r["errors"] else ""),
                _ms(r["throughput"]),
                _ms(r["cpu_ms_per_turn"]),
                _ms(r["db_cpu_ms_per_turn"]),
                _ms(r["speed_probe_ms"]),
            ]
            for r in rows
        ],
    )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["cpu_ms_per_turn"] is not None:
            groups.setdefault((r["source"], r["storage"]), []).append(r)
    first: dict[str, float] = {}
    summary = []
    for (source, storage), group in groups.items():
        cpu = [r["cpu_ms_per_turn"] for r in group]
        db = [r["db_cpu_ms_per_turn"] for r in group if r["db_cpu_ms_per_turn"] is not None]
        probes = [r["speed_probe_ms"] for r in group if r["speed_probe_ms"] is not None]
        median = statistics.median(cpu)
        first.setdefault(storage, median)
        summary.append(
            [
                source,
                storage,
                str(len(cpu)),
                _ms(median),
                f"{_ms(min(cpu))}–{_ms(max(cpu))}",
                _ms(statistics.median(db)) if db else "—",
                _ms(statistics.median(probes)) if probes else "—",
                f"{(median / first[storage] - 1) * 100:+.1f}%",
            ]
        )
    table = report.table(
        ["source", "storage", "runs", "CPU ms/turn (median)", "range", "DB CPU ms/turn", "speed probe", "vs first"],
        summary,
    )
    return f"{runs}\n\n{table}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_per_turn", description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", help="a chatplane source tree (repeatable; default: this repository)")
    parser.add_argument("--storage", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--graph",
        action="append",
        choices=sorted(GRAPH_ENV),
        help="what /chat talks to (repeatable; default: chat): the built-in chat agent, or a user's own graph",
    )
    parser.add_argument("--turns", type=int, default=10, help="turns per user (the issue's size: 10)")
    parser.add_argument("--seconds", type=float, help="instead of --turns: keep every user busy this long")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each (source, storage), interleaved")
    parser.add_argument("--budget", type=float, default=120, help="seconds before no new turn starts")
    parser.add_argument("--drain", type=float, default=60, help="seconds for the turns in flight after it")
    parser.add_argument(
        "--settle", type=float, default=180, help="wait up to this long for a quiet machine first (0: no wait)"
    )
    add_mock_options(parser)
    add_pg_url_option(parser)
    args = parser.parse_args(argv)
    sources = [resolve(path) for path in args.src or [None]]
    rows = run_loop(_run(args, sources))
    print(render(rows, args.users))


if __name__ == "__main__":
    main()
