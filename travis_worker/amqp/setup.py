"""Wiring of the AMQP job source from Settings: connections, declarations, publishers and
the command consumer, each closed in reverse order by the caller's exit stack."""

from __future__ import annotations

from contextlib import AsyncExitStack

from travis_worker.amqp.commands import CommandConsumer
from travis_worker.amqp.connection import (
    BrokerConfig,
    connect,
    declare_log_topology,
    declare_topology,
)
from travis_worker.amqp.publishers import LogPartPublisher, StatePublisher
from travis_worker.amqp.source import AmqpJobSource, AmqpSourceConfig
from travis_worker.cancellation import CancellationBroadcaster
from travis_worker.config import Settings
from travis_worker.errors import ConfigError
from travis_worker.job import StartDefaults


async def open_amqp_source(
    settings: Settings,
    broadcaster: CancellationBroadcaster,
    stack: AsyncExitStack,
    defaults: StartDefaults,
) -> AmqpJobSource:
    if not settings.queue_name:
        raise ConfigError("queue-name is not set (TRAVIS_WORKER_QUEUE_NAME)")
    jobs = await connect(
        BrokerConfig(
            settings.amqp_uri,
            settings.amqp_heartbeat,
            settings.amqp_tls_cert,
            settings.amqp_tls_cert_path,
            settings.amqp_insecure,
        )
    )
    stack.push_async_callback(jobs.close)
    separate_logs = bool(settings.logs_amqp_uri)
    await declare_topology(
        jobs,
        queue_name=settings.queue_name,
        sharded=settings.rabbitmq_sharding,
        with_logs=not separate_logs,
    )
    logs = jobs
    if separate_logs:
        logs = await connect(
            BrokerConfig(
                settings.logs_amqp_uri,
                settings.amqp_heartbeat,
                settings.logs_amqp_tls_cert,
                settings.logs_amqp_tls_cert_path,
                settings.amqp_insecure,
            ),
            name="logs",
        )
        stack.push_async_callback(logs.close)
        channel = await logs.channel()
        await declare_log_topology(channel, sharded=settings.rabbitmq_sharding)
        await channel.close()

    state_publisher = StatePublisher(jobs, settings.state_update_pool_size)
    await state_publisher.open()
    stack.push_async_callback(state_publisher.close)
    log_publisher = LogPartPublisher(logs, sharded=settings.rabbitmq_sharding)
    await log_publisher.open()
    stack.push_async_callback(log_publisher.close)
    commands = CommandConsumer(jobs, broadcaster)
    await commands.start()
    stack.push_async_callback(commands.close)

    config = AmqpSourceConfig(
        queue_name=settings.queue_name,
        consumer_priority=settings.amqp_consumer_priority,
        start_defaults=defaults,
    )
    return AmqpJobSource(jobs, config, state_publisher, log_publisher)
