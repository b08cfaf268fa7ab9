"""Per-user limits with the ``limits`` library: requests per minute, model tokens per day, runs at once.

Counters live in memory for one process, or in Redis (``CHATPLANE_REDIS_URL``) so several processes share them.
The single local user of a development server is not limited (it is you, and load tests run as it). The runs-at-once
limit is counted from the runs table, so it holds across processes, loosely: requests that arrive in the same
instant may all pass.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from chatplane.config import Settings
from chatplane.errors import RateLimitedError
from chatplane.observability import signals
from chatplane.service.auth import User
from chatplane.storage.runs import Run, RunStore


def _storage(settings: Settings) -> Storage:
    if settings.redis_url:
        return RedisStorage(f"async+{settings.redis_url}", implementation="redispy", wrap_exceptions=True)
    return MemoryStorage()


class RateLimits:
    def __init__(self, settings: Settings, runs: RunStore) -> None:
        self.settings = settings
        self.runs = runs
        self.limiter = MovingWindowRateLimiter(_storage(settings))
        self.requests = (
            RateLimitItemPerMinute(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
        )
        self.tokens = RateLimitItemPerDay(settings.tokens_per_day) if settings.tokens_per_day else None

    async def _retry_after(self, item: RateLimitItemPerMinute | RateLimitItemPerDay, *keys: str) -> int:
        stats = await self.limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check_request(self, user: User) -> None:
        if user.via == "local":
            return
        if self.requests is not None and not await self.limiter.hit(self.requests, "requests", user.rate_key):
            retry = await self._retry_after(self.requests, "requests", user.rate_key)
            signals.rate_limited("requests")
            raise RateLimitedError(
                f"Rate limit of {self.settings.rate_limit_per_minute} requests per minute reached.", retry
            )

    async def check_new_run(self, user: User) -> None:
        """Before accepting a run: the user's token budget for the day and their runs in progress."""
        if user.via == "local":
            return
        if self.tokens is not None and not await self.limiter.test(self.tokens, "tokens", user.id):
            retry = await self._retry_after(self.tokens, "tokens", user.id)
            signals.rate_limited("tokens")
            raise RateLimitedError(f"Daily budget of {self.settings.tokens_per_day} tokens used up.", retry)
        limit = self.settings.max_concurrent_runs_per_user
        if limit and await self.runs.count_active(user.id) >= limit:
            signals.rate_limited("runs")
            raise RateLimitedError(f"At most {limit} runs at once; wait for one to finish.", 1)

    async def record_run(self, run: Run) -> None:
        """After a run: count its tokens against its owner's daily budget."""
        used = int(run.usage.get("total_tokens", 0) or 0)
        if self.tokens is not None and used > 0:
            # A window refuses a single hit larger than its whole amount; such a run uses up the budget.
            await self.limiter.hit(self.tokens, "tokens", run.owner, cost=min(used, self.tokens.amount))
