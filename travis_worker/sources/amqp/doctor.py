"""`travis-worker doctor`'s broker checks: each broker answers, and what the worker declares
at start-up can be declared (the job queue, durable; the reporting exchange and queues).

Declaring is what the worker does first anyway, so a check leaves the broker as a worker's
start would. One dial, no retry loop: the doctor's time limit is the judge.
"""

from __future__ import annotations

import aio_pika

from travis_worker.errors import BrokerError
from travis_worker.sources.amqp.connection import (
    BrokerConfig,
    connect,
    declare_log_topology,
    declare_topology,
)
from travis_worker.sources.amqp.setup import AmqpSetup
from travis_worker.util.checks import Check, Finding, fail, ok
from travis_worker.util.redact import redact_url


def broker_checks(setup: AmqpSetup) -> list[Check]:
    """The jobs broker, and the logs broker when log parts go to a separate one."""
    checks = [Check(_subject("broker", setup.jobs_broker), lambda: _check_jobs_broker(setup))]
    logs = setup.logs_broker
    if logs is not None:
        checks.append(Check(_subject("logs broker", logs), lambda: _check_logs_broker(logs, setup)))
    return checks


def _subject(what: str, config: BrokerConfig) -> str:
    return f"{what} {redact_url(config.uri)}"


def _refusal(exc: BrokerError) -> str:
    # The cause says it best ("ACCESS_REFUSED - Login was refused …", "Connect call failed");
    # BrokerError's own text repeats the URI, which the line already names.
    return str(exc.__cause__ or exc)


async def _check_jobs_broker(setup: AmqpSetup) -> list[Finding]:
    subject = _subject("broker", setup.jobs_broker)
    queue = setup.source.queue_name
    try:
        connection = await connect(setup.jobs_broker, attempts=1, name="doctor")
    except BrokerError as exc:
        return [fail(f"{subject} gives no connection: {_refusal(exc)}")]
    try:
        await declare_topology(
            connection,
            queue_name=queue,
            sharded=setup.sharded_logs,
            with_logs=setup.logs_broker is None,
        )
    except aio_pika.exceptions.AMQPError as exc:
        return [fail(f"{subject} answers, but declaring queue {queue} failed: {exc}")]
    finally:
        await connection.close()
    return [ok(f"{subject} answers; queue {queue} declared, and the reporting exchange and queues")]


async def _check_logs_broker(config: BrokerConfig, setup: AmqpSetup) -> list[Finding]:
    subject = _subject("logs broker", config)
    try:
        connection = await connect(config, attempts=1, name="doctor logs")
    except BrokerError as exc:
        return [fail(f"{subject} gives no connection: {_refusal(exc)}")]
    try:
        channel = await connection.channel()
        await declare_log_topology(channel, sharded=setup.sharded_logs)
        await channel.close()
    except aio_pika.exceptions.AMQPError as exc:
        return [fail(f"{subject} answers, but declaring the log-part targets failed: {exc}")]
    finally:
        await connection.close()
    return [ok(f"{subject} answers; log-part targets declared")]
