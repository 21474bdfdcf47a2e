"""A job's VM from insert to deletion, against the Compute fake and a real sshd."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import pytest

from tests.backends.conftest import Recorder
from tests.backends.gce.conftest import eventually, job_attrs
from travis_worker.backends.base import ProgressState
from travis_worker.errors import InstanceStartError, JobAbortError, StaleVMError
from travis_worker.job import VmConfig

pytestmark = pytest.mark.usefixtures("root")


async def test_happy_path_boots_runs_and_deletes(compute, make_provider):
    provider = await make_provider()
    calls_after_setup = compute.count()
    record = Recorder()

    instance = await provider.start(job_attrs(), record)
    script = b"echo hello from $(whoami) in $PWD\necho $TERM\nstty size\nexit 3\n"
    await instance.upload_script(script, record)
    code = await instance.run_script(record)
    await instance.stop()

    assert code == 3
    assert record.output.replace(b"\r\n", b"\n") == (
        b"hello from travis in /home/travis\nxterm\n40 80\n"
    )
    assert re.fullmatch(r"travis-job-[0-9a-f-]{36}", instance.id)
    assert instance.image_name == "travis-ci-ubuntu-1804-1700000000"
    assert instance.startup_duration > timedelta(0)
    assert compute.instances == {}
    assert [d.name for d in compute.deletes] == [instance.id]
    assert [c.method for c in compute.calls[calls_after_setup:]] == [
        "images.list",
        "instances.insert",
        "zoneOperations.wait",
        "instances.get",
        "instances.delete",
        "zoneOperations.wait",
    ]


async def test_second_job_uses_the_cached_image(compute, make_provider):
    provider = await make_provider()
    first = await provider.start(job_attrs(), Recorder())
    await first.stop()
    before = compute.count()

    second = await provider.start(job_attrs(), Recorder())
    await second.stop()

    assert compute.count("images.list") == 1
    assert compute.count() - before == 5


async def test_insert_body_is_the_go_workers_plus_labels_and_max_run(compute, make_provider):
    provider = await make_provider(ZONES="us-central1-b", TRAVIS_SITE="org")
    instance = await provider.start(job_attrs(hard_timeout=timedelta(minutes=50)), Recorder())
    await instance.stop()

    [insert] = compute.inserts
    body = insert.body
    api = f"https://www.googleapis.com/compute/v1/projects/{compute.project}"
    assert insert.zone == "us-central1-b"
    assert re.fullmatch(r"[0-9a-f-]{36}", insert.request_id or "")
    script = body["metadata"]["items"][0]["value"]
    assert body == {
        "name": instance.id,
        "description": "Travis CI ruby test VM",
        "zone": "us-central1-b",
        "machineType": f"{api}/zones/us-central1-b/machineTypes/n1-standard-2",
        "disks": [
            {
                "type": "PERSISTENT",
                "mode": "READ_WRITE",
                "boot": True,
                "autoDelete": True,
                "initializeParams": {
                    "sourceImage": f"{api}/global/images/travis-ci-ubuntu-1804-1700000000",
                    "diskType": "zones/us-central1-b/diskTypes/pd-ssd",
                    "diskSizeGb": "20",
                },
            }
        ],
        "networkInterfaces": [
            {
                "network": f"{api}/global/networks/default",
                "accessConfigs": [
                    {
                        "name": "AccessConfig brought to you by travis-worker",
                        "type": "ONE_TO_ONE_NAT",
                    }
                ],
            }
        ],
        "tags": {"items": ["testing", "org"]},
        "metadata": {"items": [{"key": "startup-script", "value": script}]},
        "scheduling": {
            "preemptible": False,
            "automaticRestart": False,
            "onHostMaintenance": "MIGRATE",
            "maxRunDuration": {"seconds": str(60 * 60)},
            "instanceTerminationAction": "DELETE",
        },
        "labels": {
            "created-by": "travis-worker",
            "travis-worker": "worker-1-example-com",
            "job-id": "4242",
            "repo": "travis-ci-hello-world",
        },
    }
    assert script.startswith("#!/usr/bin/env bash\necho poweroff | at now + 60 minutes\n")
    assert provider.key.authorized_key in script


async def test_progress_lines_are_the_go_workers(compute, make_provider):
    provider = await make_provider()
    compute.faults.ssh_delay = 0.3
    record = Recorder()
    instance = await provider.start(job_attrs(), record)
    await instance.upload_script(b"true\n", record)
    await instance.stop()

    assert record.messages[:5] == [
        'selected image "travis-ci-ubuntu-1804-1700000000"',
        "rendered startup script",
        "inserted instance",
        "polling for instance insert completion...",
        record.messages[4],
    ]
    assert re.fullmatch(r"instance is ready \(\d+(\.\d+)?m?s\)", record.messages[4])
    assert record.messages[5] == "waiting for ssh connectivity..."
    assert re.fullmatch(r"ssh connectivity established \(\d+(\.\d+)?m?s\)", record.messages[6])
    assert record.messages[7:] == ["uploaded script"]
    text = record.text
    assert text.startswith('✓ selected image "travis-ci-ubuntu-1804-1700000000"\r\n')
    assert "• waiting for ssh connectivity...." in text  # dots while sshd is not up
    assert "\r\n✓ ssh connectivity established (" in text
    assert text.endswith(")\r\n✓ uploaded script\r\n")


async def test_output_is_streamed_as_it_comes(compute, make_provider):
    provider = await make_provider()
    instance = await provider.start(job_attrs(), Recorder())
    await instance.upload_script(b"echo one\nsleep 1\necho two\n", Recorder())
    arrivals: list[tuple[float, bytes]] = []

    class Clocked:
        async def write(self, data: bytes) -> None:
            arrivals.append((time.monotonic(), data))

    assert await instance.run_script(Clocked()) == 0
    await instance.stop()
    first_two = next(at for at, data in arrivals if b"two" in data)
    assert b"one" in arrivals[0][1] and first_two - arrivals[0][0] > 0.8


async def test_premium_payload_pins_zone_machine_type_and_gpu(compute, make_provider):
    provider = await make_provider()
    attrs = job_attrs(
        vm_type="premium",
        vm_config=VmConfig(gpu_count=1, gpu_type="nvidia-tesla-v100", zone="us-central1-c"),
    )
    instance = await provider.start(attrs, Recorder())
    await instance.stop()

    [insert] = compute.inserts
    assert insert.zone == "us-central1-c"
    assert insert.body["machineType"].endswith("zones/us-central1-c/machineTypes/n1-standard-4")
    assert insert.body["guestAccelerators"] == [
        {
            "acceleratorCount": 1,
            "acceleratorType": "https://www.googleapis.com/compute/v1/projects/travis-test/"
            "zones/us-central1-c/acceleratorTypes/nvidia-tesla-v100",
        }
    ]
    assert insert.body["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert attrs.vm_size == "premium"


async def test_vm_size_maps_to_a_machine_type(compute, make_provider):
    provider = await make_provider()
    attrs = job_attrs(vm_size="large")
    instance = await provider.start(attrs, Recorder())
    await instance.stop()
    assert compute.inserts[0].body["machineType"].endswith("/machineTypes/n2-standard-4")
    assert attrs.vm_size == "n2-standard-4"


async def test_without_public_ip_it_connects_to_the_internal_address(compute, make_provider):
    provider = await make_provider(PUBLIC_IP="false")
    instance = await provider.start(job_attrs(), Recorder())
    vm = compute.instance(instance.id)
    assert instance.ip == vm.network_ip and vm.nat_ip is None
    assert compute.inserts[0].body["tags"]["items"] == ["testing", "no-ip"]
    assert "accessConfigs" not in compute.inserts[0].body["networkInterfaces"][0]
    await instance.stop()


async def test_public_ip_without_public_ip_connect_uses_the_internal_address(
    compute, make_provider
):
    provider = await make_provider(PUBLIC_IP_CONNECT="false")
    instance = await provider.start(job_attrs(), Recorder())
    vm = compute.instance(instance.id)
    assert vm.nat_ip is not None and instance.ip == vm.network_ip != vm.nat_ip
    await instance.stop()


async def test_deterministic_hostname(compute, make_provider):
    provider = await make_provider(DETERMINISTIC_HOSTNAME="true")
    attrs = job_attrs(repository="very-SiLlY.nAmE.wat/por-cu___-pine", job_id=7)
    instance = await provider.start(attrs, Recorder())
    await instance.stop()
    assert instance.id == "travis-job-very-silly-nam-por-cu-pine-7"


async def test_stale_vm_is_refused(compute, make_provider):
    provider = await make_provider()
    compute.faults.stale_home = True
    record = Recorder()
    instance = await provider.start(job_attrs(), record)
    with pytest.raises(StaleVMError):
        await instance.upload_script(b"echo hi\n", record)
    await instance.stop()
    last = record.entries[-1]
    assert (last.message, last.state, last.interrupts) == (
        "existing script detected",
        ProgressState.FAILURE,
        True,
    )
    assert compute.instances == {}


async def test_vm_that_never_answers_ssh_fails_the_start_and_is_deleted(compute, make_provider):
    provider = await make_provider(UPLOAD_RETRIES="5", UPLOAD_RETRY_SLEEP="100ms")
    compute.faults.ssh_never = True
    record = Recorder()
    started = time.monotonic()
    with pytest.raises(InstanceStartError, match="never accepted SSH"):
        await provider.start(job_attrs(), record)
    assert time.monotonic() - started < 5
    assert record.messages[-1] == "could not connect over ssh"
    await eventually(lambda: compute.instances == {} and len(compute.deletes) == 1)


async def test_startup_timeout_returns_at_once_and_the_vm_is_deleted_after(compute, make_provider):
    provider = await make_provider()
    compute.faults.boot_delay = 30  # the insert operation never finishes in time
    compute.faults.delete_delay = 1.5  # GCE takes 30-90 s to delete a VM
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await provider.start(job_attrs(), Recorder())
    assert time.monotonic() - started < 1.2  # the deletion was not waited for
    await eventually(lambda: len(compute.deletes) == 1)  # it goes on in the background
    assert compute.instances != {}  # (GCE is still deleting)
    await provider.close()  # and the provider waits for it
    assert compute.instances == {}


async def test_a_start_cancelled_mid_insert_leaves_no_vm_behind(compute, make_provider):
    provider = await make_provider()
    compute.faults.insert_delay = 1.5  # the insert lands after the start is cancelled
    start = asyncio.ensure_future(provider.start(job_attrs(), Recorder()))
    await eventually(lambda: compute.count("instances.insert") == 1)
    cancelled_at = time.monotonic()
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    assert time.monotonic() - cancelled_at < 0.5  # not held until the insert's answer
    assert compute.inserts == []  # still on the wire

    await provider.close()  # waits for the insert to land, then deletes the VM
    assert len(compute.inserts) == 1, "close() returned before the insert landed"
    assert [delete.name for delete in compute.deletes] == [compute.inserts[0].name]
    assert compute.instances == {}


async def test_windows_jobs_are_aborted_with_a_message(compute, make_provider):
    provider = await make_provider()
    with pytest.raises(JobAbortError, match="windows"):
        await provider.start(job_attrs(os="windows"), Recorder())
    assert compute.inserts == []


async def test_unknown_image_fails_the_start_before_any_insert(compute, make_provider):
    provider = await make_provider()
    record = Recorder()
    with pytest.raises(InstanceStartError, match="no image found"):
        await provider.start(job_attrs(image_name="no-such-image"), record)
    assert record.messages == ["could not select image"]
    assert compute.inserts == []


async def test_cancelling_the_run_stops_the_script(compute, make_provider):
    provider = await make_provider()
    instance = await provider.start(job_attrs(), Recorder())
    await instance.upload_script(b"echo started\nsleep 30\n", Recorder())
    record = Recorder()
    run = asyncio.ensure_future(instance.run_script(record))
    while b"started" not in record.output:
        await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await instance.stop()
    assert compute.instances == {}


async def test_skip_stop_poll_returns_before_the_vm_is_gone(compute, make_provider):
    compute.faults.delete_delay = 1.0
    polled = await make_provider()
    skipping = await make_provider(SKIP_STOP_POLL="true")
    for provider, at_least, at_most in ((polled, 0.9, 5.0), (skipping, 0.0, 0.5)):
        instance = await provider.start(job_attrs(), Recorder())
        started = time.monotonic()
        await instance.stop()
        assert at_least <= time.monotonic() - started < at_most


async def test_stop_twice_deletes_once(compute, make_provider):
    provider = await make_provider()
    instance = await provider.start(job_attrs(), Recorder())
    await instance.stop()
    await instance.stop()
    assert len(compute.deletes) == 1
