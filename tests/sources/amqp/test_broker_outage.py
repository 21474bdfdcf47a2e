"""The broker drops every connection in the middle of a job, or blocks every publisher: the
worker rides it out, the running job finishes with its whole log, and consumption resumes.
travis-ci/worker exits. The blocked broker is a private node of the test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aio_pika
import pytest

from tests.conftest import need
from tests.support import private_rabbit, rabbit
from tests.support.private_rabbit import PrivateBroker
from tests.support.rabbit import Reporting
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)

pytestmark = pytest.mark.timeout(120)


async def test_connections_closed_mid_job(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = b"#!/bin/bash\necho begin\nsleep 3\necho end\n"
    vhost = amqp_vhost_uri.rsplit("/", 1)[1]
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "begin" in reporting.log_text(job_id))
        await asyncio.to_thread(
            rabbit.rabbitmqctl, "close_all_connections", "-p", vhost, "broker maintenance"
        )
        await reporting.wait_finished(job_id, timeout=60)
        await publish(amqp_connection, queue_name, example_payload(job_id + 1))
        await reporting.wait_finished(job_id + 1, timeout=60)
        # The first job's delivery came back while it ran; it must not run again.
        await asyncio.sleep(1)
    assert reporting.state_names(job_id) == ["received", "started", "passed"]
    assert reporting.log_text(job_id).endswith("begin\nend\n")
    numbers = sorted(p.body["number"] for p in reporting.parts[job_id])
    assert numbers == list(range(len(numbers)))
    assert reporting.state_names(job_id + 1) == ["received", "started", "passed"]
    assert await queue_depth(amqp_connection, queue_name) == 0


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    need(private_rabbit.available() is None, private_rabbit.available() or "")
    with private_rabbit.private_broker() as node:
        yield node


async def test_a_blocked_broker_delays_the_state_but_loses_and_repeats_nothing(
    broker: PrivateBroker, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = b"#!/bin/bash\necho begin\nsleep 2\necho end\n"
    connection = await aio_pika.connect_robust(broker.uri)
    reporting = await Reporting(connection).start()
    try:
        async with running_worker(worker_settings(broker.uri, queue_name, build_api.url)) as app:
            await publish(connection, queue_name, example_payload(job_id))
            await reporting.wait_for(lambda: "begin" in reporting.log_text(job_id))
            # A memory alarm: the broker blocks every publisher, as a real one does.
            broker.ctl("set_vm_memory_high_watermark", "0.0000001")
            try:
                await asyncio.sleep(4)  # the script ends while every publish is blocked
                assert "passed" not in reporting.state_names(job_id)
                assert app.pool is not None and app.pool.total_processed == 0
            finally:
                broker.ctl("set_vm_memory_high_watermark", "0.4")
            await reporting.wait_finished(job_id, timeout=30)
            await publish(connection, queue_name, example_payload(job_id + 1))
            await reporting.wait_finished(job_id + 1, timeout=30)
            await asyncio.sleep(0.5)
        assert reporting.state_names(job_id) == ["received", "started", "passed"]
        numbers = [p.body["number"] for p in reporting.parts[job_id]]
        assert sorted(numbers) == list(range(len(numbers))), "a part went out twice or not at all"
        assert reporting.log_text(job_id).endswith("begin\nend\n")
        assert reporting.state_names(job_id + 1) == ["received", "started", "passed"]
        assert await queue_depth(connection, queue_name) == 0
    finally:
        await connection.close()
