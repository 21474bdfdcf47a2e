"""Shared plumbing for benchmarks: a private RabbitMQ vhost, an in-process build API, and
what /proc says about a process."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

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


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int | str = "self") -> float:
    """CPU time (user + system) a process used so far, its own threads only: the children
    it waited for (a worker's job scripts) are not counted."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
