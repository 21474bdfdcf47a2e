"""When the cloud has no room (a regional quota used up, rate limited), a start fails with a
CapacityError, the worker stops taking jobs until the region's quotas say there is room
again, and the number of resets stays bounded by the processors already starting a job."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.backends.conftest import Recorder
from tests.backends.gce.conftest import job_attrs
from tests.backends.gce.test_end_to_end import gce_environ
from tests.fakes.compute_api import ComputeFake
from tests.fakes.compute_resources import quota_error
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker import metrics
from travis_worker.errors import CapacityError

pytestmark = pytest.mark.usefixtures("root")
REGIONAL_CPU_QUOTA = quota_error("CPUS", {"region": "us-central1"})


def quota_storm(compute: ComputeFake, on: bool) -> None:
    """Every insert of the region fails on the CPU quota, which regions.get shows used up."""
    zones = compute.zones
    compute.faults.operation_errors = {zone: [REGIONAL_CPU_QUOTA] for zone in zones} if on else {}
    limit, _ = compute.quotas["CPUS"]
    compute.quotas["CPUS"] = (limit, limit if on else 0.0)


async def test_a_regional_quota_is_a_capacity_error(compute, make_provider):
    provider = await make_provider()
    assert await provider.has_capacity()
    quota_storm(compute, True)
    with pytest.raises(CapacityError, match="QUOTA_EXCEEDED") as raised:
        await provider.start(job_attrs(), Recorder())
    assert raised.value.reason == "quota"
    assert len(compute.inserts) == 1, "another zone of the region cannot help"
    assert not await provider.has_capacity()
    quota_storm(compute, False)
    assert await provider.has_capacity()


async def test_rate_limiting_is_a_capacity_error(compute, make_provider):
    provider = await make_provider(BACKOFF_RETRY_MAX="300ms")
    compute.fail("instances.insert", 429, times=1000)
    with pytest.raises(CapacityError) as raised:
        await provider.start(job_attrs(), Recorder())
    assert raised.value.reason == "rate_limit"
    compute.fail("regions.get", 429, times=1000)
    assert not await provider.has_capacity()


@pytest.mark.timeout(180)
async def test_a_quota_storm_pauses_consumption_with_bounded_resets(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, compute, caplog
):
    pool_size, jobs = 10, 30
    job_ids = [job_id + n for n in range(jobs)]
    for each in job_ids:
        build_api.scripts[each] = b"#!/bin/bash\necho done\n"
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url,
        provider_name="gce", pool_size=str(pool_size), capacity_probe_interval="1s",
    )  # fmt: skip
    quota_storm(compute, True)
    caplog.set_level(logging.INFO, logger="travis_worker")

    def resets() -> list[int]:
        return [each for each in job_ids if "reset" in reporting.state_names(each)]

    async with running_worker(values, gce_environ(compute)) as app:
        for each in job_ids:
            await publish(amqp_connection, queue_name, example_payload(each))
        await reporting.wait_for(lambda: bool(resets()), 60)
        await asyncio.sleep(6)  # the storm goes on; the worker must not burn through the queue
        assert not app.ready
        assert metrics.CONSUMPTION_PAUSED._value.get() == 1
        during_storm = len(resets())
        assert 1 <= during_storm <= pool_size
        assert all(len(reporting.state_names(each)) <= 2 for each in job_ids)

        quota_storm(compute, False)
        unreset = [each for each in job_ids if each not in resets()]
        for each in unreset:
            await reporting.wait_finished(each, timeout=90)
        assert app.ready
        assert metrics.CONSUMPTION_PAUSED._value.get() == 0
    assert len(resets()) == during_storm
    assert all(reporting.state_names(each)[-1] == "passed" for each in unreset)
    for each in job_ids:
        reporting.assert_log_whole(each)
    assert await queue_depth(amqp_connection, queue_name) == 0, "a delivery was never acked"
    paused = [r for r in caplog.records if str(r.msg).startswith("pausing job consumption")]
    assert len(paused) == 1, "the pause is logged once, not once a job"
    assert compute.instances == {}
