"""Deliveries that are not usable jobs: nothing crashes, nothing stays unacked, nothing is
lost (a dead-letter exchange on the queue keeps what was rejected)."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest

from tests.support import rabbit
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker.compat import texts


@pytest.fixture
async def dead_letters(amqp_connection, amqp_vhost_uri, queue_name):
    """A dead-letter exchange for the job queue, set by policy as operators would."""
    vhost = amqp_vhost_uri.rsplit("/", 1)[1]
    rabbit.rabbitmqctl(
        "set_policy", "-p", vhost, f"dlx-{queue_name}", f"^{queue_name}$",
        json.dumps({"dead-letter-exchange": f"{queue_name}.dlx"}), "--apply-to", "queues",
    )  # fmt: skip
    channel = await amqp_connection.channel()
    exchange = await channel.declare_exchange(f"{queue_name}.dlx", aio_pika.ExchangeType.FANOUT)
    queue = await channel.declare_queue(f"{queue_name}.dead", durable=False, auto_delete=True)
    await queue.bind(exchange)
    received: list[bytes] = []

    async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append(message.body)
        await message.ack()

    await queue.consume(keep)
    yield received
    await channel.close()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'["a", "list"]',
        b'{"job": {"id": "12"}}',
        b'{"job": {"number": "1.1"}}',
        b'{"job": {"id": 0}}',
        b'{"job": {"id": 5, "queued_at": "yesterday"}}',
        b"\xff\xfe garbage",
        b'{"job": {"id": 5}, "timeouts": {"hard_limit": 1000000000000000}}',
        b'{"job": {"id": 5}, "timeouts": {"log_silence": -1}}',
        b'{"job": {"id": 5}, "meta": {"state_update_count": -2}}',
    ],
)
async def test_unusable_delivery_is_dead_lettered_and_the_worker_goes_on(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, dead_letters, body
):
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, body)
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
        for _ in range(100):
            if dead_letters:
                break
            await asyncio.sleep(0.05)
    assert dead_letters == [body]
    assert reporting.state_names(job_id) == ["received", "started", "passed"]
    assert await queue_depth(amqp_connection, queue_name) == 0


async def test_job_with_unusable_config_is_errored_with_the_config_text(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    payload = example_payload(job_id, meta={"state_update_count": 3})
    payload["config"]["dist"] = ["not", "a", "string"]
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["errored"]
    assert reporting.log_text(job_id) == texts.JOB_CONFIG_UNPARSABLE
    assert reporting.states[job_id][0].body["meta"]["state_update_count"] == 3
    assert build_api.requests == []
    assert await queue_depth(amqp_connection, queue_name) == 0


async def test_non_utf8_output_becomes_replacement_characters(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = b"#!/bin/bash\nprintf 'ok \\xff\\xfe caf\\xc3\\xa9\\n'\n"
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert reporting.log_text(job_id).endswith("ok \ufffd\ufffd café\n")
    assert reporting.state_names(job_id)[-1] == "passed"
