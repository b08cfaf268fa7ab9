"""Run events in Redis streams, so any process can replay and follow a run that another process executes.

One stream per run (``chatplane:run:<id>``, capped, expiring an hour after the run ends); event ids come from an
``INCR`` counter beside it, so they stay contiguous even when another process takes over a run. An event is one
trip to Redis: a script numbers it, adds it to the stream and, for a run's last event, sets both keys to expire
(two trips where Redis refuses scripts). When Redis is unreachable the log degrades to the in-process one
(single-process behaviour) with a warning, and tries Redis again after a pause — it never fails a run. A follower of
a run this process does not hold then raises ``EventLogUnavailable``: its ``RunFollower`` reads the run's record.

A run that starts in the process that accepted it (``open(run_id, here=True)``: the common case, an idle thread)
also keeps its events in memory, with the same ids, and followers in that process read them there: no blocking
``XREAD`` (and no Redis connection held) per waiting request. Followers elsewhere, and of runs that started
elsewhere, read the stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, RedisError, ResponseError

from chatplane.events import PAUSE_EVENTS, TERMINAL_EVENTS, EventType, RunEvent
from chatplane.runs.eventlog import MemoryEventLog
from chatplane.runs.events import EventLogUnavailable, Silence

log = logging.getLogger("chatplane.runs")

_MAXLEN = 20_000
_EXPIRE_S = 3600
_RETRY_S = 10.0
_BLOCK_MS = 5000
_READ_MARGIN_S = 30.0
_MAX_FOLLOWERS = 10_000
_UNNUMBERED = '{"id":0,'
# KEYS: the stream, its counter; ARGV: the event's JSON after ``{"id":0,`` (``"type":...}``), the stream's cap,
# seconds to expire in (0: not yet). Returns the event's id. What is stored is ``RunEvent``'s JSON, as before.
_APPEND_LUA = """
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', '{"id":' .. seq .. ',' .. ARGV[1])
if ARGV[3] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return seq
"""


class RedisEventLog:
    def __init__(self, url: str) -> None:
        # Writes wait for a free connection (at most 100) rather than fail when many runs append at once.
        self._redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url, max_connections=100, timeout=5, socket_timeout=5, socket_connect_timeout=2
            )
        )
        # A follower holds a connection while it blocks in XREAD (up to _BLOCK_MS): a pool of its own, as large as
        # Redis's own client limit, and a socket timeout beyond the block, so that a busy event loop reading the
        # answer late is not taken for Redis being down.
        self._reader = aioredis.Redis.from_url(
            url,
            max_connections=_MAX_FOLLOWERS,
            socket_timeout=_BLOCK_MS / 1000 + _READ_MARGIN_S,
            socket_connect_timeout=2,
        )
        self._append = self._redis.register_script(_APPEND_LUA)  # EVALSHA; loaded again after a Redis restart
        self._scripts = True
        self._local = MemoryEventLog()
        self._here: set[str] = set()  # runs that started in this process: their events are in _local too
        self._down_until = 0.0

    async def aclose(self) -> None:
        await self._redis.aclose(close_connection_pool=True)
        await self._reader.aclose()

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

    async def _newer_than(self, key: str, event_id: int) -> bool:
        try:
            newest: Any = await self._reader.xrevrange(key, count=1)
        except (RedisError, OSError):
            return False
        return bool(newest) and RunEvent.model_validate_json(newest[0][1][b"e"]).id > event_id

    def known(self, run_id: str) -> bool:
        return True  # any process may have written it

    async def kept(self, run_id: str) -> bool:
        if run_id in self._here or self._local.has_events(run_id):
            return True
        if self._available():
            try:
                return bool(await self._reader.exists(f"chatplane:run:{run_id}"))
            except (RedisError, OSError) as exc:
                self._degrade(exc)
        return self._local.known(run_id)

    def open(self, run_id: str, *, here: bool = False) -> None:
        self._local.open(run_id)
        if here:
            self._here.add(run_id)

    async def append(self, run_id: str, type: EventType, data: dict[str, Any] | None = None) -> RunEvent:
        if self._available():
            event = RunEvent(id=0, type=type, run_id=run_id, data=data or {})
            try:
                await self._store(event)
            except (RedisError, OSError) as exc:
                self._degrade(exc)
            else:
                if run_id in self._here:
                    if type in TERMINAL_EVENTS or type in PAUSE_EVENTS:  # after a pause: wherever it resumes
                        self._here.discard(run_id)
                    if not await self._local.put(event):  # Redis was down for part of the run: local numbering
                        await self._local.append(run_id, type, data)
                return event
        return await self._local.append(run_id, type, data)

    async def _store(self, event: RunEvent) -> None:
        """Number ``event`` and add it to its run's stream, in one trip (the script) — or in two, an ``INCR`` and
        then the ``XADD``, where Redis refuses scripts (an ACL without ``@scripting``, say)."""
        key = f"chatplane:run:{event.run_id}"
        expire = _EXPIRE_S if event.type in TERMINAL_EVENTS else 0
        unnumbered = event.model_dump_json()
        if self._scripts and unnumbered.startswith(_UNNUMBERED):
            rest = unnumbered[len(_UNNUMBERED) :]  # ``"type":...}``
            try:
                event.id = int(await self._append(keys=[key, f"{key}:seq"], args=[rest, _MAXLEN, expire]))
                return
            except ResponseError as exc:
                if not _refuses_scripts(exc):
                    raise  # Redis failing (read-only replica, out of memory …): the log falls back, as for an outage
                self._scripts = False
                log.warning("Redis refused the event script (%s): run events take two trips each", type(exc).__name__)
        event.id = int(await self._redis.incr(f"{key}:seq"))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"e": event.model_dump_json()}, maxlen=_MAXLEN, approximate=True)
            if expire:
                pipe.expire(key, expire)
                pipe.expire(f"{key}:seq", expire)
            await pipe.execute()

    async def subscribe(
        self,
        run_id: str,
        after: int = 0,
        *,
        through_pauses: bool = False,
        silence: Silence | None = None,
    ) -> AsyncIterator[RunEvent]:
        held_here = run_id in self._here or self._local.has_events(run_id)
        if not self._available():
            if not held_here:
                raise EventLogUnavailable(run_id)  # it runs elsewhere: only its record can tell
            async for event in self._local.subscribe(run_id, after, through_pauses=through_pauses, silence=silence):
                yield event
            return
        key = f"chatplane:run:{run_id}"
        if held_here:
            # Started here (or logged here while Redis was down): the copy in memory, to its end or first pause.
            last: RunEvent | None = None
            async for event in self._local.subscribe(run_id, after, through_pauses=False, silence=silence):
                last, after = event, event.id
                yield event
            if last is None or last.type in TERMINAL_EVENTS or last.id == 0:  # id 0: the outcome from its record
                return
            # Paused: the run may be resumed in any process, so what follows is read from the stream.
            if not through_pauses and not await self._newer_than(key, after):
                return
        cursor = "0-0"
        while True:
            try:
                batch: Any = await self._reader.xread({key: cursor}, count=500, block=_BLOCK_MS)
            except (RedisError, OSError) as exc:
                self._degrade(exc)
                raise EventLogUnavailable(run_id) from None
            entries: list[Any] = batch[0][1] if batch else []
            if not entries and silence is not None and (outcome := await silence()) is not None:
                # _BLOCK_MS without an event, and the run's record says it is over: its worker died between recording
                # the outcome and logging it, and no event will ever come.
                yield outcome
                return
            for stream_id, fields in entries:
                cursor = stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)
                event = RunEvent.model_validate_json(fields[b"e"])
                if event.id <= after and event.type not in TERMINAL_EVENTS:
                    continue  # a run's last event is the stream's last: past the end, it comes again
                after = event.id
                yield event
                if event.type in TERMINAL_EVENTS:
                    return
                if event.type in PAUSE_EVENTS and not through_pauses:
                    more = await self._reader.xread({key: cursor}, count=1)
                    if not more:
                        return


def _refuses_scripts(exc: ResponseError) -> bool:
    """Whether Redis will never run the script for this client: no rights (ACL), or scripting disabled."""
    return isinstance(exc, NoPermissionError) or "unknown command" in str(exc).lower()
