"""Rate limits for cloud API calls: per process, or shared by every worker through Redis.

A worker fleet shares one API quota per project; GCE answers `Rate Limit Exceeded` to a
fleet that calls as fast as it can. Without a Redis URL each process keeps to
`max_calls` per `window` on its own (`LocalRateLimiter`); with one, all workers count in
the same Redis keys (`RedisRateLimiter`, the fixed-window algorithm of travis-ci/worker,
travis-ci/worker `ratelimit/ratelimit.go`). `max_calls == 0` means unlimited.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from travis_worker import metrics
from travis_worker.compat.durations import parse_go_duration

logger = logging.getLogger(__name__)

# travis-ci/worker gives up on a broken Redis after 5 errors in a row and lets calls through:
# a Redis outage must slow the fleet down, not stop it.
MAX_CONSECUTIVE_ERRORS = 5


class RateLimiter(Protocol):
    async def wait(self) -> None:
        """Return when one more call may be made."""
        ...

    async def close(self) -> None: ...


class LocalRateLimiter:
    """At most `max_calls` calls in any `window` (a sliding window), first come first served."""

    def __init__(self, max_calls: int, window: timedelta) -> None:
        self.max_calls = max_calls
        self.window = window.total_seconds()
        self._calls: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.max_calls <= 0 or self.window <= 0:
            return
        started = time.monotonic()
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._calls and self._calls[0] <= now - self.window:
                    self._calls.popleft()
                if len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    break
                await asyncio.sleep(self._calls[0] + self.window - now)
        metrics.RATE_LIMIT_WAIT.observe(time.monotonic() - started)

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """A fixed window shared through Redis: key `<prefix>:<name>:<window start>` counts the
    calls of the current window; a call is allowed while the count is below the limit.

    With `dynamic_config`, `<prefix>:<name>:max_calls` and `<prefix>:<name>:duration` (a Go
    duration) in Redis override the configured limit, re-read every `dynamic_ttl`.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "gce-api",
        prefix: str = "",
        max_calls: int = 10,
        window: timedelta = timedelta(seconds=1),
        dynamic_config: bool = False,
        dynamic_ttl: timedelta = timedelta(minutes=1),
    ) -> None:
        # travis-ci/worker keeps one connection per process; a second lets the dynamic
        # config read proceed while a transaction holds the first.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=2, timeout=None)
        self._redis = redis.Redis(connection_pool=pool)
        self.name = name
        self.prefix = prefix
        self.max_calls = max_calls
        self.window = window
        self.dynamic_config = dynamic_config
        self.dynamic_ttl = dynamic_ttl.total_seconds()
        self._dynamic_read_at = float("-inf")

    def _key(self, suffix: str) -> str:
        return f"{self.prefix}:{self.name}:{suffix}"

    async def _refresh_limits(self) -> None:
        if not self.dynamic_config or time.monotonic() - self._dynamic_read_at < self.dynamic_ttl:
            return
        self._dynamic_read_at = time.monotonic()
        max_calls, duration = await self._redis.mget(self._key("max_calls"), self._key("duration"))
        try:
            if max_calls is not None:
                self.max_calls = int(max_calls)
            if duration is not None:
                text = duration.decode() if isinstance(duration, bytes) else str(duration)
                self.window = parse_go_duration(text)
        except ValueError:
            logger.warning("ignoring invalid dynamic rate limit config in Redis")

    async def allow(self) -> bool:
        """Count one call in the current window, or answer False when the window is full."""
        await self._refresh_limits()
        if self.max_calls <= 0:
            return True
        window_seconds = max(1, int(self.window.total_seconds()))
        now = int(time.time())
        key = self._key(str(now - now % window_seconds))
        current = await self._redis.get(key)
        if current is not None and int(current) >= self.max_calls:
            return False
        # travis-ci/worker WATCHes the key and denies when another caller changed it
        # meanwhile, which refuses concurrent callers far below the limit. Counting with
        # INCR and reading the count back is exact without that: of the callers racing
        # for the last places, the first ones by INCR order get them.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds)
            count, _ = await pipe.execute()
        return int(count) <= self.max_calls

    async def wait(self) -> None:
        started = time.monotonic()
        errors = 0
        while True:
            try:
                if await self.allow():
                    break
                errors = 0
            except RedisError as exc:
                errors += 1
                if errors >= MAX_CONSECUTIVE_ERRORS:
                    logger.warning(
                        "rate limiter unavailable, calling anyway", extra={"fields": {"err": exc}}
                    )
                    break
            # Random pauses spread the fleet's retries over the window (0–1 s as in the Go
            # worker, shorter for sub-second windows).
            await asyncio.sleep(random.uniform(0, min(1.0, self.window.total_seconds())))
        metrics.RATE_LIMIT_WAIT.observe(time.monotonic() - started)

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class RateLimitSettings:
    """One process's part in a rate limit: `max_calls` per `window` (0: unlimited); shared
    with every process that uses the same Redis `redis_url` and `prefix`."""

    max_calls: int = 10
    window: timedelta = timedelta(seconds=1)
    redis_url: str = ""
    prefix: str = ""
    dynamic_config: bool = False
    dynamic_ttl: timedelta = timedelta(minutes=1)


def build_rate_limiter(settings: RateLimitSettings, *, name: str = "gce-api") -> RateLimiter:
    """The limiter the settings describe: Redis-shared with a URL, else per process. Workers
    and the reaper build theirs here, so that they count in the same keys."""
    if settings.redis_url:
        return RedisRateLimiter(
            settings.redis_url,
            name=name,
            prefix=settings.prefix,
            max_calls=settings.max_calls,
            window=settings.window,
            dynamic_config=settings.dynamic_config,
            dynamic_ttl=settings.dynamic_ttl,
        )
    return LocalRateLimiter(settings.max_calls, settings.window)
