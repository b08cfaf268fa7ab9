"""Key changes from every process, over PostgreSQL's LISTEN/NOTIFY: what lets ``ApiKeyStore`` cache keys.

``ApiKeyStore`` notifies the channel in the transaction that creates or revokes a key (from the server or from
``chatplane keys`` on another host); PostgreSQL delivers the notification to every listener when that transaction
commits. ``KeyChangeListener`` holds one connection of its own listening, and calls ``on_change`` on every
notification — and whenever it starts or stops listening, since it may have missed some in between. Its
``listening`` is the store's licence to cache: while it is false (not connected yet, connection lost, reconnecting
every ``retry_s``), the store asks the database on every request, as it does on SQLite.

A connection that dies quietly (a host gone without closing it) is noticed by TCP keepalives and a check every
``check_s`` with a send deadline, within about ``check_s`` + 10 s; while it is unnoticed, that process's requests
reach a database it cannot reach either, and fail on that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "chatplane_api_keys"
APPLICATION_NAME = "chatplane-key-changes"
_CONNECT_OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "application_name": APPLICATION_NAME,
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,  # ms: a send that gets no acknowledgement fails
}


class KeyChangeListener:
    def __init__(self, url: str, on_change: Callable[[], None], *, retry_s: float = 1.0, check_s: float = 10.0):
        self._url = url
        self._on_change = on_change
        self._retry_s = retry_s
        self._check_s = check_s
        self.listening = False
        self._lost = False
        self._listened = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_s: float = 5.0) -> None:
        """Start listening in the background; wait up to ``wait_s`` for the first connection (without it the store
        just does not cache)."""
        self._task = asyncio.create_task(self._run(), name="key-changes")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listened.wait(), wait_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, **_CONNECT_OPTIONS) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._changed(listening=True)  # what was cached before may have missed a change
                    if self._lost:
                        log.info("the key-change listener is back: API keys are cached again")
                        self._lost = False
                    while True:
                        async for _ in conn.notifies(timeout=self._check_s):
                            self._on_change()
                        await conn.execute("SELECT 1")  # still there?
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._lost:  # once per outage, not once per retry
                    log.warning(
                        "the key-change listener is down (%s): API keys are not cached until it is back",
                        type(exc).__name__,
                    )
                self._lost = True
            finally:
                self._changed(listening=False)
            await asyncio.sleep(self._retry_s)

    def _changed(self, *, listening: bool) -> None:
        self.listening = listening
        self._on_change()
        if listening:
            self._listened.set()
