"""The job queue's ready messages as a gauge, read from the real broker."""

from __future__ import annotations

import asyncio

from tests.support.worker import example_payload, publish
from travis_worker import metrics
from travis_worker.sources.amqp.queuedepth import watch_queue_depth


async def test_the_gauge_follows_the_queue(amqp_connection, queue_name, job_id):
    ready = metrics.JOB_QUEUE_READY.labels(queue=queue_name)

    async def gauge_reads(value: float) -> None:
        while ready._value.get() != value:
            await asyncio.sleep(0.05)

    for number in range(3):
        await publish(amqp_connection, queue_name, example_payload(job_id + number))
    watching = asyncio.create_task(watch_queue_depth(amqp_connection, queue_name, interval=0.1))
    try:
        await asyncio.wait_for(gauge_reads(3), 10)
        channel = await amqp_connection.channel()
        queue = await channel.get_queue(queue_name)
        await queue.purge()
        await channel.close()
        await asyncio.wait_for(gauge_reads(0), 10)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)


async def test_a_missing_queue_leaves_the_watch_running(amqp_connection, queue_name):
    watching = asyncio.create_task(watch_queue_depth(amqp_connection, queue_name, interval=0.1))
    await asyncio.sleep(0.5)  # each passive declare fails: the queue does not exist yet
    assert not watching.done()
    await publish(amqp_connection, queue_name, b"{}")
    ready = metrics.JOB_QUEUE_READY.labels(queue=queue_name)
    try:
        for _ in range(100):
            if ready._value.get() == 1:
                break
            await asyncio.sleep(0.05)
        assert ready._value.get() == 1
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
