"""A real worker process and real signals: SIGINT drains, SIGTERM stops now and resets."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tests.support.worker import example_payload, publish, queue_depth

pytestmark = pytest.mark.timeout(90)


async def start_worker_process(amqp_uri: str, queue: str, build_api_url: str, **extra: str):
    env = {
        "PATH": os.environ["PATH"],
        "TRAVIS_WORKER_AMQP_URI": amqp_uri,
        "TRAVIS_WORKER_QUEUE_NAME": queue,
        "TRAVIS_WORKER_BUILD_API_URI": build_api_url,
        "TRAVIS_WORKER_PROVIDER_NAME": "local",
        "TRAVIS_WORKER_INITIAL_SLEEP": "0s",
        **extra,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "travis_worker", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def wait_consuming(connection, queue: str) -> None:
    """Until the worker's consumer is attached to the queue."""
    for _ in range(200):
        # A fresh channel each time: a robust channel answers a repeated declare from cache.
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True, passive=True)
        await channel.close()
        if declared.declaration_result.consumer_count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("worker never consumed")


async def test_sigint_finishes_the_running_job_and_takes_no_new_one(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = b"#!/bin/bash\necho begin\nsleep 2\necho end\n"
    await publish(amqp_connection, queue_name, b"{}")  # declares the queue before the worker
    worker = await start_worker_process(amqp_vhost_uri, queue_name, build_api.url)
    try:
        await wait_consuming(amqp_connection, queue_name)
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "begin" in reporting.log_text(job_id))
        worker.send_signal(signal.SIGINT)
        await asyncio.sleep(0.2)
        await publish(amqp_connection, queue_name, example_payload(job_id + 1))
        output, _ = await asyncio.wait_for(worker.communicate(), 30)
    finally:
        if worker.returncode is None:
            worker.kill()
    assert worker.returncode == 0, output.decode()
    assert reporting.state_names(job_id) == ["received", "started", "passed"]
    assert reporting.log_text(job_id).endswith("begin\nend\n")
    assert reporting.state_names(job_id + 1) == []
    assert await queue_depth(amqp_connection, queue_name) == 1
    assert b"SIGINT received, starting graceful shutdown" in output


async def test_sigterm_stops_the_job_closes_its_log_and_resets_it(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, tmp_path
):
    marker = tmp_path / "still-running"
    build_api.scripts[job_id] = f"#!/bin/bash\necho begin\nsleep 30\ntouch {marker}\n".encode()
    await publish(amqp_connection, queue_name, b"{}")
    worker = await start_worker_process(amqp_vhost_uri, queue_name, build_api.url)
    try:
        await wait_consuming(amqp_connection, queue_name)
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "begin" in reporting.log_text(job_id))
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), 30)
    finally:
        if worker.returncode is None:
            worker.kill()
    assert worker.returncode == 0, output.decode()
    await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "reset"]
    assert reporting.log_closed(job_id)
    assert await queue_depth(amqp_connection, queue_name) == 0
    await asyncio.sleep(0.5)
    assert not marker.exists(), "the script survived the shutdown"
    assert b"SIGTERM received, shutting down immediately" in output
