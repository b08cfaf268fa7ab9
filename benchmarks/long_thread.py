"""Per-turn cost along a long thread: server CPU, prompt size and bytes written, from turn 1 to turn 2,000.

    python -m benchmarks.long_thread                         # 2,000 turns of 2 KB messages, SQLite and PostgreSQL
    python -m benchmarks.long_thread --turns 500 --storage sqlite

``--users`` users (each on a thread of its own) send ``--turns`` turns of ``--message-bytes`` each through
``POST /chat``, on a server started as ``benchmarks.run`` starts it, with the default settings (the default context
budget included) and the mock model. The turns go in windows (1–10, 11–100, then every ``--window``); the users wait
for each other at each window's end, where the server's CPU, the storage's bytes written and the prompts the mock
received are read. A window's row is what its turns cost: flat from turn 10 on is what issue #29 asks for.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import report
from benchmarks.load import Result, Subject, _chat_turn, _client, run_loop, speed_probe, warm_up
from benchmarks.mock_openai import MockOpenAIServer
from benchmarks.options import add_mock_options, add_pg_url_option
from benchmarks.procs import ProcessProbe
from benchmarks.sources import resolve
from benchmarks.targets import CHATPLANE_ON, TARGETS, launched


@dataclass
class Window:
    storage: str
    first: int
    last: int
    turns: int
    errors: int
    cpu_ms_per_turn: float
    prompt_kb: float
    prompt_messages: float
    written_kb_per_turn: float | None
    speed_probe_ms: float


def _log(message: str) -> None:
    print(f"[long-thread {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def windows(turns: int, every: int) -> list[tuple[int, int]]:
    """(first, last) turns of each window: 1–10, 11–100, then every ``every`` turns."""
    bounds = [b for b in (10, 100) if b < turns] + list(range(100 + every, turns, every)) + [turns]
    out, first = [], 1
    for last in sorted(set(bounds)):
        out.append((first, last))
        first = last + 1
    return out


def _message(size: int, user: int, turn: int) -> str:
    head = f"user {user:03d}, turn {turn:05d}: "
    return head + ("lorem ipsum dolor sit amet " * (size // 27 + 1))[: max(0, size - len(head))]


async def _measure(subject: Subject, storage: str, args: argparse.Namespace) -> list[Window]:
    process = ProcessProbe(subject.pid) if subject.pid is not None else None
    tag = uuid.uuid4().hex[:6]
    result = Result("long-thread", subject.name, args.users, args.turns)
    await warm_up(subject)
    rows: list[Window] = []
    clients = [_client() for _ in range(args.users)]
    try:
        async with httpx.AsyncClient(timeout=30) as mock:
            for first, last in windows(args.turns, args.window):
                await mock.post(f"{subject.mock_url}/_stats/reset")
                ok_before, errors_before = result.ok, result.errors
                cpu_before = process.cpu_seconds() if process else 0.0
                written_before = await subject.storage.written()
                probe = speed_probe()

                async def user(i: int, first: int = first, last: int = last) -> None:
                    body = {"user_id": f"bench-{tag}-{i}", "session_id": f"long-{tag}-{i}", "message": ""}
                    for turn in range(first, last + 1):
                        body["message"] = _message(args.message_bytes, i, turn)
                        await _chat_turn(clients[i], subject.url, body, result)

                await asyncio.gather(*(user(i) for i in range(args.users)))
                cpu = (process.cpu_seconds() if process else 0.0) - cpu_before
                written_after = await subject.storage.written()
                stats = (await mock.get(f"{subject.mock_url}/_stats")).json()
                turns = result.ok - ok_before
                prompt_bytes, prompt_messages = stats["prompt_bytes"], stats["prompt_messages"]
                written = (
                    (written_after - written_before) / max(turns, 1) / 1024
                    if written_before is not None and written_after is not None
                    else None
                )
                row = Window(
                    storage=storage,
                    first=first,
                    last=last,
                    turns=turns,
                    errors=result.errors - errors_before,
                    cpu_ms_per_turn=cpu * 1000 / max(turns, 1),
                    prompt_kb=statistics.mean(prompt_bytes) / 1024 if prompt_bytes else 0.0,
                    prompt_messages=statistics.mean(prompt_messages) if prompt_messages else 0.0,
                    written_kb_per_turn=written,
                    speed_probe_ms=probe,
                )
                _log(
                    f"{storage} turns {first}-{last}: {row.cpu_ms_per_turn:.2f} ms CPU/turn, prompt "
                    f"{row.prompt_kb:.1f} KB ({row.prompt_messages:.0f} messages)"
                )
                rows.append(row)
    finally:
        for client in clients:
            await client.close()
    return rows


async def _run(args: argparse.Namespace) -> list[Window]:
    storages = list(CHATPLANE_ON) if args.storage == "both" else [args.storage]
    mock = MockOpenAIServer(
        own_process=True, ttft=args.mock_ttft, tokens=args.mock_tokens, token_interval=args.mock_token_interval
    )
    rows: list[Window] = []
    source = resolve(None)
    with tempfile.TemporaryDirectory(prefix="chatplane-long-") as tmp, mock:
        for storage in storages:
            async with launched(
                TARGETS[CHATPLANE_ON[storage]],
                mock_url=mock.url,
                workdir=Path(tmp),
                pg_admin_url=args.pg_url,
                src=source.path,
            ) as subject:
                rows += await _measure(subject, storage, args)
    return rows


def render(rows: list[Window], args: argparse.Namespace) -> str:
    """One row per window, and each storage's last window against its turns 11–100."""
    table = report.table(
        ["storage", "turns", "ok", "CPU ms/turn", "prompt KB/call", "messages/call", "KB written/turn", "speed probe"],
        [
            [
                r.storage,
                f"{r.first}–{r.last}",
                f"{r.turns}" + (f" ({r.errors} errors)" if r.errors else ""),
                f"{r.cpu_ms_per_turn:.2f}",
                f"{r.prompt_kb:.1f}",
                f"{r.prompt_messages:.0f}",
                "—" if r.written_kb_per_turn is None else f"{r.written_kb_per_turn:.1f}",
                f"{r.speed_probe_ms:.1f}",
            ]
            for r in rows
        ],
    )
    lines = [f"{args.users} users × {args.turns} turns of {args.message_bytes} B messages, one thread each", "", table]
    for storage in dict.fromkeys(r.storage for r in rows):
        mine = [r for r in rows if r.storage == storage]
        base = next((r for r in mine if r.first == 11), mine[0])
        end = mine[-1]
        lines.append(
            f"\n{storage}: turns {end.first}–{end.last} cost {end.cpu_ms_per_turn / base.cpu_ms_per_turn:.2f}× the CPU "
            f"of turns {base.first}–{base.last}, with a prompt "
            f"{end.prompt_kb / max(base.prompt_kb, 1e-9):.2f}× as large"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.long_thread", description=__doc__.split("\n")[0])
    parser.add_argument("--storage", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--users", type=int, default=4, help="threads measured at once (one user each)")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--window", type=int, default=300, help="turns per window after turn 100")
    parser.add_argument("--message-bytes", type=int, default=2048)
    add_mock_options(parser)
    add_pg_url_option(parser)
    parser.set_defaults(mock_ttft=0.0, mock_token_interval=0.0)
    args = parser.parse_args(argv)
    rows = run_loop(_run(args))
    print(render(rows, args))


if __name__ == "__main__":
    main()
