"""Where log parts go: the sharded exchange keyed by job id, or a separate logs broker."""

from __future__ import annotations

import json

import aio_pika
import pytest

from tests.conftest import need
from tests.support import rabbit
from tests.support.rabbit import Reporting
from tests.support.worker import example_payload, publish, running_worker, worker_settings


async def test_sharded_mode_routes_parts_by_job_id(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    channel = await amqp_connection.channel()
    try:
        exchange = await channel.declare_exchange(
            "reporting.jobs.logs_sharded", type="x-modulus-hash", durable=True
        )
    except aio_pika.exceptions.ChannelClosed:
        need(False, "the rabbitmq_sharding plugin is needed (scripts/test enables it)")
    channel = await amqp_connection.channel()
    exchange = await channel.get_exchange("reporting.jobs.logs_sharded")
    shard = await channel.declare_queue("", exclusive=True)
    await shard.bind(exchange, routing_key="1")
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, rabbitmq_sharding="true")
    async with running_worker(values):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id, with_log=False)
        parts: list[aio_pika.abc.AbstractIncomingMessage] = []
        while not parts or not json.loads(parts[-1].body)["final"]:
            message = await shard.get(timeout=5)
            await message.ack()
            if json.loads(message.body)["id"] == job_id:
                parts.append(message)
    assert all(m.routing_key == str(job_id) for m in parts)
    assert all(m.exchange == "reporting.jobs.logs_sharded" for m in parts)
    assert reporting.parts.get(job_id) is None, "nothing went to reporting.jobs.logs"
    await channel.close()


@pytest.fixture
async def logs_vhost_uri(amqp_vhost_uri):
    vhost = rabbit.create_vhost()
    yield amqp_vhost_uri.rsplit("/", 1)[0] + "/" + vhost
    rabbit.delete_vhost(vhost)


async def test_separate_logs_broker_gets_the_parts(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, logs_vhost_uri
):
    logs_connection = await aio_pika.connect_robust(logs_vhost_uri)
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, logs_amqp_uri=logs_vhost_uri
    )
    async with running_worker(values):
        logs = await Reporting(logs_connection).start()
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id, with_log=False)
        await logs.wait_for(lambda: logs.log_closed(job_id))
    assert logs.log_text(job_id).endswith("Hello World\n")
    assert job_id not in reporting.parts
    await logs_connection.close()
