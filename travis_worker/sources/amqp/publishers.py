"""Publishing state updates and log parts, with the exact AMQP properties of
travis-ci/worker (`amqp_job.go`, `amqp_log_writer.go`).

Both publishers raise PublishError when the broker did not take a message, and never drop
it themselves: the outbox (outbox.py) keeps it and retries in order, which is how a broker
outage is ridden out without losing or reordering anything.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from travis_worker import metrics
from travis_worker.errors import WorkerError
from travis_worker.sources.amqp.connection import (
    LOGS_QUEUE,
    REPORTING_EXCHANGE,
    SHARDED_LOGS_EXCHANGE,
    STATE_UPDATES_QUEUE,
)
from travis_worker.sources.amqp.spool import Message

# A publish waits for the broker's confirm as long as the connection lives: a broker that
# is blocked (memory or disk alarm) confirms late, and a message re-sent after a timeout
# would arrive twice. A dead connection fails the wait, and only then is a message re-sent.
PUBLISH_TIMEOUT = None


class PublishError(WorkerError):
    """The broker did not confirm a message."""


def _message(body: bytes, event_type: str) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=datetime.now(UTC),
        type=event_type,
    )


async def _publish(exchange: AbstractExchange, message: aio_pika.Message, routing_key: str) -> None:
    try:
        await exchange.publish(message, routing_key, mandatory=False, timeout=PUBLISH_TIMEOUT)
    except (aio_pika.exceptions.AMQPError, OSError, RuntimeError) as exc:
        raise PublishError(f"publish to {routing_key!r} failed: {exc!r}") from exc


class StatePublisher:
    """State updates to `reporting.jobs.builds` through the default exchange, spread over
    `state-update-pool-size` channels (each with publisher confirms). A job's updates always
    take the same channel, so they reach the queue in the order they were sent."""

    def __init__(self, connection: AbstractRobustConnection, pool_size: int) -> None:
        self._connection = connection
        self._pool_size = pool_size
        self._channels: list[AbstractChannel] = []

    async def open(self) -> None:
        self._channels = [await self._connection.channel() for _ in range(self._pool_size)]

    async def publish(self, message: Message) -> None:
        channel = self._channels[message.job_id % self._pool_size]
        await _publish(
            channel.default_exchange,
            _message(message.body, message.event_type),
            STATE_UPDATES_QUEUE,
        )

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels))


class LogPartPublisher:
    """Log parts to `reporting` / `reporting.jobs.logs`, or to the sharded exchange keyed by
    job id. One channel serves every job: each job awaits its parts one by one, so its
    parts arrive in order."""

    def __init__(self, connection: AbstractRobustConnection, *, sharded: bool) -> None:
        self._connection = connection
        self._sharded = sharded
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def open(self) -> None:
        self._channel = await self._connection.channel()
        name = SHARDED_LOGS_EXCHANGE if self._sharded else REPORTING_EXCHANGE
        self._exchange = await self._channel.get_exchange(name, ensure=False)

    async def publish(self, message: Message) -> None:
        if self._exchange is None:
            raise PublishError("log publisher is not open")
        routing_key = str(message.job_id) if self._sharded else LOGS_QUEUE
        await _publish(self._exchange, _message(message.body, message.event_type), routing_key)
        metrics.LOG_PARTS.inc()

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
