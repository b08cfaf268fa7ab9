"""The soak's tables: the setting, the verdict, turns/s and latency per minute, and recovery per fault."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.load import percentile
from benchmarks.report import table
from benchmarks.soak_client import Message, Users
from benchmarks.soak_verify import Verdict


@dataclass
class Fault:
    kind: str  # "kill" (SIGKILL of one worker) or "crash" (pg_ctl -m immediate restart)
    at: float  # monotonic
    detail: str = ""
    took_s: float | None = None  # a crash: until PostgreSQL accepted connections; a kill: until a new process


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds * 1000:.0f} ms"


def _minute_row(label: str, messages: Sequence[Message], low: float, high: float, span: float) -> list[str]:
    done = [m.latency for m in messages if m.accepted_at is not None and low <= m.accepted_at < high]
    latencies = sorted(x for x in done if x is not None)
    failed = sum(1 for m in messages for a in m.attempts if a.status != 200 and low <= a.ended < high)
    rate = f"{len(latencies) / span:.1f}" if span > 0 else "—"
    p50, p99 = _ms(percentile(latencies, 50)), _ms(percentile(latencies, 99))
    return [label, str(len(latencies)), rate, p50, p99, str(failed)]


def per_minute(users: Users, started: float) -> str:
    """Turns accepted in each minute (by the 200's arrival), turns/s, p50/p99 of a message's latency as its user
    saw it (first send to the 200, resends included), and requests that failed in that minute; then the drain
    (the users' last messages, after the end: no rate, as no new message starts)."""
    messages = users.all_messages()
    rows: list[list[str]] = []
    low = started
    while low < users.stop_at - 1e-6:
        high = min(low + 60, users.stop_at)
        rows.append(_minute_row(str(len(rows) + 1), messages, low, high, high - low))
        low = high
    rows.append(_minute_row("drain", messages, users.stop_at, float("inf"), 0))
    return table(["minute", "turns", "turns/s", "p50", "p99", "failed requests"], rows)


def raw(users: Users, faults: Sequence[Fault], started: float) -> dict[str, Any]:
    """Everything the users saw, times in seconds from the start: for ``--json``."""

    def t(x: float | None) -> float | None:
        return None if x is None else round(x - started, 3)

    return {
        "faults": [{"kind": f.kind, "at": t(f.at), "detail": f.detail, "took_s": f.took_s} for f in faults],
        "threads": {str(u): thread for u, thread in users.threads.items()},
        "messages": [
            {
                "user": m.user,
                "seq": m.seq,
                "key": m.key,
                "first_sent": t(m.first_sent),
                "accepted_at": t(m.accepted_at),
                "run_id": m.run_id,
                "run_status": m.run_status,
                "gave_up": m.gave_up,
                "attempts": [[t(a.started), t(a.ended), a.status, a.error] for a in m.attempts],
            }
            for m in users.all_messages()
        ],
    }


def _recovery(fault: Fault, until: float, messages: Sequence[Message], users: Users, started: float) -> list[str]:
    """One fault's row: the first 200 to a request sent after it; when every user still sending had a 200 again;
    the requests that failed between it and the next fault, and how many of them were client timeouts."""
    first_ok = min(
        (a.ended for m in messages for a in m.attempts if a.status == 200 and a.started >= fault.at), default=None
    )
    served: list[float] = []
    for user_messages in users.messages.values():
        after = [m.accepted_at for m in user_messages if m.accepted_at is not None and m.accepted_at >= fault.at]
        if after:
            served.append(min(after))
    failed = [a for m in messages for a in m.attempts if a.status != 200 and fault.at <= a.ended < until]
    timeouts = sum(1 for a in failed if a.error == "TimeoutError" or a.error == "ServerTimeoutError")
    return [
        fault.kind,
        f"{fault.at - started:.0f} s",
        fault.detail,
        _ms(fault.took_s),
        _ms(None if first_ok is None else first_ok - fault.at),
        _ms(max(served) - fault.at if served else None),
        str(len(failed)),
        str(timeouts),
    ]


def per_fault(faults: Sequence[Fault], users: Users, started: float) -> str:
    messages = users.all_messages()
    rows = []
    for i, fault in enumerate(faults):
        until = faults[i + 1].at if i + 1 < len(faults) else float("inf")
        rows.append(_recovery(fault, until, messages, users, started))
    header = [
        "fault",
        "at",
        "what",
        "restarted in",
        "first 200 sent after",
        "every user served again",
        "failed requests",
        "of which timeouts",
    ]
    return table(header, rows)


def verdict_table(verdict: Verdict, users: Users) -> str:
    requests = sum(len(m.attempts) for m in users.all_messages())
    rows = [
        ["requests sent", f"{requests:,}"],
        ["accepted (200)", f"{verdict.accepted:,}"],
        ["lost", str(verdict.lost)],
        ["duplicated", str(verdict.duplicated)],
        ["reordered", str(verdict.reordered)],
        ["orphaned (pending/running after settling)", str(verdict.orphaned)],
        ["accepted without its answer in the history", str(verdict.unanswered)],
        ["200 whose run was not `succeeded` or whose answer was not the echo", str(verdict.ok_not_succeeded)],
        ["runs `failed` whose answer is in the history (split)", str(verdict.split)],
        ["given up by the client (never 200)", f"{verdict.unconfirmed} ({verdict.unconfirmed_in_history} stored)"],
        ["runs by status", ", ".join(f"{k} {v:,}" for k, v in sorted(verdict.runs_by_status.items()))],
    ]
    return table(["", "count"], rows)


def gave_up(users: Users) -> list[str]:
    return [f"user {m.user} m{m.seq}: {m.gave_up}" for m in users.all_messages() if m.gave_up]
