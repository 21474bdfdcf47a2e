"""A real worker on the gce backend: real RabbitMQ, the build API fake, the Compute fake and
sshd VMs. What the hub sees (state updates, log parts) and what GCE sees (insert, delete)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.backends.gce.conftest import eventually, gce_environ
from tests.fakes.compute_api import ComputeFake
from tests.support.rabbit import Reporting
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)

pytestmark = [pytest.mark.usefixtures("root"), pytest.mark.timeout(90)]
START_FOLD = "travis_fold:start:step_start_instance\r\033[0K\033[33;1mStarting instance\033[0m\r\n"
END_FOLD = "travis_fold:end:step_start_instance\r\033[0K"


async def run_job(
    env: Any, payload: dict[str, Any], script: bytes, compute: ComputeFake, **gce: str
) -> int:
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name = env
    job_id = int(payload["job"]["id"])
    build_api.scripts[job_id] = script
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, provider_name="gce", progress_type="text"
    )
    async with running_worker(values, gce_environ(compute, **gce)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id, timeout=60)
    assert await queue_depth(amqp_connection, queue_name) == 0, "delivery was not acked"
    return job_id


@pytest.fixture
def env(amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name):
    return amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name


async def test_example_payload_runs_on_a_gce_vm(env, compute, job_id):
    reporting: Reporting = env[2]
    payload = example_payload(job_id)
    await run_job(env, payload, b"#!/bin/bash\necho Hello World\n", compute)

    states = reporting.states[job_id]
    assert [state.body["state"] for state in states] == ["received", "started", "passed"]
    [insert] = compute.inserts
    assert states[1].body["meta"]["instance_id"] == insert.name
    assert states[2].body["meta"]["instance_id"] == insert.name
    log = reporting.log_text(job_id)
    assert log.startswith(START_FOLD + '✓ selected image "travis-ci-ubuntu-1804-1700000000"\r\n')
    assert "✓ rendered startup script\r\n✓ inserted instance\r\n" in log
    established = r"\r\n✓ ssh connectivity established \([\d.]+m?s\)\r\n"
    assert re.search(established + re.escape(END_FOLD), log)
    assert f"instance: {insert.name} travis-ci-ubuntu-1804-1700000000 (via amqp)\n" in log
    assert log.endswith("Hello World\r\n")  # through a PTY, as on travis-ci.com

    body = insert.body
    assert body["labels"]["job-id"] == str(job_id)
    assert body["labels"]["repo"] == "igorwwwwwwwwwwwwwwwwwwww-hello-world"
    assert body["scheduling"]["maxRunDuration"] == {"seconds": str(3000 + 600)}
    assert body["machineType"].endswith("/machineTypes/n1-standard-2")
    assert insert.request_id
    assert [delete.name for delete in compute.deletes] == [insert.name]
    assert compute.instances == {}


async def test_premium_payload_runs_in_its_zone_with_its_gpu(env, compute, job_id):
    reporting: Reporting = env[2]
    payload = example_payload(job_id, "example-payload-premium.json")
    await run_job(env, payload, b"echo premium\nexit 1\n", compute)

    assert reporting.state_names(job_id) == ["received", "started", "failed"]
    assert reporting.states[job_id][-1].body["vm_size"] == "premium"
    [insert] = compute.inserts
    assert insert.zone == "us-central1-a"
    assert insert.body["machineType"].endswith("/zones/us-central1-a/machineTypes/n1-standard-4")
    assert insert.body["guestAccelerators"][0]["acceleratorType"].endswith(
        "/zones/us-central1-a/acceleratorTypes/nvidia-tesla-v100"
    )
    assert insert.body["description"] == "Travis CI python test VM"
    assert compute.instances == {}


async def test_vm_that_never_answers_requeues_the_job(env, compute, job_id):
    reporting: Reporting = env[2]
    compute.faults.ssh_never = True
    await run_job(env, example_payload(job_id), b"echo never\n", compute, UPLOAD_RETRIES="3")
    assert reporting.state_names(job_id) == ["received", "reset"]
    assert len(compute.deletes) == 1 and compute.instances == {}


async def test_preempted_vm_requeues_the_job(env, compute, job_id):
    reporting: Reporting = env[2]
    amqp_connection, amqp_vhost_uri, _, build_api, queue_name = env
    build_api.scripts[job_id] = b"echo working\nsleep 30\necho done\n"
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, provider_name="gce")
    async with running_worker(values, gce_environ(compute, PREEMPTIBLE="true")):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "working" in reporting.log_text(job_id), timeout=30)
        await compute.preempt(compute.inserts[0].name)
        await reporting.wait_finished(job_id, timeout=30)
    assert reporting.state_names(job_id) == ["received", "started", "reset"]
    assert "done" not in reporting.log_text(job_id)


async def test_immediate_shutdown_mid_job_resets_it_and_deletes_its_vm(env, compute, job_id):
    """What SIGTERM does to a running job, within the deploy's 30 s before SIGKILL."""
    reporting: Reporting = env[2]
    amqp_connection, amqp_vhost_uri, _, build_api, queue_name = env
    build_api.scripts[job_id] = b"echo working\nsleep 600\necho done\n"
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, provider_name="gce")
    async with running_worker(values, gce_environ(compute)) as app:
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "working" in reporting.log_text(job_id), timeout=30)
        [insert] = compute.inserts
        shutdown_at = time.monotonic()
        app.immediate_shutdown()
        await reporting.wait_finished(job_id, timeout=30)
        await eventually(lambda: compute.instances == {}, timeout=30)
        assert time.monotonic() - shutdown_at < 30
    assert time.monotonic() - shutdown_at < 30  # the worker has exited too
    assert reporting.state_names(job_id) == ["received", "started", "reset"]
    assert reporting.log_closed(job_id) and "done" not in reporting.log_text(job_id)
    assert [delete.name for delete in compute.deletes] == [insert.name]
