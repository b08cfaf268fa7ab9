"""Webhook deliveries: a run that named a ``webhook`` is reported there when it ends — signed, retried with backoff
for a bounded time, every attempt recorded.

A run that names a webhook gets a ``waiting`` delivery as it is accepted (``RunService.send``); ``run_finished``
(a run hook) makes it due, in the process where the run ended — and should that process die first, any process's
sweep (``ended_waiting``) makes it due from the run's record. Every process's ``WebhookDispatcher`` claims due
deliveries (``WebhookStore.claim_due``), makes one attempt each through
the SSRF guard (``chatplane.webhooks.guard``) and records it. A delivery left pending by a process that stopped is
made by whichever process claims it next. Retries wait ``webhook_backoff_s``, doubling up to 5 minutes, until
``webhook_retry_s`` after the run ended; a URL the guard refuses is not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import httpx

from chatplane.config import Settings
from chatplane.errors import error_from_code
from chatplane.failures import as_chatplane_error
from chatplane.storage.runs import Run, RunStore
from chatplane.storage.webhooks import Attempt, Delivery, WebhookStore
from chatplane.webhooks import signing
from chatplane.webhooks.guard import Guard, post

log = logging.getLogger("chatplane.webhooks")

MAX_BACKOFF_S = 300.0
_SWEEP_EVERY = 10
"""Rounds of the loop between two looks for runs that ended without their delivery made due."""


def outcome_payload(run: Run) -> dict[str, Any]:
    """What a run's webhook receives: the run's outcome (``GET /v1/runs/{run_id}`` has the same fields)."""
    error = None
    if run.error_code:
        error = {"code": run.error_code, "message": error_from_code(run.error_code).message}
    return {
        "type": "run.finished",
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": run.agent,
        "status": run.status,
        "error": error,
        "usage": run.usage,
        "metadata": run.input.get("metadata") or {},
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


class WebhookDispatcher:
    def __init__(self, store: WebhookStore, runs: RunStore, settings: Settings, worker: str) -> None:
        self.store = store
        self.runs = runs
        self.settings = settings
        self.worker = worker
        self.guard = Guard(settings.webhook_allowlist, production=settings.env == "production")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._rounds = 0

    # --- the run hook ---------------------------------------------------------------------------------------------
    async def run_finished(self, run: Run) -> None:
        """Make the delivery of a finished run that named a webhook due; the loop makes it at once."""
        url = run.input.get("webhook")
        if not url or not run.finished:
            return
        await self.store.enqueue(run.run_id, run.owner, url, outcome_payload(run), self.settings.webhook_retry_s)
        self._wake.set()

    async def end_waiting(self) -> int:
        """Make due the deliveries of runs that ended without their process telling (it stopped first)."""
        ended = 0
        for run_id in await self.store.ended_waiting():
            run = await self.runs.find(run_id)
            if run is not None and run.finished:
                await self.run_finished(run)
                ended += 1
        return ended

    # --- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        # No proxy from the environment (it would connect to the name, not the checked address), no redirects
        # followed by httpx (the guard follows them, checking each).
        self._client = httpx.AsyncClient(
            trust_env=False, follow_redirects=False, timeout=self.settings.webhook_timeout_s
        )
        self._task = asyncio.create_task(self._loop(), name="webhooks")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.schedule_poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._rounds % _SWEEP_EVERY == 0:
                    await self.end_waiting()
                self._rounds += 1
                await self.deliver_due()
            except Exception as exc:
                as_chatplane_error(exc, f"webhooks ({self.worker})")

    # --- deliveries -----------------------------------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """One attempt for each delivery due now (claimed by this process); how many."""
        now = time.time()
        lease = now + self.settings.webhook_timeout_s + self.settings.run_lease_s
        claimed = await self.store.claim_due(now, self.worker, lease)
        await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def _attempt(self, delivery: Delivery) -> None:
        assert self._client is not None
        settings = self.settings
        try:
            secret = await self.store.secret(delivery.owner, signing.new_secret())
            body = json.dumps(delivery.payload, separators=(",", ":")).encode()
            started_at, started = time.time(), time.monotonic()
            outcome = await post(
                self._client,
                self.guard,
                delivery.url,
                body,
                signing.headers(secret, delivery.run_id, body),
                timeout_s=settings.webhook_timeout_s,
                max_response_bytes=settings.webhook_max_response_bytes,
            )
            number = delivery.attempts + 1
            attempt = Attempt(
                number,
                delivery.url,
                started_at,
                outcome.status_code,
                outcome.error,
                int((time.monotonic() - started) * 1000),
            )
            if outcome.delivered:
                await self.store.record(delivery, self.worker, attempt, status="delivered", next_attempt_at=None)
                return
            retry_at = time.time() + min(settings.webhook_backoff_s * 2 ** (number - 1), MAX_BACKOFF_S)
            if outcome.refused or retry_at > delivery.give_up_at:
                log.info("webhook of run %s given up after %d attempt(s): %s", delivery.run_id, number, outcome.error)
                await self.store.record(delivery, self.worker, attempt, status="failed", next_attempt_at=None)
            else:
                await self.store.record(delivery, self.worker, attempt, status="pending", next_attempt_at=retry_at)
        except Exception as exc:  # the claim's lease runs out, and the attempt is made again
            as_chatplane_error(exc, f"webhook of run {delivery.run_id}")
