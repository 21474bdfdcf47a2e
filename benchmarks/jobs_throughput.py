"""Trivial jobs per second through the real RabbitMQ: fake backend, initial-sleep 0.

    .venv/bin/python benchmarks/jobs_throughput.py [--jobs 1000] [--pool-size 20]

Publishes N jobs, runs one worker process's pool on them and counts the `passed` state
updates. Everything but the VM is real: AMQP consumption, build API over HTTP, state
updates, log parts, acks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._support import build_api, private_vhost
from travis_worker.app import WorkerApp
from travis_worker.config import load_settings

PAYLOAD = json.loads(
    (Path(__file__).resolve().parents[1] / "examples/example-payload.json").read_text()
)


async def run(uri: str, jobs: int, pool_size: int) -> None:
    async with build_api(b"echo hi\n") as api:
        connection = await aio_pika.connect_robust(uri)
        channel = await connection.channel()
        await channel.declare_queue("builds.bench", durable=True)
        states = await channel.declare_queue("reporting.jobs.builds", durable=True)
        for number in range(jobs):
            payload = dict(PAYLOAD, job=dict(PAYLOAD["job"], id=100_000 + number))
            body = json.dumps(payload).encode()
            await channel.default_exchange.publish(aio_pika.Message(body), "builds.bench")
        finished = asyncio.Event()
        passed = 0

        async def count(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal passed
            await message.ack()
            if json.loads(message.body)["state"] == "passed":
                passed += 1
                if passed == jobs:
                    finished.set()

        await states.consume(count)
        settings = load_settings(
            {"amqp_uri": uri, "queue_name": "builds.bench", "build_api_uri": api,
             "provider_name": "fake", "initial_sleep": "0s", "pool_size": str(pool_size)},
            {"TRAVIS_WORKER_FAKE_LOG_OUTPUT": "hello from the fake backend\n"},
        )  # fmt: skip
        app = WorkerApp(settings, environ={"TRAVIS_WORKER_FAKE_LOG_OUTPUT": "hello\n"})
        started = time.perf_counter()
        run = asyncio.create_task(app.run())
        await asyncio.wait_for(finished.wait(), 600)
        elapsed = time.perf_counter() - started
        app.graceful_shutdown()
        await run
        await connection.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"jobs={jobs} pool_size={pool_size} seconds={elapsed:.2f} "
          f"jobs_per_second={jobs / elapsed:.1f} peak_rss_mb={rss_mb:.0f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--pool-size", type=int, default=20)
    args = parser.parse_args()
    with private_vhost() as uri:
        asyncio.run(run(uri, args.jobs, args.pool_size))
