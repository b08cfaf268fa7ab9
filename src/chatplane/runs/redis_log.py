"""Run events in Redis streams, so any process can replay and follow a run that another process executes.

One stream per run (``chatplane:run:<id>``, capped, expiring an hour after the run ends); event ids come from an
``INCR`` counter beside it, so they stay contiguous even when another process takes over a run. When Redis is
unreachable the log degrades to the in-process one (single-process behaviour) with a warning, and tries Redis again
after a pause — it never fails a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatplane.events import PAUSE_EVENTS, TERMINAL_EVENTS, EventType, RunEvent
from chatplane.runs.eventlog import MemoryEventLog

log = logging.getLogger("chatplane.runs")

_MAXLEN = 20_000
_EXPIRE_S = 3600
_RETRY_S = 10.0


class RedisEventLog:
    def __init__(self, url: str) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._local = MemoryEventLog()
        self._down_until = 0.0

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _degrade(self, exc: BaseException) -> None:
        if self._available():
            log.warning(
                "Redis unreachable (%s): run events stay in this process for %.0f s", type(exc).__name__, _RETRY_S
            )
        self._down_until = time.monotonic() + _RETRY_S

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    def known(self, run_id: str) -> bool:
        return True  # any process may have written it

    def open(self, run_id: str) -> None:
        self._local.open(run_id)

    async def append(self, run_id: str, type: EventType, data: dict[str, Any] | None = None) -> RunEvent:
        if self._available():
            key = f"chatplane:run:{run_id}"
            try:
                seq = int(await self._redis.incr(f"{key}:seq"))
                event = RunEvent(id=seq, type=type, run_id=run_id, data=data or {})
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.xadd(key, {"e": event.model_dump_json()}, maxlen=_MAXLEN, approximate=True)
                    if type in TERMINAL_EVENTS:
                        pipe.expire(key, _EXPIRE_S)
                        pipe.expire(f"{key}:seq", _EXPIRE_S)
                    await pipe.execute()
                return event
            except (RedisError, OSError) as exc:
                self._degrade(exc)
        return await self._local.append(run_id, type, data)

    async def subscribe(self, run_id: str, after: int = 0, *, through_pauses: bool = False) -> AsyncIterator[RunEvent]:
        if not self._available() or self._local.has_events(run_id):
            async for event in self._local.subscribe(run_id, after, through_pauses=through_pauses):
                yield event
            return
        key = f"chatplane:run:{run_id}"
        cursor = "0-0"
        while True:
            try:
                batch: Any = await self._redis.xread({key: cursor}, count=500, block=5000)
            except (RedisError, OSError) as exc:
                self._degrade(exc)
                async for event in self._local.subscribe(run_id, after, through_pauses=through_pauses):
                    yield event
                return
            entries: list[Any] = batch[0][1] if batch else []
            for stream_id, fields in entries:
                cursor = stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)
                event = RunEvent.model_validate_json(fields[b"e"])
                if event.id <= after:
                    continue
                after = event.id
                yield event
                if event.type in TERMINAL_EVENTS:
                    return
                if event.type in PAUSE_EVENTS and not through_pauses:
                    more = await self._redis.xread({key: cursor}, count=1)
                    if not more:
                        return
