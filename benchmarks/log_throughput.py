"""Log throughput of one noisy job: bytes from the script to log parts on the broker.

    .venv/bin/python benchmarks/log_throughput.py [--megabytes 100]

The job (local backend) prints N MB as fast as `yes` can; a separate consumer process (as
travis-logs would be) reads `reporting.jobs.logs` until the final part. Reported: MB/s and
parts/s end to end, and the worker's peak RSS (the log buffer must stay bounded however
fast the job prints).
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


async def run(uri: str, megabytes: int) -> None:
    size = megabytes * 1_000_000
    script = f"yes 'a line of build output with some text: 0123456789' | head -c {size}\n".encode()
    async with build_api(script) as api:
        connection = await aio_pika.connect_robust(uri)
        channel = await connection.channel()
        consumer = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--consume", uri, stdout=asyncio.subprocess.PIPE
        )
        assert consumer.stdout is not None
        await consumer.stdout.readline()  # "ready"
        settings = load_settings(
            {"amqp_uri": uri, "queue_name": "builds.bench", "build_api_uri": api,
             "provider_name": "local", "initial_sleep": "0s",
             "max_log_length": str(size * 2)},
            {},
        )  # fmt: skip
        app = WorkerApp(settings, environ={})
        worker = asyncio.create_task(app.run())
        while not app.ready:
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        await channel.default_exchange.publish(
            aio_pika.Message(json.dumps(PAYLOAD).encode()), "builds.bench"
        )
        received = json.loads(await asyncio.wait_for(consumer.stdout.readline(), 900))
        elapsed = time.perf_counter() - started
        await consumer.wait()
        app.graceful_shutdown()
        await worker
        await connection.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    megabytes_received = received["bytes"] / 1_000_000
    print(
        f"megabytes={megabytes_received:.1f} parts={received['parts']} seconds={elapsed:.2f} "
        f"mb_per_second={megabytes_received / elapsed:.2f} "
        f"parts_per_second={received['parts'] / elapsed:.0f} peak_rss_mb={rss_mb:.0f}"
    )


async def consume(uri: str) -> None:
    """The travis-logs side: count parts until the final one, then print the totals."""
    connection = await aio_pika.connect_robust(uri)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)
    exchange = await channel.declare_exchange(
        "reporting", aio_pika.ExchangeType.TOPIC, durable=True
    )
    logs = await channel.declare_queue("reporting.jobs.logs", durable=True)
    await logs.bind(exchange, "reporting.jobs.logs")
    done = asyncio.Event()
    received = {"bytes": 0, "parts": 0}

    async def count(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        part = json.loads(message.body)
        received["bytes"] += len(part["log"].encode())
        received["parts"] += 1
        await message.ack()
        if part["final"]:
            done.set()

    await logs.consume(count)
    print("ready", flush=True)
    await done.wait()
    print(json.dumps(received), flush=True)
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--consume", metavar="AMQP_URI", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        asyncio.run(consume(args.consume))
        return
    with private_vhost() as uri:
        asyncio.run(run(uri, args.megabytes))


if __name__ == "__main__":
    main()
