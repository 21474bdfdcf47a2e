"""Running a real worker (a WorkerApp inside a test's event loop, or the command in a process
of its own), and publishing jobs to it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractRobustConnection

from travis_worker.app import WorkerApp
from travis_worker.config import load_settings
from travis_worker.contracts import ScriptGenerator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONTROL_AUTH = ("ops", "pw")


def example_payload(
    job_id: int, name: str = "example-payload.json", **changes: Any
) -> dict[str, Any]:
    """The fixture payload with its own job id and top-level keys replaced by `changes`."""
    payload: dict[str, Any] = copy.deepcopy(json.loads((EXAMPLES / name).read_text()))
    payload["job"]["id"] = job_id
    payload.update(changes)
    return payload


async def publish(
    connection: AbstractRobustConnection, queue: str, *bodies: bytes | dict[str, Any]
) -> None:
    """Publish each body to `queue` as the hub does (persistent, so it outlives a broker
    restart), all at once on one channel, each confirmed."""
    channel = await connection.channel()
    await channel.declare_queue(queue, durable=True)
    await asyncio.gather(
        *(
            channel.default_exchange.publish(
                aio_pika.Message(
                    body if isinstance(body, bytes) else json.dumps(body).encode(),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=queue,
            )
            for body in bodies
        )
    )
    await channel.close()


async def cancel_job(connection: AbstractRobustConnection, job_id: int, reason: str) -> None:
    channel = await connection.channel()
    exchange = await channel.declare_exchange("worker.commands", aio_pika.ExchangeType.FANOUT)
    command = {"type": "cancel_job", "job_id": job_id, "source": "tests", "reason": reason}
    await exchange.publish(aio_pika.Message(json.dumps(command).encode()), routing_key="")
    await channel.close()


async def queue_counts(connection: AbstractRobustConnection, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of `queue`; unacked messages are not counted as ready."""
    # A fresh channel each time: a robust channel answers a repeated declare from its cache.
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, durable=True, passive=True)
    await channel.close()
    result = declared.declaration_result
    return result.message_count or 0, result.consumer_count or 0


async def queue_depth(connection: AbstractRobustConnection, queue: str) -> int:
    """Messages ready in `queue` (unacked ones are not counted)."""
    return (await queue_counts(connection, queue))[0]


async def wait_consumers(
    connection: AbstractRobustConnection, queue: str, count: int, timeout: float = 30.0
) -> None:
    """Until `count` consumers are attached to `queue` (a pool's processors subscribed)."""
    async with asyncio.timeout(timeout):
        while (await queue_counts(connection, queue))[1] < count:
            await asyncio.sleep(0.1)


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
    values: dict[str, str],
    environ: dict[str, str] | None = None,
    scripts: ScriptGenerator | None = None,
) -> AsyncIterator[WorkerApp]:
    """A worker consuming until the block ends; then drained gracefully. `scripts` replaces
    the build API client made from the settings (e.g. one with shorter time limits)."""
    settings = load_settings(values, environ or {})
    app = WorkerApp(settings, environ=environ or {}, scripts=scripts, tracing=False)
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


@dataclass
class WorkerProcess:
    """The real command, `python -m travis_worker`, with its control endpoint at `url`."""

    process: asyncio.subprocess.Process
    url: str
    http: aiohttp.ClientSession
    lines: list[str] = field(default_factory=list)
    """Its log so far, one line each."""

    async def get(self, path: str) -> tuple[int, bytes]:
        headers = {"Authorization": aiohttp.encode_basic_auth(*CONTROL_AUTH)}
        async with self.http.get(self.url + path, headers=headers) as response:
            return response.status, await response.read()

    async def stop(self) -> int:
        """SIGINT, as the container's stop does; the exit status."""
        self.process.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.process.wait(), 30)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def worker_process(settings: dict[str, str]) -> AsyncIterator[WorkerProcess]:
    """The command with `settings` (as TRAVIS_WORKER_* variables) once `/ready` answers 200;
    killed at the end of the block if still running."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRAVIS_WORKER_")}
    environ.update({f"TRAVIS_WORKER_{key.upper()}": value for key, value in settings.items()})
    environ["TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR"] = f":{port}"
    environ["TRAVIS_WORKER_REMOTE_CONTROLLER_AUTH"] = ":".join(CONTROL_AUTH)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "travis_worker", env=environ, stderr=asyncio.subprocess.PIPE
    )
    async with aiohttp.ClientSession() as http:
        worker = WorkerProcess(process, f"http://127.0.0.1:{port}", http)

        async def read_log() -> None:
            assert process.stderr is not None
            async for line in process.stderr:
                worker.lines.append(line.decode().rstrip("\n"))

        reading = asyncio.create_task(read_log())
        try:
            for _ in range(300):
                assert process.returncode is None, "the worker exited early:\n" + worker.log
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{worker.url}/ready") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.05)
            yield worker
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await asyncio.wait_for(reading, 10)
