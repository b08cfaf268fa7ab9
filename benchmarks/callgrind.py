"""Instructions per turn: chatplane's server under callgrind, one user sending ``POST /chat`` turns one after another.

    python -m benchmarks.callgrind                                  # this tree, SQLite and PostgreSQL, 50 turns
    python -m benchmarks.callgrind --src /tmp/old --src . --repeat 2  # before and after, each twice
    python -m benchmarks.callgrind --path langgraph --storage sqlite  # a path of benchmarks.api_paths instead

CPU time on a shared virtual machine moves by 25-50% from minute to minute; the number of instructions the server
executes for the same turns does not. The server (``python -m chatplane serve``, real uvicorn, as ``targets.py``
starts it, against the mock model in its own process) runs under ``valgrind --tool=callgrind
--instr-atstart=no``: start-up and the warm-up turns run uninstrumented, then ``callgrind_control --instr=on``
switches counting on, the measured turns run, and ``callgrind_control --dump`` writes the counts, whose ``totals``
line divided by the successful turns is the number reported. ``PYTHONHASHSEED=0`` keeps dict and set layouts the
same from run to run.

What is counted: every instruction of the server process (all its threads: the event loop, aiosqlite's, the
default executor's) from the first measured turn to the dump, idle wake-ups and timers included. Not counted: the
PostgreSQL backends (other processes), the mock, the load generator. The one session grows turn by turn, so the
count depends on ``--turns``: compare runs with the same number.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import report
from benchmarks.api_paths import PATHS, run_path
from benchmarks.load import run_concurrency, run_loop, warm_up
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.options import add_mock_options, add_pg_url_option
from benchmarks.sources import Source, resolve
from benchmarks.targets import CHATPLANE_ON, TARGETS, launched


@dataclass
class Count:
    source: str
    storage: str
    run: int
    turns: int  # successful measured turns
    errors: int
    instructions: int

    @property
    def per_turn(self) -> float:
        return self.instructions / self.turns if self.turns else float("nan")


def _log(message: str) -> None:
    print(f"[callgrind {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_totals(path: Path) -> int:
    """The instructions (``Ir``) of a callgrind output file: its ``totals:`` line, else its ``summary:`` line."""
    found: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, _, rest = line.partition(":")
        if key in ("totals", "summary") and rest.split():
            found[key] = int(rest.split()[0])
    if not found:
        raise RuntimeError(f"no totals or summary line in {path}")
    return found.get("totals", found.get("summary", 0))


async def _control(pid: int, *args: str) -> None:
    """``callgrind_control ARGS PID`` (it reaches the process through vgdb, and waits for the answer)."""
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control", *args, str(pid), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    if proc.returncode:
        raise RuntimeError(f"callgrind_control {' '.join(args)} {pid}: {out.decode(errors='replace').strip()}")


async def measure(
    source: Source, storage: str, run: int, args: argparse.Namespace, mock_url: str, workdir: Path
) -> Count:
    """One fresh server on fresh storage: warm up uninstrumented, then count ``args.turns`` turns."""
    out_dir = Path(args.out_dir) if args.out_dir else workdir
    stem = f"callgrind.{storage}.run{run}.{int(time.time())}"
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir.resolve() / stem}.%p",
    ]
    async with launched(
        TARGETS[CHATPLANE_ON[storage]],
        mock_url=mock_url,
        workdir=workdir,
        pg_admin_url=args.pg_url,
        src=source.path,
        wrapper=wrapper,
        extra_env={"PYTHONHASHSEED": "0"},
        start_within_s=600,
    ) as subject:
        assert subject.pid is not None
        pid = subject.pid
        await warm_up(subject, args.warm_up)
        if args.path is None:
            await _control(pid, "--instr=on")
            result = await run_concurrency(
                subject, users=1, turns=args.turns, budget_s=args.budget, drain_s=60, warm_up_turns=0
            )
        else:  # its thread made and warmed up uninstrumented, then counted from its first measured turn
            result = await run_path(
                subject,
                args.path,
                users=1,
                turns=args.turns,
                budget_s=args.budget,
                on_ready=lambda: _control(pid, "--instr=on"),
            )
        await _control(subject.pid, "--dump=measured turns")
        await _control(subject.pid, "--instr=off")  # a quicker shutdown
        dumps = sorted(out_dir.glob(f"{stem}.{subject.pid}.*"), key=lambda p: p.stat().st_mtime)
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump {stem}.{subject.pid}.* in {out_dir}")
    if result.errors or result.stopped:
        _log(f"{storage}: {result.errors} errors {result.error_samples[:2]}, stopped: {result.stopped}")
    return Count(source.label, storage, run, result.ok, result.errors, read_totals(dumps[-1]))


def render(counts: list[Count]) -> str:
    """The runs, then per (source, storage) the mean, the spread of its runs and the ratio to the first source."""
    rows = [
        [c.source, c.storage, str(c.run), str(c.turns), f"{c.instructions / 1e9:.3f} G", f"{c.per_turn / 1e6:.2f} M"]
        for c in counts
    ]
    runs = report.table(["source", "storage", "run", "turns", "instructions", "instructions/turn"], rows)
    groups: dict[tuple[str, str], list[float]] = {}
    for c in counts:
        groups.setdefault((c.source, c.storage), []).append(c.per_turn)
    first: dict[str, float] = {}
    summary = []
    for (source, storage), values in groups.items():
        mean = statistics.fmean(values)
        first.setdefault(storage, mean)
        spread = (max(values) - min(values)) / min(values) * 100 if len(values) > 1 else None
        summary.append(
            [
                source,
                storage,
                str(len(values)),
                f"{mean / 1e6:.2f} M",
                f"{spread:.2f}%" if spread is not None else "—",
                f"{(mean / first[storage] - 1) * 100:+.2f}%",
            ]
        )
    table = report.table(["source", "storage", "runs", "instructions/turn", "spread", "vs first source"], summary)
    return f"{runs}\n\n{table}"


async def _run(args: argparse.Namespace, sources: list[Source]) -> list[Count]:
    storages = list(CHATPLANE_ON) if args.storage == "both" else [args.storage]
    counts: list[Count] = []
    mock = MockOpenAIServer(
        own_process=True, ttft=args.mock_ttft, tokens=args.mock_tokens, token_interval=args.mock_token_interval
    )
    with tempfile.TemporaryDirectory(prefix="chatplane-callgrind-") as tmp, mock:
        for run in range(1, args.repeat + 1):
            for source in sources:
                for storage in storages:
                    started = time.monotonic()
                    count = await measure(source, storage, run, args, mock.url, Path(tmp))
                    _log(
                        f"{source.label} {storage} run {run}: {count.turns} turns, "
                        f"{count.per_turn / 1e6:.2f} M instructions/turn ({time.monotonic() - started:.0f} s)"
                    )
                    counts.append(count)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind", description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", help="a chatplane source tree (repeatable; default: this repository)")
    parser.add_argument("--storage", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--turns", type=int, default=50, help="measured turns (one user, one session)")
    parser.add_argument(
        "--path", choices=PATHS, help="turns of this path of benchmarks.api_paths instead of POST /chat"
    )
    parser.add_argument("--warm-up", type=int, default=5, help="uninstrumented turns first (each /chat and stream)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (source, storage), interleaved")
    parser.add_argument("--budget", type=float, default=900, help="seconds before no new measured turn starts")
    parser.add_argument("--out-dir", help="keep the callgrind files here (for callgrind_annotate)")
    add_mock_options(parser)
    add_pg_url_option(parser)
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (Debian: apt-get install valgrind)")
    if args.out_dir:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    sources = [resolve(path) for path in args.src or [None]]
    counts = run_loop(_run(args, sources))
    print(render(counts))


if __name__ == "__main__":
    main()
