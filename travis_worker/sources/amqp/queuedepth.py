"""The job queue's backlog as a metric (travis_worker_job_queue_ready_messages{queue}), so
that "no job finishes while the queue grows" can be alerted on from the workers' own
metrics, without access to the broker's management API.

A passive declare answers with the queue's ready messages; it runs on a channel of its own
every `interval` seconds, and a broker outage only leaves the last value in place.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from travis_worker import metrics

logger = logging.getLogger(__name__)

DEPTH_INTERVAL_SECONDS = 30.0


async def watch_queue_depth(
    connection: AbstractRobustConnection,
    queue_name: str,
    interval: float = DEPTH_INTERVAL_SECONDS,
) -> None:
    """Update the gauge until cancelled."""
    ready = metrics.JOB_QUEUE_READY.labels(queue=queue_name)
    channel: AbstractRobustChannel | None = None
    try:
        while True:
            try:
                if channel is None or channel.is_closed:
                    channel = await connection.channel()
                # robust=False: a robust channel would answer a repeated passive declare
                # from its cache instead of asking the broker.
                queue = await channel.declare_queue(queue_name, passive=True, robust=False)
                ready.set(queue.declaration_result.message_count or 0)
            except (aio_pika.exceptions.AMQPError, OSError, RuntimeError) as exc:
                logger.debug(
                    "couldn't read the job queue's depth", extra={"fields": {"err": str(exc)}}
                )
                channel = None
            await asyncio.sleep(interval)
    finally:
        if channel is not None and not channel.is_closed:
            await asyncio.shield(channel.close())
