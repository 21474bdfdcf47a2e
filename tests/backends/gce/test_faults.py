"""What goes wrong with clouds and VMs, injected into the fake, and how jobs fare."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
import redis.asyncio as redis

from tests.backends.conftest import Recorder
from tests.backends.gce.conftest import job_attrs
from travis_worker import metrics
from travis_worker.errors import InstanceLostError

pytestmark = pytest.mark.usefixtures("root")


async def test_lost_insert_answer_is_retried_without_a_second_vm(compute, make_provider):
    provider = await make_provider(ZONES="us-central1-a")
    compute.faults.lose_insert_responses = 1
    instance = await provider.start(job_attrs(), Recorder())
    await instance.stop()

    first, retry = compute.inserts
    assert first.request_id == retry.request_id and retry.duplicate
    assert len(compute.deletes) == 1  # one VM existed, and it is gone


async def test_throttling_and_server_errors_are_retried(compute, make_provider):
    provider = await make_provider(ZONES="us-central1-a")
    compute.fail("instances.insert", 429, times=2)
    compute.fail("zoneOperations.wait", 503, times=2)
    compute.fail("instances.get", 503)
    compute.fail("instances.delete", 500)
    retried = metrics.CLOUD_API_ERRORS.labels(
        method="instances.insert", code="429", zone="us-central1-a"
    )
    before = retried._value.get()

    instance = await provider.start(job_attrs(), Recorder())
    await instance.stop()

    assert retried._value.get() - before == 2
    assert compute.count("instances.insert") == 3
    assert compute.instances == {}


async def test_slow_boot_and_late_sshd(compute, make_provider):
    provider = await make_provider()
    compute.faults.boot_delay = 0.5
    compute.faults.ssh_delay = 0.7
    record = Recorder()
    instance = await provider.start(job_attrs(), record)
    await instance.upload_script(b"echo up\n", record)
    assert await instance.run_script(record) == 0
    await instance.stop()
    assert instance.startup_duration.total_seconds() > 1.2
    assert compute.count("zoneOperations.wait") == 2  # the insert, then the delete
    assert record.text.count(".") >= 3  # SSH was probed while the guest booted


async def test_preempted_vm_requeues_the_job(compute, make_provider):
    provider = await make_provider(PREEMPTIBLE="true")
    instance = await provider.start(job_attrs(), Recorder())
    scheduling = compute.inserts[0].body["scheduling"]
    assert scheduling["preemptible"] is True
    assert scheduling["provisioningModel"] == "SPOT"
    assert scheduling["onHostMaintenance"] == "TERMINATE"
    await instance.upload_script(b"echo working\nsleep 30\n", Recorder())
    record = Recorder()
    run = asyncio.ensure_future(instance.run_script(record))
    while b"working" not in record.output:
        await asyncio.sleep(0.05)
    await compute.preempt(instance.id)

    with pytest.raises(InstanceLostError, match="preempted"):
        await run
    await instance.stop()


async def test_ssh_dropped_mid_script_requeues_the_job(compute, make_provider):
    provider = await make_provider()
    instance = await provider.start(job_attrs(), Recorder())
    await instance.upload_script(b"echo working\nsleep 30\necho never\n", Recorder())
    record = Recorder()
    run = asyncio.ensure_future(instance.run_script(record))
    while b"working" not in record.output:
        await asyncio.sleep(0.05)
    await compute.drop_ssh(instance.id)

    with pytest.raises(InstanceLostError, match="connection lost"):
        await run
    assert b"never" not in record.output
    await instance.stop()
    assert compute.instances == {}


async def test_gce_deletes_the_vm_of_a_worker_that_died(compute, make_provider):
    provider = await make_provider(MAX_RUN_MARGIN="1s")
    instance = await provider.start(job_attrs(hard_timeout=timedelta(seconds=1)), Recorder())
    assert compute.inserts[0].body["scheduling"]["maxRunDuration"] == {"seconds": "2"}
    # The worker is gone: nobody calls stop(). GCE still removes the VM on time.
    started = time.monotonic()
    while compute.instances:
        await asyncio.sleep(0.05)
    assert time.monotonic() - started < 3
    assert compute.expired == [instance.id] and compute.deletes == []


async def test_calls_keep_to_the_in_process_rate_limit(compute, make_provider):
    started = time.monotonic()
    provider = await make_provider(RATE_LIMIT_MAX_CALLS="4", RATE_LIMIT_DURATION="200ms")
    instance = await provider.start(job_attrs(), Recorder())
    elapsed = time.monotonic() - started
    calls = compute.count()  # setup's and the start's, all rate limited
    await instance.stop()
    assert calls >= 12
    assert elapsed >= (calls // 4 - 1) * 0.2


async def test_redis_rate_limit_is_shared_through_redis(compute, make_provider, redis_url):
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    provider = await make_provider(
        RATE_LIMIT_REDIS_URL=redis_url,
        RATE_LIMIT_PREFIX=prefix,
        RATE_LIMIT_MAX_CALLS="1000",
        RATE_LIMIT_DURATION="1h",  # one window, whose key outlives the test
    )
    instance = await provider.start(job_attrs(), Recorder())
    await instance.stop()

    client = redis.Redis.from_url(redis_url)
    try:
        keys = await client.keys(f"{prefix}:gce-api:*")
        counted = sum([int(await client.get(key) or 0) for key in keys])
        await client.delete(*keys)
    finally:
        await client.aclose()
    # Every call but the delete waits for the limiter: setup's and the job's.
    assert counted == compute.count() - compute.count("instances.delete")
