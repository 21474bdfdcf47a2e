"""What the reaper shares with the workers: the service account key check and the rate
limit counted in the same Redis keys."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import redis.asyncio as redis

from tests.cleanup.support import deleted_names, reaper_config, seed
from tests.fakes.compute_api import ComputeFake
from travis_worker.backends.google.ratelimit import LocalRateLimiter
from travis_worker.cleanup import run_cleanup
from travis_worker.cleanup.compute import connect
from travis_worker.errors import ConfigError

pytestmark = pytest.mark.timeout(20)


async def test_account_json_is_checked_as_the_workers_is(compute_fake: ComputeFake, tmp_path):
    limiter = LocalRateLimiter(0, timedelta(seconds=1))
    keyless = reaper_config(compute_fake, account_json='{"client_email": "reaper@p.iam"}')
    with pytest.raises(ConfigError, match="TRAVIS_WORKER_CLEANUP_ACCOUNT_JSON lacks private_key"):
        await connect(keyless, limiter)

    path = tmp_path / "key.json"
    path.write_text(json.dumps({"private_key": "SECRET-KEY"}))
    from_file = reaper_config(compute_fake, account_json=str(path))
    with pytest.raises(ConfigError, match=f"file '{path}' lacks client_email") as caught:
        await connect(from_file, limiter)
    assert "SECRET" not in str(caught.value)
    assert compute_fake.count() == 0


async def test_the_reaper_counts_its_calls_in_the_workers_redis_keys(
    compute_fake: ComputeFake, redis_url: str
) -> None:
    seed(compute_fake, "travis-job-stale", age=timedelta(hours=4))
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    config = reaper_config(
        compute_fake,
        rate_limit_redis_url=redis_url,
        rate_limit_prefix=prefix,
        rate_limit_max_calls=100,
        rate_limit_duration=timedelta(hours=1),  # one window, whose key outlives the pass
    )
    assert await run_cleanup(config) == 0
    assert deleted_names(compute_fake) == {"travis-job-stale"}

    client = redis.Redis.from_url(redis_url)
    try:
        keys = await client.keys(f"{prefix}:gce-api:*")
        counted = sum([int(await client.get(key) or 0) for key in keys])
        await client.delete(*keys)
    finally:
        await client.aclose()
    assert counted == compute_fake.count() == 2  # the listing and the delete
