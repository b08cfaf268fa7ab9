"""Where a turn's CPU goes: a target under the concurrency load, sampled by py-spy, summarised as tables.

    python -m benchmarks.profile --target chatplane-postgres --users 50 --seconds 20
    python -m benchmarks.profile --stream                      # turns streamed token by token (/chat/stream)
    python -m benchmarks.profile --collapsed /tmp/turns.txt     # also keep py-spy's raw stacks (flamegraph input)
    python -m benchmarks.profile --path langgraph --target chatplane-sqlite   # a path of benchmarks.api_paths

Prints two tables of the server's samples (idle ones, the event loop waiting in ``select``, left out): the
functions that hold the most samples *including* what they call, and those that hold the most *themselves*.
py-spy comes with the dev dependencies; attaching to another process may need ``ptrace`` rights (root here).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.api_paths import PATHS, run_path
from benchmarks.load import Result, Subject, run_concurrency, run_loop, run_ttft
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.targets import TARGETS, launched

_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    """``func (path/to/module.py:12)`` → ``module.py:func`` (line numbers would split one function's samples)."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{match['func']}"


def summarise(collapsed: str, top: int = 30) -> tuple[int, list[list[str]], list[list[str]]]:
    """(busy samples, inclusive rows, self rows) of py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # the first entry is the thread
        if not frames or frames[-1].endswith((":select", ":poll", ":epoll_wait")):
            continue
        count = int(count_text)
        busy += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count

    def rows(counter: collections.Counter[str]) -> list[list[str]]:
        return [[name, f"{100 * n / max(busy, 1):.1f}%"] for name, n in counter.most_common(top)]

    return busy, rows(inclusive), rows(own)


def _scenario(args: argparse.Namespace) -> Any:
    """The load to sample: ``POST /chat`` (or ``/chat/stream``), or one of ``benchmarks.api_paths``' paths."""
    if args.path is None:
        return run_ttft if args.stream else run_concurrency

    async def on_path(subject: Subject, *, users: int, turns: int, budget_s: float, drain_s: float) -> Result:
        return await run_path(subject, args.path, users=users, turns=turns, budget_s=budget_s)

    return on_path


async def _profile(args: argparse.Namespace, raw_path: Path) -> str:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    target = TARGETS[args.target]
    with tempfile.TemporaryDirectory(prefix="chatplane-profile-") as tmp, MockOpenAIServer(own_process=True) as mock:
        src = Path(args.src) if args.src else None  # made absolute in main()
        async with launched(target, mock_url=mock.url, workdir=Path(tmp), pg_admin_url=args.pg_url, src=src) as subject:
            scenario = _scenario(args)
            await scenario(subject, users=args.users, turns=1, budget_s=30, drain_s=30)  # warm up
            sampler = await asyncio.create_subprocess_exec(
                *[py_spy, "record", "--pid", str(subject.pid), "--subprocesses", "--duration", str(args.seconds)],
                *["--rate", str(args.rate), "--format", "raw", "--output", str(raw_path), "--nonblocking"],
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            result = await scenario(subject, users=args.users, turns=10_000, budget_s=args.seconds, drain_s=30)
            _, err = await sampler.communicate()
            if sampler.returncode:
                raise SystemExit(f"py-spy failed: {err.decode(errors='replace').strip()[-500:]}")
    s = result.summary()
    name = f"{args.target} {args.path}" if args.path else args.target
    line = (
        f"{name}, {args.users} users: {s['ok']} turns in {args.seconds} s, "
        f"{s['throughput']:.1f} turns/s, {s['cpu_ms_per_turn']:.1f} ms CPU per turn"
    )
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="chatplane-postgres", choices=sorted(TARGETS))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--stream", action="store_true", help="turns over POST /chat/stream (token by token)")
    parser.add_argument("--path", choices=PATHS, help="turns on this path of benchmarks.api_paths instead of /chat")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--src", help="a chatplane source tree to profile (default: this repository)")
    parser.add_argument("--collapsed", help="keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--pg-url", default=os.environ.get("CHATPLANE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args(argv)
    if args.src:
        args.src = str(Path(args.src).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(args.collapsed) if args.collapsed else Path(tmp) / "stacks.txt"
        headline = run_loop(_profile(args, raw_path))
        collapsed = raw_path.read_text()
    busy, inclusive, own = summarise(collapsed, args.top)
    print(f"# {headline}; {busy} busy samples\n")
    print("## Including callees\n")
    print(report.table(["function", "share of busy samples"], inclusive))
    print("\n## Self\n")
    print(report.table(["function", "share of busy samples"], own))


if __name__ == "__main__":
    main()
