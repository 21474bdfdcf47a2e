"""Shared plumbing for benchmarks: a private RabbitMQ vhost and an in-process build API."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiohttp import web

AMQP = "amqp://guest:guest@127.0.0.1:5672"


@contextmanager
def private_vhost() -> Iterator[str]:
    name = f"travis-worker-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"{AMQP}/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", name], check=True, capture_output=True)


@asynccontextmanager
async def build_api(script: bytes) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=script, content_type="application/x-sh")

    app = web.Application()
    app.router.add_post("/script", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://bench@127.0.0.1:{runner.addresses[0][1]}/script"
    finally:
        await runner.cleanup()
