"""Worker memory: idle, and with a full pool of running jobs.

    .venv/bin/python benchmarks/memory.py [--pool-size 90]

travis-ci/worker runs 90 processors per production host. This starts a worker with that
pool (local backend, real RabbitMQ), measures its resident memory idle, then with every
processor running a job that prints a line every 0.2 s, and reports the growth per job.
The jobs' own processes are not counted: only the worker's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._support import build_api, private_vhost, rss_mb
from travis_worker.app import WorkerApp
from travis_worker.config import load_settings

PAYLOAD = json.loads(
    (Path(__file__).resolve().parents[1] / "examples/example-payload.json").read_text()
)
SCRIPT = b'for i in $(seq 100); do echo "line $i of a busy job"; sleep 0.2; done\n'


async def run(uri: str, pool_size: int) -> None:
    async with build_api(SCRIPT) as api:
        connection = await aio_pika.connect_robust(uri)
        channel = await connection.channel()
        states = await channel.declare_queue("reporting.jobs.builds", durable=True)
        started: set[int] = set()

        async def count(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            body = json.loads(message.body)
            if body["state"] == "started":
                started.add(body["id"])

        await states.consume(count)
        settings = load_settings(
            {"amqp_uri": uri, "queue_name": "builds.bench", "build_api_uri": api,
             "provider_name": "local", "initial_sleep": "0s", "pool_size": str(pool_size)},
            {},
        )  # fmt: skip
        app = WorkerApp(settings, environ={})
        worker = asyncio.create_task(app.run())
        while not app.ready:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)
        idle = rss_mb()
        for number in range(pool_size):
            payload = dict(PAYLOAD, job=dict(PAYLOAD["job"], id=200_000 + number))
            body = json.dumps(payload).encode()
            await channel.default_exchange.publish(aio_pika.Message(body), "builds.bench")
        while len(started) < pool_size:
            await asyncio.sleep(0.1)
        await asyncio.sleep(5)  # every job printing, every log writer flushing
        busy = rss_mb()
        app.immediate_shutdown()
        await worker
        await connection.close()
    print(
        f"pool_size={pool_size} idle_rss_mb={idle:.0f} busy_rss_mb={busy:.0f} "
        f"per_job_kb={(busy - idle) * 1024 / pool_size:.0f}"
    )


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the shutdown's "requeueing job" lines are expected
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-size", type=int, default=90)
    args = parser.parse_args()
    with private_vhost() as uri:
        asyncio.run(run(uri, args.pool_size))


if __name__ == "__main__":
    main()
