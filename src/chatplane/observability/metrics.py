"""Prometheus metrics (``prometheus-client``), served at ``GET /metrics``.

==========================================  ===================================  =====================================
metric                                      labels                               what
==========================================  ===================================  =====================================
``chatplane_http_requests_total``           method, route, status                requests answered (route = template)
``chatplane_http_request_duration_seconds`` method, route                        time to the end of the response
``chatplane_runs_total``                    agent, outcome                       finished runs (succeeded / failed /
                                                                                 cancelled)
``chatplane_run_duration_seconds``          agent, outcome                       start to finish of a run
``chatplane_run_errors_total``              agent, code                          failed runs by error code
``chatplane_runs_active``                   agent                                graphs executing now
``chatplane_streams_active``                kind                                 open SSE responses and WebSockets
``chatplane_llm_call_duration_seconds``     model, outcome                       one model call (ok / error)
``chatplane_llm_time_to_first_token_seconds`` model                              to first token (or whole answer)
``chatplane_llm_tokens_total``              model, direction                     tokens in (prompt) and out
``chatplane_tool_call_duration_seconds``    tool, outcome                        one tool call
``chatplane_rate_limited_total``            limit                                429s: requests / tokens / runs
``chatplane_storage_errors_total``          error                                database faults, by exception type
``chatplane_pruned_total``                  kind                                 retention: threads / checkpoints /
                                                                                 runs deleted
==========================================  ===================================  =====================================

No label carries a user, thread or run id: their number is unbounded. With several worker processes set
``CHATPLANE_METRICS_MULTIPROC_DIR`` (or ``PROMETHEUS_MULTIPROC_DIR``) to an empty folder the workers share: each
process writes its values there and any of them answers ``/metrics`` with the sum (prometheus-client's multiprocess
mode; gauges add up the live processes).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatplane.config import Settings
from chatplane.observability import signals
from chatplane.observability.records import RunRecord

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
_FIRST_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def enable_multiprocess(path: str) -> None:
    """Make prometheus-client write this process's values under ``path``, to be summed with its siblings'.

    prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported, to choose how values are
    stored; set it (from the settings) before any metric exists, and choose again if the library was imported
    before the variable was set.
    """
    Path(path).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def clear_multiprocess_dir(path: str) -> int:
    """Delete the value files a previous server left in ``path`` (call once, before the workers start: their
    counters would otherwise carry on from the last run's). Returns how many were deleted."""
    folder = Path(path)
    if not folder.is_dir():
        return 0
    stale = list(folder.glob("*.db"))
    for file in stale:
        file.unlink(missing_ok=True)
    return len(stale)


def _remember_children(metric: Any) -> Any:
    """``metric`` whose ``labels(...)`` remembers the child of each label set. prometheus_client checks and converts
    the values and takes a lock on every call, about ten times per turn; the label sets here are few (agents,
    routes, statuses, models) and chatplane never removes a child."""
    metric.labels = functools.lru_cache(maxsize=1024)(metric.labels)
    return metric


class _MetricMaker:
    """Metrics on ``registry`` (None: multiprocess mode), each remembering its children (``_remember_children``)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def counter(self, name: str, doc: str, labels: list[str]) -> Any:
        from prometheus_client import Counter

        return _remember_children(Counter(name, doc, labels, registry=self.registry))

    def histogram(self, name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> Any:
        from prometheus_client import Histogram

        return _remember_children(Histogram(name, doc, labels, registry=self.registry, buckets=buckets))

    def gauge(self, name: str, doc: str, labels: list[str]) -> Any:
        from prometheus_client import Gauge

        return _remember_children(Gauge(name, doc, labels, registry=self.registry, multiprocess_mode="livesum"))


class Metrics:
    """This process's metric objects (built when the app is created, never at import time)."""

    def __init__(self, settings: Settings) -> None:
        self.multiproc_dir = settings.metrics_multiproc_dir
        if self.multiproc_dir:
            enable_multiprocess(self.multiproc_dir)
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values live in files and /metrics reads them all; nothing is registered here.
        registry: CollectorRegistry | None = None if self.multiproc_dir else self.registry
        if registry is not None:  # CPU, memory, open files of this process (per process: not in multiprocess mode)
            from prometheus_client import ProcessCollector

            ProcessCollector(registry=registry)

        make = _MetricMaker(registry)
        counter, histogram, gauge = make.counter, make.histogram, make.gauge
        self.http_requests = counter(
            "chatplane_http_requests", "HTTP requests answered.", ["method", "route", "status"]
        )
        self.http_duration = histogram(
            "chatplane_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            ["method", "route"],
            _LATENCY_BUCKETS,
        )
        self.runs = counter("chatplane_runs", "Runs finished, by outcome.", ["agent", "outcome"])
        self.run_duration = histogram(
            "chatplane_run_duration_seconds", "Run duration from start to finish.", ["agent", "outcome"], _RUN_BUCKETS
        )
        self.run_errors = counter("chatplane_run_errors", "Failed runs, by error code.", ["agent", "code"])
        self.runs_active = gauge("chatplane_runs_active", "Runs whose graph is executing now.", ["agent"])
        self.streams_active = gauge(
            "chatplane_streams_active", "Open event streams (SSE responses, WebSockets).", ["kind"]
        )
        self.llm_duration = histogram(
            "chatplane_llm_call_duration_seconds", "Duration of one model call.", ["model", "outcome"], _MODEL_BUCKETS
        )
        self.llm_first_token = histogram(
            "chatplane_llm_time_to_first_token_seconds",
            "Time from a model call's start to its first token (for an answer not streamed: to the whole answer).",
            ["model"],
            _FIRST_TOKEN_BUCKETS,
        )
        self.llm_tokens = counter(
            "chatplane_llm_tokens", "Tokens sent to (input) and generated by (output) models.", ["model", "direction"]
        )
        self.tool_duration = histogram(
            "chatplane_tool_call_duration_seconds", "Duration of one tool call.", ["tool", "outcome"], _MODEL_BUCKETS
        )
        self.rate_limited = counter("chatplane_rate_limited", "Requests refused by a per-user limit (429).", ["limit"])
        self.storage_errors = counter(
            "chatplane_storage_errors", "Database faults (unreachable, busy …), by exception type.", ["error"]
        )
        self.pruned = counter("chatplane_pruned", "Rows deleted by retention, by kind.", ["kind"])
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        """Count the signals of the low layers (storage faults, rate limits) from now on."""
        if self._unsubscribe is None:
            self._unsubscribe = signals.subscribe(self._on_signal)

    # --- recording --------------------------------------------------------------------------------------------
    def _on_signal(self, signal: signals.Signal, label: str) -> None:
        if signal == "storage_error":
            self.storage_errors.labels(label).inc()
        elif signal == "rate_limited":
            self.rate_limited.labels(label).inc()

    def run_finished(self, run: RunRecord) -> None:
        self.runs.labels(run.agent, run.status).inc()
        if run.started_at is not None and run.finished_at is not None:
            self.run_duration.labels(run.agent, run.status).observe(max(0.0, run.finished_at - run.started_at))
        if run.status == "failed":
            self.run_errors.labels(run.agent, run.error_code or "unknown").inc()

    def pruned_rows(self, kind: str, count: int) -> None:
        if count:
            self.pruned.labels(kind).inc(count)

    # --- exposition -------------------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text format of every metric (of every process, in multiprocess mode). Reads files then: call it in a
        worker thread."""
        from prometheus_client import CollectorRegistry, generate_latest

        if self.multiproc_dir:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiproc_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def close(self) -> None:
        """Stop receiving signals; in multiprocess mode, drop this process's live gauges (its runs and streams)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.multiproc_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiproc_dir)  # type: ignore[no-untyped-call]
