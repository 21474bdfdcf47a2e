"""travis-worker-healthcheck (deploy/docker/healthcheck.py), run as the container runs it,
against a real HTTP listener."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.deploy.support import DEPLOY

SCRIPT = DEPLOY / "docker" / "healthcheck.py"


@pytest.fixture
async def control_endpoint() -> AsyncIterator[tuple[int, list[int]]]:
    """A /healthz answering with the status at the head of the returned list."""
    status = [200]

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=status[0], text="OK")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], status
    finally:
        await runner.cleanup()


async def check(*args: str, env: dict[str, str] | None = None) -> int:
    clean = {key: value for key, value in os.environ.items() if "CONTROLLER" not in key}
    clean = {key: value for key, value in clean.items() if "PPROF" not in key}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), *args, env={**clean, **(env or {})},
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await asyncio.wait_for(process.wait(), 15)


async def test_healthy_only_while_healthz_answers_200(
    control_endpoint: tuple[int, list[int]],
) -> None:
    port, status = control_endpoint
    assert await check(f"127.0.0.1:{port}") == 0
    status[0] = 503
    assert await check(f"127.0.0.1:{port}") == 1


async def test_reads_the_workers_own_listen_setting(
    control_endpoint: tuple[int, list[int]],
) -> None:
    port, _ = control_endpoint
    # The image listens on all interfaces; the check probes loopback.
    assert await check(env={"TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR": f"0.0.0.0:{port}"}) == 0
    assert await check(env={"REMOTE_CONTROLLER_ADDR": f":{port}"}) == 0
    assert await check(env={"TRAVIS_WORKER_PPROF_PORT": str(port)}) == 0


async def test_unhealthy_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert await check(f"127.0.0.1:{port}") == 1


async def test_refuses_to_guess_without_an_address() -> None:
    assert await check() != 0
