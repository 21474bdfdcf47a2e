"""Wiring of the AMQP job source: connections, declarations, publishers and the command
consumer, each closed in reverse order by the caller's exit stack."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from travis_worker.sources.amqp.commands import CommandConsumer
from travis_worker.sources.amqp.connection import (
    BrokerConfig,
    connect,
    declare_log_topology,
    declare_topology,
)
from travis_worker.sources.amqp.outbox import Outbox, OutboxLimits, Publish
from travis_worker.sources.amqp.publishers import LogPartPublisher, StatePublisher
from travis_worker.sources.amqp.queuedepth import DEPTH_INTERVAL_SECONDS, watch_queue_depth
from travis_worker.sources.amqp.replay import LOGS, STATES, own_spool_directory, replay_orphans
from travis_worker.sources.amqp.source import AmqpJobSource, AmqpSourceConfig
from travis_worker.sources.amqp.spool import Spool
from travis_worker.sources.cancellation import CancellationBroadcaster


@dataclass(frozen=True)
class AmqpSetup:
    jobs_broker: BrokerConfig
    logs_broker: BrokerConfig | None
    """A separate broker for log parts, or None to publish them on the jobs broker."""
    source: AmqpSourceConfig
    spool_root: Path
    outbox_limits: OutboxLimits = field(default_factory=OutboxLimits)
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
    # What a killed worker could not send goes out before this one takes a job.
    publishers: dict[str, Publish] = {LOGS: log_publisher.publish, STATES: state_publisher.publish}
    await replay_orphans(setup.spool_root, publishers)
    spool_dir = await stack.enter_async_context(own_spool_directory(setup.spool_root))
    states, logs_outbox = (
        Outbox(name, publishers[name], Spool(spool_dir / name), setup.outbox_limits)
        for name in (STATES, LOGS)
    )
    for outbox in (states, logs_outbox):
        outbox.start()
        stack.push_async_callback(outbox.close)
    commands = CommandConsumer(jobs, broadcaster)
    await commands.start()
    stack.push_async_callback(commands.close)
    depth = asyncio.create_task(
        watch_queue_depth(jobs, setup.source.queue_name, setup.queue_depth_interval),
        name="job queue depth",
    )
    stack.push_async_callback(_cancelled, depth)
    return AmqpJobSource(jobs, setup.source, states, logs_outbox)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
