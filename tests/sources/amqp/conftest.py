"""Plumbing shared by the AMQP source tests."""

from __future__ import annotations

import json

import aio_pika
import pytest

from tests.support import rabbit


@pytest.fixture
async def dead_letters(amqp_connection, amqp_vhost_uri, queue_name):
    """A dead-letter exchange for the job queue, set by policy as operators would; the
    bodies it receives, in order."""
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
