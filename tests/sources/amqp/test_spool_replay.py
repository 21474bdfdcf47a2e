"""A worker killed while the broker is down leaves its spool; the next worker started with
the same spool directory publishes it, with the original part numbers and none twice,
before it takes a job, and says how much it replayed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import pytest

from tests.conftest import need
from tests.support import private_rabbit
from tests.support.private_rabbit import PrivateBroker
from tests.support.rabbit import Reporting
from tests.support.worker import example_payload, publish

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    need(private_rabbit.available() is None, private_rabbit.available() or "")
    with private_rabbit.private_broker() as node:
        yield node


@asynccontextmanager
async def worker_process(
    broker: PrivateBroker, queue: str, build_api_url: str, spool_dir: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRAVIS_WORKER_")},
        "TRAVIS_WORKER_AMQP_URI": broker.uri,
        "TRAVIS_WORKER_QUEUE_NAME": queue,
        "TRAVIS_WORKER_BUILD_API_URI": build_api_url,
        "TRAVIS_WORKER_PROVIDER_NAME": "local",
        "TRAVIS_WORKER_POOL_SIZE": "2",
        "TRAVIS_WORKER_INITIAL_SLEEP": "0s",
        "TRAVIS_WORKER_SPOOL_DIR": str(spool_dir),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "travis_worker", env=environ, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def until(condition: object, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.1)


def spooled_lines(spool_dir: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in spool_dir.glob("*/log/*.spool"))


async def test_the_next_worker_publishes_what_a_killed_one_spooled(
    broker: PrivateBroker, build_api, job_id, tmp_path: Path
):
    spool_dir = tmp_path / "spool"
    first_jobs = [job_id, job_id + 1]
    for each in first_jobs:
        build_api.scripts[each] = (
            f'#!/bin/bash\nfor i in $(seq 1 600); do echo "{each} line $i"; sleep 0.1; done\n'
        ).encode()
    connection = await aio_pika.connect_robust(broker.uri, reconnect_interval=1)
    try:
        reporting = await Reporting(connection).start()
        async with worker_process(broker, "builds.first", build_api.url, spool_dir) as first:
            for each in first_jobs:
                await publish(connection, "builds.first", example_payload(each))
            await reporting.wait_for(
                lambda: all("line 5\n" in reporting.log_text(each) for each in first_jobs), 60
            )
            await asyncio.to_thread(broker.stop)
            await until(lambda: spooled_lines(spool_dir) >= 40, 60)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        await asyncio.to_thread(broker.start)
        await asyncio.wait_for(connection.connected.wait(), 30)

        new_job = job_id + 2
        await publish(connection, "builds.second", example_payload(new_job))
        async with worker_process(broker, "builds.second", build_api.url, spool_dir) as second:
            await reporting.wait_finished(new_job, timeout=60)
            second.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            assert second.stderr is not None
            log = (await second.stderr.read()).decode()
    finally:
        await connection.close()

    replayed = re.search(r'msg="replayed the spool of an earlier worker".*log_parts=(\d+)', log)
    assert replayed is not None, log
    assert int(replayed.group(1)) >= 40
    assert log.index("replayed the spool") < log.index('msg="starting job"')
    for each in first_jobs:
        numbers = [part.body["number"] for part in reporting.parts[each]]
        assert sorted(numbers) == list(range(len(numbers))), "a part is missing or went twice"
        printed = [int(n) for n in re.findall(rf"{each} line (\d+)\n", reporting.log_text(each))]
        assert len(printed) >= 45
        assert printed == list(range(1, len(printed) + 1)), "a line is missing or went twice"
    assert reporting.state_names(new_job) == ["received", "started", "passed"]
    assert not any(spool_dir.glob("*/*/*.spool")), "the replayed spool was left behind"
