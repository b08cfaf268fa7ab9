"""``install_operations(app, settings)``: logs, metrics, traces and the retention job, wired into the app.

It adds the request observer (outermost middleware) and ``GET /metrics``, and wraps the app's lifespan::

    configure logging  →  start tracing  →  [the app's lifespan: agent, storage, security]  →  run hooks,
    run observer, retention job  →  serve  →  stop the retention job  →  [agent closes: runs finish or are handed
    back]  →  flush traces, drop this process's live gauges

so that start-up is logged in the configured format, the retention job stops before storage closes, and the spans
of runs that finish during the shutdown grace period are still exported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from chatplane.config import Settings
from chatplane.observability import context
from chatplane.observability.callbacks import RunObserver
from chatplane.observability.http import RequestObserver
from chatplane.observability.logging import configure_logging, configured_elsewhere
from chatplane.observability.metrics import CONTENT_TYPE, Metrics
from chatplane.observability.tracing import Tracing

if TYPE_CHECKING:
    from chatplane.agent import ProductionAgent
    from chatplane.retention import PruneReport, RetentionJob
    from chatplane.runs import Run

log = logging.getLogger("chatplane.runs")


class Operations:
    """What one app observes with, and its background retention job (``app.state.operations``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings) if settings.metrics_enabled else None
        self.tracing = Tracing(settings)
        self.observer: RunObserver | None = None
        self.retention: RetentionJob | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if not configured_elsewhere():  # an embedding application (or a test runner) keeps its own logging
            configure_logging(self.settings)
        self.tracing.start()
        if self.metrics is not None:
            self.metrics.start()

    def attach(self, agent: ProductionAgent) -> None:
        """Observe the agent's runs; start the retention job when retention is configured."""
        agent.runs.start_hooks.append(self._run_started)
        agent.runs.finish_hooks.append(self._run_finished)
        if self.metrics is not None or self.tracing.tracer is not None:
            self.observer = RunObserver(self.settings, metrics=self.metrics, tracer=self.tracing.tracer)
            agent.runs.callbacks.append(self.observer)
        if self.settings.retention_days is not None:
            from chatplane.retention import RetentionJob

            self.retention = RetentionJob(agent.storage, self.settings, self._pruned)
            self.retention.start()

    async def stop_jobs(self) -> None:
        if self.retention is not None:
            await self.retention.stop()

    async def close(self) -> None:
        await self.tracing.shutdown()
        if self.metrics is not None:
            self.metrics.close()

    # --- hooks --------------------------------------------------------------------------------------------------
    async def _run_started(self, run: Run) -> None:
        context.bind_run(run.run_id, run.thread_id, run.owner)

    async def _run_finished(self, run: Run) -> None:
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

    def _pruned(self, report: PruneReport) -> None:
        if self.metrics is not None:
            self.metrics.pruned_rows("threads", report.threads)
            self.metrics.pruned_rows("runs", report.runs)
            self.metrics.pruned_rows("checkpoints", report.checkpoints)

    # --- GET /metrics -------------------------------------------------------------------------------------------
    async def metrics_endpoint(self, request: Request) -> Response:
        assert self.metrics is not None
        if self.metrics.multiproc_dir:  # reads every process's files
            body = await asyncio.to_thread(self.metrics.exposition)
        else:
            body = self.metrics.exposition()
        return Response(body, media_type=CONTENT_TYPE)


def install_operations(app: FastAPI, settings: Settings) -> Operations:
    """Observe ``app`` (call after its other middleware: the request observer must be outermost)."""
    operations = Operations(settings)
    app.state.operations = operations
    app.add_middleware(RequestObserver, metrics=operations.metrics, tracing=operations.tracing)
    if operations.metrics is not None:
        app.add_route("/metrics", operations.metrics_endpoint, methods=["GET"], include_in_schema=False)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        operations.start()
        try:
            async with inner(app) as state:
                operations.attach(app.state.agent)
                try:
                    yield state
                finally:
                    await operations.stop_jobs()
        finally:
            await operations.close()

    app.router.lifespan_context = lifespan
    return operations
