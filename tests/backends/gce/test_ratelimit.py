"""Rate limiters: per process, and shared through a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import redis.asyncio as redis

from travis_worker.backends.google.ratelimit import (
    LocalRateLimiter,
    RateLimitSettings,
    RedisRateLimiter,
    build_rate_limiter,
)


async def test_local_limiter_spreads_calls_over_the_window():
    limiter = LocalRateLimiter(3, timedelta(milliseconds=300))
    started = time.monotonic()
    moments = []
    for _ in range(7):
        await limiter.wait()
        moments.append(time.monotonic() - started)
    assert moments[2] < 0.1 and 0.29 < moments[3] < 0.5 and moments[6] >= 0.59


async def test_local_limiter_zero_means_unlimited():
    limiter = LocalRateLimiter(0, timedelta(seconds=1))
    await asyncio.wait_for(asyncio.gather(*(limiter.wait() for _ in range(100))), 1)


async def test_redis_fixed_window(redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    limiter = RedisRateLimiter(redis_url, prefix=prefix, max_calls=2, window=timedelta(hours=1))
    other_worker = RedisRateLimiter(
        redis_url, prefix=prefix, max_calls=2, window=timedelta(hours=1)
    )
    try:
        assert await limiter.allow()
        assert await other_worker.allow()
        assert not await limiter.allow()
        client = redis.Redis.from_url(redis_url)
        [key] = await client.keys(f"{prefix}:gce-api:*")
        now = int(time.time())
        assert key.decode() == f"{prefix}:gce-api:{now - now % 3600}"
        assert 0 < await client.ttl(key) <= 3600
        await client.delete(key)
        await client.aclose()
    finally:
        await limiter.close()
        await other_worker.close()


async def test_redis_concurrent_callers_are_not_refused_below_the_limit(redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    workers = [
        RedisRateLimiter(redis_url, prefix=prefix, max_calls=12, window=timedelta(hours=1))
        for _ in range(3)
    ]
    try:
        answers = await asyncio.gather(*(w.allow() for w in workers for _ in range(4)))
        assert answers == [True] * 12
        assert not await workers[0].allow()
    finally:
        for worker in workers:
            await worker.close()
        client = redis.Redis.from_url(redis_url)
        await client.delete(*await client.keys(f"{prefix}:*"))
        await client.aclose()


async def test_redis_dynamic_config_overrides_the_limit(redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    await client.set(f"{prefix}:gce-api:max_calls", "1")
    await client.set(f"{prefix}:gce-api:duration", "1h")
    limiter = RedisRateLimiter(
        redis_url, prefix=prefix, max_calls=100, dynamic_config=True, window=timedelta(seconds=1)
    )
    try:
        assert await limiter.allow()
        assert not await limiter.allow()
        assert limiter.window == timedelta(hours=1)
    finally:
        await limiter.close()
        keys = await client.keys(f"{prefix}:*")
        await client.delete(*keys)
        await client.aclose()


async def test_a_broken_redis_slows_calls_down_but_lets_them_through():
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", window=timedelta(milliseconds=50))
    try:
        await asyncio.wait_for(limiter.wait(), 5)
    finally:
        await limiter.close()


async def test_settings_build_the_limiter_they_describe(redis_url):
    local = build_rate_limiter(RateLimitSettings(max_calls=3, window=timedelta(seconds=2)))
    assert isinstance(local, LocalRateLimiter)
    assert (local.max_calls, local.window) == (3, 2.0)

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings = RateLimitSettings(
        max_calls=5,
        window=timedelta(hours=1),
        redis_url=redis_url,
        prefix=prefix,
        dynamic_config=True,
        dynamic_ttl=timedelta(0),
    )
    shared = build_rate_limiter(settings)
    client = redis.Redis.from_url(redis_url)
    await client.set(f"{prefix}:gce-api:max_calls", 1)  # the fleet's limit, read from Redis
    try:
        assert await shared.allow()
        assert not await shared.allow()
    finally:
        await client.delete(*await client.keys(f"{prefix}:gce-api:*"))
        await client.aclose()
        await shared.close()
