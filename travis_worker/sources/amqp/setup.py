"""Wiring of the AMQP job source: connections, declarations, publishers and the command
consumer, each closed in reverse order by the caller's exit stack."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass

from travis_worker.sources.amqp.commands import CommandConsumer
from travis_worker.sources.amqp.connection import (
    BrokerConfig,
    connect,
    declare_log_topology,
    declare_topology,
)
from travis_worker.sources.amqp.publishers import LogPartPublisher, StatePublisher
from travis_worker.sources.amqp.queuedepth import DEPTH_INTERVAL_SECONDS, watch_queue_depth
from travis_worker.sources.amqp.source import AmqpJobSource, AmqpSourceConfig
from travis_worker.sources.cancellation import CancellationBroadcaster


@dataclass(frozen=True)
class AmqpSetup:
    jobs_broker: BrokerConfig
    logs_broker: BrokerConfig | None
    """A separate broker for log parts, or None to publish them on the jobs broker."""
    source: AmqpSourceConfig
    sharded_logs: bool = False
    state_update_pool_size: int = 3
    queue_depth_interval: float = DEPTH_INTERVAL_SECONDS


async def open_amqp_source(
    setup: AmqpSetup, broadcaster: CancellationBroadcaster, stack: AsyncExitStack
) -> AmqpJobSource:
    jobs = await connect(setup.jobs_broker)
    stack.push_async_callback(jobs.close)
    await declare_topology(
        jobs,
        queue_name=setup.source.queue_name,
        sharded=setup.sharded_logs,
        with_logs=setup.logs_broker is None,
    )
    logs = jobs
    if setup.logs_broker is not None:
        logs = await connect(setup.logs_broker, name="logs")
        stack.push_async_callback(logs.close)
        channel = await logs.channel()
        await declare_log_topology(channel, sharded=setup.sharded_logs)
        await channel.close()

    state_publisher = StatePublisher(jobs, setup.state_update_pool_size)
    await state_publisher.open()
    stack.push_async_callback(state_publisher.close)
    log_publisher = LogPartPublisher(logs, sharded=setup.sharded_logs)
    await log_publisher.open()
    stack.push_async_callback(log_publisher.close)
    commands = CommandConsumer(jobs, broadcaster)
    await commands.start()
    stack.push_async_callback(commands.close)
    depth = asyncio.create_task(
        watch_queue_depth(jobs, setup.source.queue_name, setup.queue_depth_interval),
        name="job queue depth",
    )
    stack.push_async_callback(_cancelled, depth)
    return AmqpJobSource(jobs, setup.source, state_publisher, log_publisher)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
