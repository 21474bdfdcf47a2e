"""A real worker with its services (control endpoint, heartbeat, …), and an HTTP client
that talks to its control endpoint over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from travis_worker.app import WorkerApp
from travis_worker.app.services import Services
from travis_worker.config import load_settings
from travis_worker.remote import ControlServer
from travis_worker.remote.debug import DebugTools

USER, PASSWORD = "admin", "s3cret"
AUTH = (USER, PASSWORD)


@dataclass
class ControlClient:
    url: str
    http: aiohttp.ClientSession

    async def request(
        self, method: str, path: str, *, auth: tuple[str, str] | None = AUTH, **kwargs: Any
    ) -> tuple[int, bytes, aiohttp.ClientResponse]:
        """`auth=(user, password)` sends basic auth; None sends none."""
        headers = dict(kwargs.pop("headers", {}))
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        url = self.url + path
        async with self.http.request(method, url, headers=headers, **kwargs) as response:
            return response.status, await response.read(), response

    async def info(self) -> dict[str, Any]:
        status, body, _ = await self.request("GET", "/worker")
        assert status == 200, body
        return json.loads(body)  # type: ignore[no-any-return]


@dataclass
class RunningWorker:
    app: WorkerApp
    services: Services
    task: asyncio.Task[int]
    client: ControlClient


def control_settings(values: dict[str, str], auth: str = f"{USER}:{PASSWORD}") -> dict[str, str]:
    return {**values, "remote_controller_addr": "127.0.0.1:0", "remote_controller_auth": auth}


@asynccontextmanager
async def running_with_services(
    values: dict[str, str], environ: dict[str, str] | None = None, *, tracing: bool = False
) -> AsyncIterator[RunningWorker]:
    """A worker and its services until the block ends; then drained (if still running)."""
    environ = environ or {}
    app = WorkerApp(load_settings(values, environ), environ=environ, tracing=tracing)
    services = app.services
    task = asyncio.create_task(app.run())
    control = services.control
    for _ in range(400):
        if task.done() or (app.ready and (control is None or control.started.is_set())):
            break
        await asyncio.sleep(0.025)
    if task.done():
        task.result()
    async with aiohttp.ClientSession() as http:
        url = control.url if control is not None and control.bound else ""
        try:
            yield RunningWorker(app, services, task, ControlClient(url, http))
        finally:
            if not task.done():
                app.graceful_shutdown()
            await asyncio.wait_for(task, 60)


@asynccontextmanager
async def control_only(
    auth: str = f"{USER}:{PASSWORD}", tools: DebugTools | None = None
) -> AsyncIterator[ControlClient]:
    """The control endpoint of a worker that has not started (no pool, no broker)."""
    app = WorkerApp(load_settings({"hostname": "test-worker"}, {}), environ={})
    server = ControlServer(app, addresses=[("127.0.0.1", 0)], auth=auth, tools=tools)
    task = asyncio.create_task(server.serve())
    try:
        await asyncio.wait_for(server.started.wait(), 10)
        async with aiohttp.ClientSession() as http:
            yield ControlClient(server.url, http)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Any, timeout: float = 15.0, interval: float = 0.02) -> None:
    """Wait for `predicate()` (sync or async) to be true."""

    async def check() -> bool:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        return bool(result)

    async def loop() -> None:
        while not await check():
            await asyncio.sleep(interval)

    await asyncio.wait_for(loop(), timeout)
