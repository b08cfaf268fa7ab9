"""``Operations``: what one app observes with — logs, metrics, traces — and the hooks through which it sees runs.

It observes and nothing more: the app's lifespan (``chatplane.service.lifespan``) starts it first, hands its hooks
to the runs, its report callback to the retention job, and closes it last, so that start-up is logged in the
configured format and the spans of runs finishing during the shutdown grace are still exported. It knows the runs
and retention rounds it observes only by what it reads of them (``records``), and imports no web framework.
"""

from __future__ import annotations

import logging

from chatplane.config import Settings
from chatplane.observability import context
from chatplane.observability.callbacks import RunObserver
from chatplane.observability.logging import configure_logging, configured_elsewhere
from chatplane.observability.metrics import Metrics
from chatplane.observability.records import PruneCounts, RunRecord
from chatplane.observability.tracing import Tracing

log = logging.getLogger("chatplane.runs")


class Operations:
    """One app's observability (``app.state.operations``): built with the app, started by its lifespan.
    ``version``: the version of the service observed (on its traces)."""

    def __init__(self, settings: Settings, *, version: str) -> None:
        self.settings = settings
        self.metrics = Metrics(settings) if settings.metrics_enabled else None
        self.tracing = Tracing(settings, version=version)
        self.observer: RunObserver | None = None
        """The callback handler that times model and tool calls (once started, when metrics or tracing are on)."""

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Configure logging, start tracing and metrics, and build the run observer on the tracer just started."""
        if not configured_elsewhere():  # an embedding application (or a test runner) keeps its own logging
            configure_logging(self.settings)
        self.tracing.start()
        if self.metrics is not None:
            self.metrics.start()
        if self.metrics is not None or self.tracing.tracer is not None:
            self.observer = RunObserver(self.settings, metrics=self.metrics, tracer=self.tracing.tracer)

    async def close(self) -> None:
        """Flush the traces; stop the metrics (in multiprocess mode, drop this process's live gauges)."""
        await self.tracing.shutdown()
        if self.metrics is not None:
            self.metrics.close()

    # --- what it is told ----------------------------------------------------------------------------------------
    async def run_started(self, run: RunRecord) -> None:
        """A run starts executing: the log lines of its task carry it."""
        context.bind_run(run.run_id, run.thread_id, run.owner)

    async def run_finished(self, run: RunRecord) -> None:
        """A run ended: count it and write its one summary line."""
        if self.metrics is not None:
            self.metrics.run_finished(run)
        if log.isEnabledFor(logging.INFO):
            duration = None
            if run.started_at is not None and run.finished_at is not None:
                duration = round(run.finished_at - run.started_at, 3)
            log.info(
                "run %s %s",
                run.run_id,
                run.status,
                extra={
                    "run_id": run.run_id,
                    "thread_id": run.thread_id or None,
                    "user": run.owner,
                    "agent": run.agent,
                    "model": run.model,
                    "status": run.status,
                    "error_code": run.error_code,
                    "duration_s": duration,
                    **{key: int(run.usage.get(key, 0) or 0) for key in ("input_tokens", "output_tokens")},
                },
            )

    def pruned(self, report: PruneCounts) -> None:
        """A retention round deleted rows."""
        if self.metrics is not None:
            self.metrics.pruned_rows("threads", report.threads)
            self.metrics.pruned_rows("runs", report.runs)
            self.metrics.pruned_rows("checkpoints", report.checkpoints)
