"""ComputeApi through the real google-cloud-compute client against the HTTP fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from tests.backends.gce.conftest import eventually
from tests.fakes.compute_api import ComputeFake
from travis_worker import metrics
from travis_worker.backends.google.api import ComputeApi, RetryPolicy
from travis_worker.backends.google.api_types import ComputeApiError
from travis_worker.backends.google.auth import build_credentials
from travis_worker.backends.google.ratelimit import LocalRateLimiter

BODY = {
    "name": "vm-1",
    "machineType": "zones/us-central1-a/machineTypes/n1-standard-2",
    "disks": [
        {
            "boot": True,
            "initializeParams": {
                "sourceImage": "projects/p/global/images/travis-ci-ubuntu-1804-1700000000",
                "diskType": "zones/us-central1-a/diskTypes/pd-ssd",
            },
        }
    ],
    "networkInterfaces": [{"network": "global/networks/default"}],
}


@pytest.fixture
async def api(compute_only: ComputeFake) -> AsyncIterator[ComputeApi]:
    made = await ComputeApi.create(
        compute_only.project,
        endpoint=compute_only.endpoint,
        retry=RetryPolicy(initial=0.01, max_elapsed=1.0),
    )
    yield made
    await made.close()


def counted(method: str, code: str) -> float:
    return metrics.CLOUD_API_CALLS.labels(method=method, code=code)._value.get()


async def test_lookups(api, compute_only):
    zone = await api.get_zone("us-central1-a")
    assert zone.region.endswith("/regions/us-central1")
    zones = await api.list_region_zones(zone.region)
    assert sorted(z.name for z in zones) == sorted(compute_only.zones)
    links = await api.machine_type_links("us-central1-b", ["n2-standard-4", "e2-nope"])
    assert list(links) == ["n2-standard-4"]
    assert links["n2-standard-4"].endswith("/zones/us-central1-b/machineTypes/n2-standard-4")
    images = await api.find_images("images-project", "^travis-ci.+")
    assert {image.name for image in images} == set(compute_only.images)
    assert (await api.network_link("default")).endswith("/global/networks/default")


async def test_errors_are_translated_and_not_retried_when_pointless(api, compute_only):
    with pytest.raises(ComputeApiError) as caught:
        await api.get_instance("us-central1-a", "missing")
    assert caught.value.code == 404 and not caught.value.retryable
    assert caught.value.reasons == ("notFound",)
    compute_only.fail("zones.get", 400, reason="invalid")
    with pytest.raises(ComputeApiError):
        await api.get_zone("us-central1-a")
    assert compute_only.count("zones.get") == 1


async def test_throttling_is_retried_and_counted(api, compute_only):
    before = counted("zones.get", "429"), counted("zones.get", "200")
    compute_only.fail("zones.get", 429, times=3)
    await api.get_zone("us-central1-a")
    assert compute_only.count("zones.get") == 4
    assert (counted("zones.get", "429") - before[0], counted("zones.get", "200") - before[1]) == (
        3,
        1,
    )


async def test_retries_stop_after_the_backoff_budget(api, compute_only):
    compute_only.fail("zones.get", 503, times=1000)
    started = time.monotonic()
    with pytest.raises(ComputeApiError) as caught:
        await api.get_zone("us-central1-a")
    assert caught.value.code == 503
    assert time.monotonic() - started < 2.0


async def test_insert_is_idempotent_across_a_lost_answer(api, compute_only):
    compute_only.faults.lose_insert_responses = 1
    operation = await api.insert_instance("us-central1-a", BODY, "request-1")
    assert len(compute_only.instances) == 1
    assert [(i.request_id, i.duplicate) for i in compute_only.inserts] == [
        ("request-1", False),
        ("request-1", True),
    ]
    done = await api.wait_operation("us-central1-a", operation)
    assert done.done and not done.errors


async def test_list_and_delete_for_the_reaper(api, compute_only):
    compute_only.seed_instance("ours", "us-central1-a", labels={"created-by": "travis-worker"})
    compute_only.seed_instance("theirs", "us-central1-f", labels={"created-by": "someone"})
    found = await api.list_instances("labels.created-by = travis-worker")
    assert [(i.name, i.zone, i.labels["created-by"]) for i in found] == [
        ("ours", "us-central1-a", "travis-worker")
    ]
    assert len(await api.list_instances()) == 2
    assert await api.delete_instance("us-central1-a", "ours") is not None
    assert await api.delete_instance("us-central1-a", "never-was") is None


async def test_preemption_is_read_from_the_operations(api, compute_only):
    seeded = compute_only.seed_instance("spot", "us-central1-a")
    assert not await api.was_preempted(seeded.id)
    await compute_only.preempt("spot")
    assert await api.was_preempted(seeded.id)


async def test_deletes_are_never_held_back_by_the_rate_limit(compute_only):
    limiter = LocalRateLimiter(1, timedelta(hours=1))
    api = await ComputeApi.create(
        compute_only.project, endpoint=compute_only.endpoint, limiter=limiter
    )
    compute_only.seed_instance("vm", "us-central1-a")
    await api.get_zone("us-central1-a")  # uses the hour's only call
    assert await asyncio.wait_for(api.delete_instance("us-central1-a", "vm"), 5) is not None
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(api.get_zone("us-central1-a"), 0.3)
    await api.close()


@asynccontextmanager
async def waiting_boots(api: ComputeApi, count: int) -> AsyncIterator[list[asyncio.Future[object]]]:
    """`count` VMs inserted at once, each with a zoneOperations.wait on its insert; the
    waits are seen to their end, so that no thread is left blocked after the test."""
    inserts = [
        api.insert_instance("us-central1-a", {**BODY, "name": f"vm-{n}"}, f"request-{n}")
        for n in range(count)
    ]
    operations = await asyncio.gather(*inserts)
    waits = [
        asyncio.ensure_future(api.wait_operation("us-central1-a", name)) for name in operations
    ]
    try:
        yield waits
    finally:
        await asyncio.gather(*waits)


@pytest.mark.timeout(20)
async def test_a_delete_goes_out_while_every_api_thread_waits_for_an_operation(compute_only):
    credentials = build_credentials(None, compute_only.endpoint)
    api = ComputeApi(compute_only.project, credentials, endpoint=compute_only.endpoint, threads=4)
    compute_only.seed_instance("finished-job", "us-central1-b")
    compute_only.faults.boot_delay = 1.0  # each wait holds its thread this long
    try:
        async with waiting_boots(api, 4) as waits:
            await eventually(lambda: compute_only.count("zoneOperations.wait") == 4)
            started = time.monotonic()
            assert await api.delete_instance("us-central1-b", "finished-job") is not None
            assert time.monotonic() - started < 0.5
            assert not any(wait.done() for wait in waits)
    finally:
        await api.close()


@pytest.mark.timeout(20)
async def test_ninety_boots_waiting_at_once_leave_room_for_other_calls(api, compute_only):
    compute_only.faults.boot_delay = 2.0
    async with waiting_boots(api, 90):  # the production pool: every job booting at once
        await eventually(lambda: compute_only.count("zoneOperations.wait") == 90, timeout=1.5)
        started = time.monotonic()
        await api.get_zone("us-central1-a")
        assert time.monotonic() - started < 0.5
