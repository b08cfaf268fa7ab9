"""The results as Markdown: the machine and versions, then one table per scenario, rows per target."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psutil
import psycopg

from benchmarks.load import MIB, Result, TurnSample
from benchmarks.procs import REPO_ROOT

PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "httpx",
    "openai",
    "langchain-core",
    "langchain-openai",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langgraph-checkpoint-postgres",
    "psycopg",
    "aiosqlite",
    "xllamacpp",
)
GROWTH_MARKS = (1, 10, 50, 100, 200, 500, 1000)


def environment(pg_admin_url: str) -> dict[str, str]:
    """Where and with what the run happens."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    round_trip = "?"
    try:
        with psycopg.connect(pg_admin_url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg_version = str(row[0]) if row else "?"
            round_trip = round_trips(conn)
    except psycopg.Error as exc:
        pg_version = f"unreachable ({type(exc).__name__})"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{_cpu_model()}, {os.cpu_count()} logical cores",
        "ram": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "chatplane": f"{importlib.metadata.version('chatplane')} ({_git_revision()})",
        "packages": ", ".join(versions),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "load": load_average(),
        "round_trip": round_trip,
    }


def round_trips(conn: psycopg.Connection[Any]) -> str:
    """Median wall time of a ``SELECT 1`` round trip to PostgreSQL, back to back and after the two processes sat
    idle for 20 ms and 400 ms. On a virtual machine an idle vCPU is halted and waking it is slow: within one
    user's turn PostgreSQL idles while the model answers, so each of the turn's trips pays the idle price."""
    timings = []
    for idle_s, count in ((0.0, 50), (0.02, 25), (0.4, 8)):
        samples = []
        for _ in range(count):
            time.sleep(idle_s)
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            samples.append(time.perf_counter() - started)
        timings.append(f"{statistics.median(samples) * 1000:.2f}")
    return " / ".join(timings) + " ms"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD") or "no git"
    return revision + (", uncommitted changes" if git("status", "--porcelain", "--", "src") else "")


# --- formatting ---------------------------------------------------------------------------------------------------
def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if abs(seconds) >= 10:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.0f} ms"


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _note(s: dict[str, Any]) -> str:
    parts = []
    if s["stopped"]:
        parts.append(str(s["stopped"]))
    if s["errors"]:
        parts.append(f"{s['errors']} errors: " + "; ".join(s["errors_seen"][:2]).replace("|", "/")[:160])
    return "; ".join(parts)


# --- scenario tables ----------------------------------------------------------------------------------------------
def concurrency_tables(results: Sequence[Result]) -> str:
    summaries = [r.summary() for r in results if r.scenario == "concurrency"]
    if not summaries:
        return ""
    targets = list(dict.fromkeys(s["target"] for s in summaries))
    levels = sorted({s["users"] for s in summaries})
    by_key = {(s["target"], s["users"]): s for s in summaries}

    def pivot(metric: str, fmt: Any) -> str:
        header = ["target", *(f"{n} users" if n > 1 else "1 user" for n in levels)]
        rows = [[t, *(fmt(by_key[t, n][metric]) if (t, n) in by_key else "" for n in levels)] for t in targets]
        return table(header, rows)

    detail = table(
        [
            "target",
            "users",
            "turns ok",
            "turns/s",
            "p50",
            "p95",
            "p99",
            "overhead p50",
            "CPU ms/turn",
            "DB CPU ms/turn",
            "load gen CPU ms/turn",
            "peak RSS MiB",
            "prompt max (msgs / KiB)",
            "stored KiB/turn",
            "model calls in flight (peak)",
            "speed probe ms",
            "note",
        ],
        (
            [
                s["target"],
                str(s["users"]),
                f"{s['ok']}/{s['planned']}",
                _num(s["throughput"], 2),
                _dur(s["p50"]),
                _dur(s["p95"]),
                _dur(s["p99"]),
                _dur(s["overhead_p50"]),
                _num(s["cpu_ms_per_turn"]),
                _num(s["db_cpu_ms_per_turn"]),
                _num(s["client_cpu_ms_per_turn"]),
                _num(s["peak_rss_mib"], 0),
                f"{s['prompt_messages_max'] or '—'} / {_num(s['prompt_kib_max'])}",
                _num(s["stored_kib_per_turn"]),
                str(s["mock_in_flight_peak"]),
                _num(s.get("speed_probe_ms")),
                _note(s),
            ]
            for s in summaries
        ),
    )
    return "\n\n".join(
        [
            "## Concurrency: N users at once, each on its own session (`POST /chat`)",
            "Throughput (turns/s):",
            pivot("throughput", lambda v: _num(v, 2)),
            "Latency p50:",
            pivot("p50", _dur),
            "All numbers:",
            detail,
        ]
    )


def ttft_table(results: Sequence[Result]) -> str:
    summaries = [r.summary() for r in results if r.scenario == "ttft"]
    if not summaries:
        return ""
    rows = [
        [
            s["target"],
            str(s["users"] or "—"),
            f"{s['ok']}/{s['planned']}" if s["ok"] or s["errors"] else "—",
            _dur(s["ttft_p50"]),
            _dur(s["ttft_p95"]),
            _dur(s["ttft_p99"]),
            _dur(s["ttft_overhead_p50"]),
            _dur(s["p50"]),
            _num(s["cpu_ms_per_turn"]),
            _note(s),
        ]
        for s in summaries
    ]
    header = ["target", "users", "streams ok", "TTFT p50", "p95", "p99", "TTFT overhead p50", "total p50"]
    return "\n\n".join(
        [
            "## Time to first token over SSE (`POST /chat/stream`)",
            table([*header, "CPU ms/turn", "note"], rows),
        ]
    )


def _kib_per_turn(start: TurnSample | None, end: TurnSample | None, attr: str, before: int | None, turns: int) -> str:
    after = getattr(end, attr) if end is not None else None
    base = getattr(start, attr) if start is not None else before
    if after is None or base is None:
        return "—"
    return _num((after - base) / turns / 1024)


def _growth_marks(result: Result) -> list[list[str]]:
    samples = {s.turn: s for s in result.samples}
    done = max(samples, default=0)
    marks = [m for m in GROWTH_MARKS if m <= done]
    if done and done not in marks:
        marks.append(done)
    rows = []
    for mark in marks:
        width = max(1, mark // 10)
        window = [samples[t].latency for t in range(mark - width + 1, mark + 1) if t in samples]
        start = samples.get(mark - width)
        end = samples[mark] if mark in samples else None

        prompt = (
            f"{result.prompt_messages[mark - 1]} / {_num(result.prompt_bytes[mark - 1] / 1024)}"
            if mark <= len(result.prompt_messages)
            else "—"
        )
        rows.append(
            [
                result.target,
                str(mark),
                _dur(statistics.median(window) if window else None),
                _dur(statistics.median(window) - result.model_latency if window else None),
                prompt,
                _kib_per_turn(start, end, "storage", result.storage_before, width),
                _kib_per_turn(start, end, "written", result.written_before, width),
            ]
        )
    return rows


def growth_tables(results: Sequence[Result]) -> str:
    growth = [r for r in results if r.scenario == "growth"]
    if not growth:
        return ""
    rows = []
    for result in growth:
        s = result.summary()
        done = max((x.turn for x in result.samples), default=0)
        rows.append(
            [
                s["target"],
                f"{done}/{s['planned']}",
                _dur(s["p50"]),
                _num(s["stored_kib_per_turn"]),
                _num(s["written_kib_per_turn"]),
                _num(result.storage_after / MIB if result.storage_after is not None else None),
                _num(s["peak_rss_mib"], 0),
                _num(s["cpu_ms_per_turn"]),
                _num(s["db_cpu_ms_per_turn"]),
                _note(s),
            ]
        )
    header = ["target", "turns", "latency p50 (all)", "stored KiB/turn (avg)", "written KiB/turn (avg)"]
    overview = table([*header, "storage MiB", "peak RSS MiB", "CPU ms/turn", "DB CPU ms/turn", "note"], rows)
    marks = table(
        [
            "target",
            "at turn",
            "latency (median of the last 10%)",
            "overhead",
            "prompt (msgs / KiB)",
            "stored KiB/turn",
            "written KiB/turn",
        ],
        (row for result in growth for row in _growth_marks(result)),
    )
    footnote = (
        "Written bytes on PostgreSQL are the WAL of the whole server: whatever else uses it at the same time adds "
        "to them (spikes). Stored bytes are the run's own database."
    )
    title = "## Thread growth: one session, many turns in a row"
    return "\n\n".join([title, overview, "As the thread grows:", marks, footnote])


def embedded_table(summaries: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            s["path"],
            f"{s['requests']} ({s['errors']} errors)" if s["errors"] else str(s["requests"]),
            _num(s["tokens_p50"], 0),
            _dur(s["ttft_p50"]),
            _dur(s["total_p50"]),
            _num(s["decode_tps_p50"]),
            _num(s["e2e_tps_p50"]),
        ]
        for s in summaries
    ]
    text = table(
        ["path", "requests", "tokens", "TTFT p50", "total p50", "decode tok/s p50", "end-to-end tok/s p50"], rows
    )
    if len(summaries) == 2 and summaries[0]["e2e_tps_p50"] and summaries[1]["e2e_tps_p50"]:
        ratio = summaries[1]["e2e_tps_p50"] / summaries[0]["e2e_tps_p50"]
        text += f"\n\nchatplane delivers {ratio:.0%} of llama.cpp's end-to-end tokens/s."
    return text
