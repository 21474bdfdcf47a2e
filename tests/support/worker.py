"""Running a real WorkerApp inside a test's event loop, and publishing jobs to it."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from travis_worker.app import WorkerApp
from travis_worker.config import load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_payload(
    job_id: int, name: str = "example-payload.json", **changes: Any
) -> dict[str, Any]:
    """The fixture payload with its own job id and top-level keys replaced by `changes`."""
    payload: dict[str, Any] = copy.deepcopy(json.loads((EXAMPLES / name).read_text()))
    payload["job"]["id"] = job_id
    payload.update(changes)
    return payload


async def publish(
    connection: AbstractRobustConnection, queue: str, body: bytes | dict[str, Any]
) -> None:
    """Publish a job as the hub does: persistent, so it outlives a broker restart."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    channel = await connection.channel()
    await channel.declare_queue(queue, durable=True)
    message = aio_pika.Message(raw, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await channel.default_exchange.publish(message, routing_key=queue)
    await channel.close()


async def cancel_job(connection: AbstractRobustConnection, job_id: int, reason: str) -> None:
    channel = await connection.channel()
    exchange = await channel.declare_exchange("worker.commands", aio_pika.ExchangeType.FANOUT)
    command = {"type": "cancel_job", "job_id": job_id, "source": "tests", "reason": reason}
    await exchange.publish(aio_pika.Message(json.dumps(command).encode()), routing_key="")
    await channel.close()


async def queue_depth(connection: AbstractRobustConnection, queue: str) -> int:
    """Messages ready in `queue` (unacked ones are not counted)."""
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, durable=True, passive=True)
    await channel.close()
    return declared.declaration_result.message_count or 0


def worker_settings(
    amqp_uri: str, queue: str, build_api_url: str, **overrides: str
) -> dict[str, str]:
    values = {
        "amqp_uri": amqp_uri,
        "queue_name": queue,
        "build_api_uri": build_api_url,
        "provider_name": "local",
        "initial_sleep": "0s",
        "hostname": "test-worker",
    }
    values.update(overrides)
    return values


@asynccontextmanager
async def running_worker(
    values: dict[str, str], environ: dict[str, str] | None = None
) -> AsyncIterator[WorkerApp]:
    """A worker consuming until the block ends; then drained gracefully."""
    app = WorkerApp(load_settings(values, environ or {}), environ=environ or {}, tracing=False)
    task = asyncio.create_task(app.run())
    for _ in range(200):
        if app.ready or task.done():
            break
        await asyncio.sleep(0.05)
    if task.done():
        task.result()
    try:
        yield app
    finally:
        app.graceful_shutdown()
        await asyncio.wait_for(task, 60)
