"""Zone fallback: a zone out of capacity (in the insert operation or its HTTP answer) sends
the VM to another zone, GCE's hint first, and keeps other jobs away for a cool-down."""

from __future__ import annotations

import asyncio

import pytest

from tests.backends.conftest import Recorder
from tests.backends.gce.conftest import job_attrs
from tests.fakes.compute_resources import capacity_error, quota_error
from travis_worker.errors import InstanceStartError
from travis_worker.job import VmConfig

pytestmark = pytest.mark.usefixtures("root")
A, B, C, F = "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"


async def test_operation_stockout_moves_to_another_zone_with_its_own_links(compute, make_provider):
    provider = await make_provider(ZONES=A)
    compute.faults.operation_errors[A] = [capacity_error(A)]
    record = Recorder()
    attrs = job_attrs(vm_size="gpu-medium")
    instance = await provider.start(attrs, record)
    await instance.stop()

    first, second = compute.inserts
    assert first.zone == A and second.zone != A
    assert first.request_id != second.request_id
    zone = second.zone
    body = second.body
    # travis-ci/worker blanked the machine type here; each zone gets its own links.
    assert body["machineType"].endswith(f"/zones/{zone}/machineTypes/n1-standard-8")
    assert body["disks"][0]["initializeParams"]["diskType"] == f"zones/{zone}/diskTypes/pd-ssd"
    assert (
        f"/zones/{zone}/acceleratorTypes/nvidia-tesla-t4"
        in (body["guestAccelerators"][0]["acceleratorType"])
    )
    assert "instance could not be inserted" in record.messages
    assert f"switching zones due to error, trying {zone}" in record.messages


async def test_the_zone_gce_names_as_available_is_tried_first(compute, make_provider):
    provider = await make_provider(ZONES=f"{A},{B}")
    compute.faults.operation_errors[A] = [capacity_error(A, available=(F,))]
    compute.faults.operation_errors[B] = [capacity_error(B, available=(F,))]
    instance = await provider.start(job_attrs(), Recorder())
    await instance.stop()
    assert [insert.zone for insert in compute.inserts][-1] == F
    assert len(compute.inserts) == 2


async def test_stockout_in_the_insert_answer_also_moves(compute, make_provider):
    provider = await make_provider(ZONES=A)
    compute.fail("instances.insert", 503, reason="ZONE_RESOURCE_POOL_EXHAUSTED")
    instance = await provider.start(job_attrs(), Recorder())
    await instance.stop()
    assert compute.inserts[0].zone == A and compute.inserts[1].zone != A


async def test_zonal_quota_moves_but_regional_quota_fails(compute, make_provider):
    provider = await make_provider(ZONES=A)
    compute.faults.operation_errors[A] = [quota_error("NVIDIA_T4_GPUS", {"zone": A})]
    instance = await provider.start(job_attrs(), Recorder())
    await instance.stop()
    assert compute.inserts[-1].zone != A

    compute.inserts.clear()
    regional = quota_error("CPUS", {"region": "us-central1"})
    compute.faults.operation_errors = {zone: [regional] for zone in (A, B, C, F)}
    with pytest.raises(InstanceStartError, match="QUOTA_EXCEEDED"):
        await provider.start(job_attrs(), Recorder())
    assert len(compute.inserts) == 1


async def test_a_job_pinned_to_a_zone_does_not_move(compute, make_provider):
    provider = await make_provider()
    compute.faults.operation_errors[C] = [capacity_error(C)]
    attrs = job_attrs(vm_config=VmConfig(zone=C))
    with pytest.raises(InstanceStartError, match="the job asked for this zone"):
        await provider.start(attrs, Recorder())
    assert [insert.zone for insert in compute.inserts] == [C]


async def test_no_zone_left_fails_the_start(compute, make_provider):
    provider = await make_provider(ZONES=A)
    compute.faults.operation_errors = {zone: [capacity_error(zone)] for zone in (A, B, C, F)}
    with pytest.raises(InstanceStartError, match="no zone could take the instance"):
        await provider.start(job_attrs(), Recorder())
    assert sorted(insert.zone for insert in compute.inserts) == [A, B, C, F]
    assert compute.instances == {}


async def test_a_failed_zone_cools_down_for_later_jobs(compute, make_provider):
    provider = await make_provider(ZONES=f"{A},{B}")
    compute.faults.operation_errors[A] = [capacity_error(A)]
    first = await provider.start(job_attrs(), Recorder())
    while compute.inserts[0].zone != A:  # make sure the first job met the stockout
        await first.stop()
        compute.inserts.clear()
        first = await provider.start(job_attrs(), Recorder())
    await first.stop()
    compute.inserts.clear()
    for _ in range(5):
        instance = await provider.start(job_attrs(), Recorder())
        await instance.stop()
    assert {insert.zone for insert in compute.inserts} == {B}


@pytest.mark.timeout(120)
async def test_twenty_concurrent_starts_survive_a_stockout(compute, make_provider):
    provider = await make_provider(ZONES=f"{A},{B},{C}")
    compute.faults.operation_errors[A] = [capacity_error(A)]
    compute.faults.boot_delay = 0.2

    instances = await asyncio.gather(*(provider.start(job_attrs(), Recorder()) for _ in range(20)))
    try:
        assert len({instance.id for instance in instances}) == 20
        assert all(instance.zone != A for instance in instances)
        failures = [op for op in compute.operations.values() if op.errors]
        first_failure_seen = min(op.first_served_done_at for op in failures)
        late = [i for i in compute.inserts if i.zone == A and i.at > first_failure_seen]
        assert late == []
    finally:
        await asyncio.gather(*(instance.stop() for instance in instances))
    assert compute.instances == {}
