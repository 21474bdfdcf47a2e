"""Broker connections and the declarations travis-ci/worker makes at start-up (`amqp_job_queue.go`).

Connections are aio-pika robust connections: when the broker closes them or restarts, they
reconnect with backoff and restore channels, QoS and consumers, and the process keeps
running (travis-ci/worker exits instead).
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection, ExchangeType

from travis_worker import metrics
from travis_worker.errors import BrokerError
from travis_worker.util.backoff import Backoff, retry
from travis_worker.util.redact import redact_url, url_location

logger = logging.getLogger(__name__)

REPORTING_EXCHANGE = "reporting"
STATE_UPDATES_QUEUE = "reporting.jobs.builds"
LOGS_QUEUE = "reporting.jobs.logs"
SHARDED_LOGS_EXCHANGE = "reporting.jobs.logs_sharded"
COMMANDS_EXCHANGE = "worker.commands"
# Reconnect pacing of the robust connection; the broker usually returns within seconds.
RECONNECT_INTERVAL = 2.0


@dataclass(frozen=True)
class BrokerConfig:
    uri: str
    heartbeat: timedelta = timedelta(seconds=10)
    tls_cert: str = ""
    tls_cert_path: str = ""
    insecure: bool = False


def tls_context(config: BrokerConfig) -> ssl.SSLContext | None:
    """The TLS choice of travis-ci/worker: own CA certs, else unverified if insecure, else None
    (plain, or the library's default TLS for `amqps://`)."""
    if config.tls_cert or config.tls_cert_path:
        context = ssl.create_default_context(cadata=config.tls_cert or None)
        if config.tls_cert_path:
            context.load_verify_locations(cafile=config.tls_cert_path)
        return context
    if config.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return None


def dial_url(uri: str, context: ssl.SSLContext | None) -> str:
    """The URI to dial. With a TLS context an `amqp://` URI is dialled with TLS on its own
    port (5672 unless given), as travis-ci/worker does whenever CA certificates are set."""
    parts = urlsplit(uri)
    if context is None or parts.scheme != "amqp":
        return uri
    userinfo, at, _ = parts.netloc.rpartition("@")
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    netloc = f"{userinfo}{at}{host}:{parts.port or 5672}"
    return urlunsplit(parts._replace(scheme="amqps", netloc=netloc))


async def connect(
    config: BrokerConfig, *, attempts: int = 30, name: str = "jobs"
) -> AbstractRobustConnection:
    """Connect, retrying while the broker is not up yet (a host booting with its broker).
    Raises BrokerError when it never answers."""
    context = tls_context(config)

    async def dial() -> AbstractRobustConnection:
        return await aio_pika.connect_robust(
            dial_url(config.uri, context),
            ssl_context=context,
            heartbeat=max(1, int(config.heartbeat.total_seconds())),
            reconnect_interval=RECONNECT_INTERVAL,
            client_properties={"connection_name": f"travis-worker {name}"},
        )

    def log_retry(error: Exception, pause: float) -> None:
        fields = {"connection": name, "err": str(error), "retry_in": round(pause, 2)}
        logger.warning("amqp connection failed, retrying", extra={"fields": fields})

    try:
        connection = await retry(
            dial,
            retry_on=(OSError, aio_pika.exceptions.AMQPError),
            backoff=Backoff(initial=0.5, multiplier=2),
            attempts=attempts,
            on_retry=log_retry,
        )
    except (OSError, aio_pika.exceptions.AMQPError) as exc:
        where = redact_url(config.uri)
        raise BrokerError(f"couldn't connect to the {name} broker at {where}: {exc}") from exc
    fields = {"connection": name, "broker": url_location(config.uri)}
    logger.info("connected to AMQP", extra={"fields": fields})
    watch_reconnects(connection, name)
    return connection


def watch_reconnects(connection: AbstractRobustConnection, name: str) -> None:
    """Log a lost connection once and its return with how long it was down, and count the
    reconnects (travis_worker_amqp_reconnects_total)."""
    lost_at: float | None = None

    def on_close(_: object, error: BaseException | None) -> None:
        nonlocal lost_at
        # Our own close at shutdown is no loss; nor is each failed attempt of one outage.
        if connection.close_called or lost_at is not None:
            return
        lost_at = time.monotonic()
        fields = {"connection": name, "err": str(error) or type(error).__name__}
        logger.warning("lost the AMQP connection, reconnecting", extra={"fields": fields})

    def on_reconnect(_: object) -> None:
        nonlocal lost_at
        down = time.monotonic() - lost_at if lost_at is not None else 0.0
        lost_at = None
        metrics.AMQP_RECONNECTS.labels(connection=name).inc()
        fields = {"connection": name, "after_seconds": round(down, 1)}
        logger.info("reconnected to AMQP", extra={"fields": fields})

    connection.close_callbacks.add(on_close)
    connection.reconnect_callbacks.add(on_reconnect)


async def declare_log_topology(channel: AbstractChannel, *, sharded: bool) -> None:
    """The log-part targets: a sharded exchange, or `reporting.jobs.logs` bound to `reporting`.

    `reporting` is declared here too (travis-ci/worker expects it to exist already on a
    separate logs broker, and fails to bind when it does not)."""
    if sharded:
        await channel.declare_exchange(
            SHARDED_LOGS_EXCHANGE, type="x-modulus-hash", durable=True, auto_delete=False
        )
        return
    await channel.declare_exchange(
        REPORTING_EXCHANGE, ExchangeType.TOPIC, durable=True, auto_delete=False
    )
    queue = await channel.declare_queue(LOGS_QUEUE, durable=True, auto_delete=False)
    await queue.bind(REPORTING_EXCHANGE, routing_key=LOGS_QUEUE)


async def declare_topology(
    connection: AbstractRobustConnection, *, queue_name: str, sharded: bool, with_logs: bool
) -> None:
    """travis-ci/worker's declarations: the job queue, `reporting`, `reporting.jobs.builds`
    and (unless a separate logs broker is used) the log-part targets, on one temporary
    channel."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(queue_name, durable=True, auto_delete=False)
        await channel.declare_exchange(
            REPORTING_EXCHANGE, ExchangeType.TOPIC, durable=True, auto_delete=False
        )
        await channel.declare_queue(STATE_UPDATES_QUEUE, durable=True, auto_delete=False)
        if with_logs:
            await declare_log_topology(channel, sharded=sharded)
    finally:
        await channel.close()
