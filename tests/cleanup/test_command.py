"""`travis-worker cleanup` as the deployment runs it: a process configured by environment,
looping, serving /healthz and /metrics, stopped by a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.cleanup.support import deleted_names, seed
from tests.fakes.compute_api import ComputeFake
from travis_worker.cleanup import cleanup_main

REPO = Path(__file__).resolve().parents[2]
STALE = timedelta(hours=4)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def get(url: str) -> tuple[int, str]:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return 0, ""


@pytest.mark.timeout(60)
async def test_the_command_loops_serves_health_and_metrics_and_stops_on_sigterm(
    compute_fake: ComputeFake,
) -> None:
    seed(compute_fake, "travis-job-first", age=STALE)
    port = free_port()
    env = {
        **os.environ,
        "NO_GCE_CHECK": "True",
        "TRAVIS_WORKER_CLEANUP_PROJECT_ID": compute_fake.project,
        "TRAVIS_WORKER_CLEANUP_API_ENDPOINT": compute_fake.endpoint,
        "TRAVIS_WORKER_CLEANUP_LISTEN_ADDR": f"127.0.0.1:{port}",
        "TRAVIS_WORKER_CLEANUP_LOOP_SLEEP": "200ms",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "travis_worker", "cleanup", cwd=REPO, env=env
    )
    try:

        async def first_deleted() -> bool:
            return "travis-job-first" in deleted_names(compute_fake)

        async def healthy() -> bool:
            return (await get(f"http://127.0.0.1:{port}/healthz"))[0] == 200

        await eventually(first_deleted, "the first pass to delete the stale VM")
        await eventually(healthy, "/healthz to answer 200")

        # The loop goes on: a VM that turns up later is reaped by a later pass.
        seed(compute_fake, "travis-job-later", age=STALE)

        async def later_deleted() -> bool:
            return "travis-job-later" in deleted_names(compute_fake)

        await eventually(later_deleted, "a later pass to delete the new stale VM")
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'travis_worker_cleanup_instances_deleted_total{reason="stale"} 2.0' in text

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cleanup_main_once_dry_run_with_flags(
    compute_fake: ComputeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(compute_fake, "travis-job-stale", age=STALE)
    env = {
        "TRAVIS_WORKER_CLEANUP_PROJECT_ID": compute_fake.project,
        "TRAVIS_WORKER_CLEANUP_API_ENDPOINT": compute_fake.endpoint,
    }

    # cleanup_main runs its own event loop, so it gets a thread of its own here.
    code = await asyncio.to_thread(cleanup_main, ["--once", "--dry-run"], env)

    assert code == 0
    assert compute_fake.count("instances.aggregatedList") == 1
    assert compute_fake.count("instances.delete") == 0


def test_cleanup_main_refuses_a_bad_setting(capsys: pytest.CaptureFixture[str]) -> None:
    code = cleanup_main([], {"TRAVIS_WORKER_CLEANUP_LOOP_SLEEP": "soon"})

    assert code == 2
    assert "TRAVIS_WORKER_CLEANUP_LOOP_SLEEP" in capsys.readouterr().err
