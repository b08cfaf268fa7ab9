"""The retention job: ``prune`` every ``CHATPLANE_PRUNE_INTERVAL_S``, one process at a time (``exclusive``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from chatplane.config import Settings
from chatplane.errors import describe_exception
from chatplane.failures import as_chatplane_error
from chatplane.retention.prune import PRUNE_LOCK, PruneReport, prune
from chatplane.storage.engine import Storage

log = logging.getLogger("chatplane.retention")


# --- one process at a time ---------------------------------------------------------------------------------------
@asynccontextmanager
async def exclusive(storage: Storage) -> AsyncIterator[bool]:
    """True if this process may prune now: on PostgreSQL, while it holds the prune advisory lock (another process
    holding it → False); elsewhere, always (SQLite and memory serve one process)."""
    if storage.kind != "postgres" or storage.pool is None:
        yield True
        return
    async with storage.pool.connection() as conn:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (PRUNE_LOCK,))
        row = await cursor.fetchone()
        locked = bool(row and row["locked"])
        try:
            yield locked
        finally:
            if locked:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (PRUNE_LOCK,))


async def prune_once(storage: Storage, older_than_s: float | None, *, dry_run: bool = False) -> PruneReport | None:
    """``prune`` now, unless another process is pruning the same database (then None)."""
    async with exclusive(storage) as mine:
        if not mine:
            return None
        return await prune(storage, older_than_s, time.time(), dry_run=dry_run)


class RetentionJob:
    """``prune`` every ``prune_interval_s`` (the first round soon after start-up), in the background."""

    def __init__(
        self, storage: Storage, settings: Settings, on_report: Callable[[PruneReport], None] | None = None
    ) -> None:
        assert settings.retention_days is not None
        self.storage = storage
        self.older_than_s = settings.retention_days * 86400
        self.interval_s = settings.prune_interval_s
        self.on_report = on_report
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        await asyncio.sleep(min(self.interval_s, 30.0))
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> PruneReport | None:
        try:
            report = await prune_once(self.storage, self.older_than_s)
        except Exception as exc:
            as_chatplane_error(exc, "retention")
            return None
        if report is None:
            log.debug("retention: another process is pruning; skipped this round")
            return None
        if report.threads or report.runs or report.checkpoints or report.skipped or report.items:
            log.info("retention: %s", report)
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception as exc:
                log.warning("retention: reporting failed (%s)", describe_exception(exc))
        return report
