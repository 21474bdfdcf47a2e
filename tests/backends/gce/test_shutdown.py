"""The shutdown paths of a real worker process on the gce backend (the Compute fake, sshd
VMs): SIGTERM stops every job within the shutdown timeout even with a slow Compute API;
SIGKILL leaves every delivery to the broker and every VM to maxRunDuration or the reaper."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import pytest

from tests.backends.gce.conftest import eventually
from tests.backends.gce.test_end_to_end import gce_environ
from tests.fakes.compute_api import ComputeFake
from tests.support.rabbit import Reporting
from tests.support.worker import example_payload, publish, queue_depth
from travis_worker.cleanup import cleanup_main
from travis_worker.compat import texts

pytestmark = pytest.mark.usefixtures("root")
JOBS = 90  # a full production pool


async def start_worker(
    amqp_uri: str, queue: str, build_api_url: str, compute: ComputeFake, **settings: str
) -> asyncio.subprocess.Process:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRAVIS_WORKER_")},
        # Ninety sshd VMs booting at once on a small test host take their time.
        **gce_environ(compute, UPLOAD_RETRIES="240", SSH_DIAL_TIMEOUT="10s"),
        "TRAVIS_WORKER_AMQP_URI": amqp_uri,
        "TRAVIS_WORKER_QUEUE_NAME": queue,
        "TRAVIS_WORKER_BUILD_API_URI": build_api_url,
        "TRAVIS_WORKER_PROVIDER_NAME": "gce",
        "TRAVIS_WORKER_INITIAL_SLEEP": "0s",
        **{f"TRAVIS_WORKER_{key.upper()}": value for key, value in settings.items()},
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "travis_worker", env=environ, stderr=asyncio.subprocess.DEVNULL
    )


async def run_jobs(
    amqp_connection: Any,
    reporting: Reporting,
    build_api: Any,
    queue: str,
    job_ids: list[int],
    **payload: Any,
) -> None:
    for each in job_ids:
        build_api.scripts[each] = b"#!/bin/bash\necho started\nsleep 600\n"
        await publish(amqp_connection, queue, example_payload(each, **payload))

    def running() -> list[int]:
        return [each for each in job_ids if "started\r\n" in reporting.log_text(each)]

    try:
        await reporting.wait_for(lambda: len(running()) == len(job_ids), 240)
    except TimeoutError:
        raise AssertionError(
            f"{len(running())} of {len(job_ids)} jobs started; states: "
            f"{sorted({tuple(reporting.state_names(each)) for each in job_ids})}"
        ) from None


@pytest.mark.timeout(420)
async def test_sigterm_with_90_jobs_and_a_slow_api_exits_within_the_timeout(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, compute
):
    job_ids = [job_id + n for n in range(JOBS)]
    worker = await start_worker(amqp_vhost_uri, queue_name, build_api.url, compute, pool_size="90")
    try:
        await run_jobs(amqp_connection, reporting, build_api, queue_name, job_ids)
        compute.faults.delete_answer_delay = 3.0
        compute.faults.delete_delay = 5.0
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(worker.wait(), 60)
        took = time.monotonic() - stopping
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert status == 0
    assert took <= 30.0, f"the worker took {took:.1f} s to stop"
    for each in job_ids:
        assert reporting.state_names(each) == ["received", "started", "reset"]
        reporting.assert_log_whole(each)
        assert reporting.log_text(each).endswith(texts.WORKER_SHUTDOWN)
    assert {d.name for d in compute.deletes} == {i.name for i in compute.inserts}
    await eventually(lambda: compute.instances == {}, timeout=30)
    assert await queue_depth(amqp_connection, queue_name) == 0


async def killed_worker(
    env: tuple[Any, str, Reporting, Any, str],
    compute: ComputeFake,
    job_ids: list[int],
    margin: str,
    **payload: Any,
) -> None:
    """A worker with `job_ids` running, each on its VM, killed with SIGKILL."""
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name = env
    worker = await start_worker(
        amqp_vhost_uri, queue_name, build_api.url, compute,
        pool_size=str(len(job_ids)), gce_max_run_margin=margin,
    )  # fmt: skip
    try:
        await run_jobs(amqp_connection, reporting, build_api, queue_name, job_ids, **payload)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    # The connection died with the process: every delivery is back in the queue.
    async with asyncio.timeout(30):
        while await queue_depth(amqp_connection, queue_name) < len(job_ids):
            await asyncio.sleep(0.2)
    assert all(reporting.state_names(each) == ["received", "started"] for each in job_ids)


@pytest.fixture
def env(amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name):
    return amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name


@pytest.mark.timeout(180)
async def test_sigkill_leaves_deliveries_to_the_broker_and_vms_to_max_run_duration(
    env, job_id, compute
):
    job_ids = [job_id + n for n in range(4)]
    # maxRunDuration = hard timeout + margin: GCE deletes the VMs of a dead worker itself.
    timeouts = {"hard_limit": 10, "log_silence": None}
    await killed_worker(env, compute, job_ids, "5s", timeouts=timeouts)
    killed_at = time.monotonic()
    await eventually(lambda: compute.instances == {}, timeout=30)
    assert sorted(compute.expired) == sorted(i.name for i in compute.inserts)
    assert compute.deletes == [], "nobody deleted them: GCE did"
    assert time.monotonic() - killed_at < 30


@pytest.mark.timeout(180)
async def test_sigkill_without_max_run_duration_leaves_the_vms_to_the_reaper(env, job_id, compute):
    job_ids = [job_id + n for n in range(3)]
    await killed_worker(env, compute, job_ids, "0")
    assert len(compute.instances) == len(job_ids), "with no maxRunDuration the VMs stay up"
    await asyncio.sleep(1.5)  # older than the reaper's max age below
    reaper = {
        "TRAVIS_WORKER_CLEANUP_PROJECT_ID": compute.project,
        "TRAVIS_WORKER_CLEANUP_API_ENDPOINT": compute.endpoint,
    }
    # cleanup_main runs its own event loop, so it gets a thread of its own here.
    status = await asyncio.to_thread(cleanup_main, ["--once", "--instance-max-age", "1s"], reaper)
    assert status == 0
    assert sorted(d.name for d in compute.deletes) == sorted(i.name for i in compute.inserts)
    await eventually(lambda: compute.instances == {}, timeout=30)
