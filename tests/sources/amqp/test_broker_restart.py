"""The broker stops for a minute while ten jobs stream their logs, then comes back: the jobs
run on, their log parts and states wait in the spool and go out in order with their
original numbers, each delivery is acknowledged once, and no job runs twice.

The broker is a private node of this test (tests/support/private_rabbit.py)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from tests.conftest import need
from tests.support import private_rabbit
from tests.support.private_rabbit import PrivateBroker
from tests.support.rabbit import Reporting
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)

pytestmark = pytest.mark.timeout(300)

OUTAGE_SECONDS = 60
JOBS = 10
LINES = 450  # one every 0.2 s: each job runs about 90 s, through the whole outage


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    need(private_rabbit.available() is None, private_rabbit.available() or "")
    with private_rabbit.private_broker() as node:
        yield node


def script(job_id: int) -> bytes:
    return (
        f'#!/bin/bash\nfor i in $(seq 1 {LINES}); do echo "{job_id} line $i"; sleep 0.2; done\n'
    ).encode()


def expected_log(job_id: int) -> str:
    return "".join(f"{job_id} line {i}\n" for i in range(1, LINES + 1))


def assert_complete(reporting: Reporting, job_id: int) -> None:
    reporting.assert_log_whole(job_id)
    assert reporting.log_text(job_id).endswith(expected_log(job_id))
    assert reporting.state_names(job_id) == ["received", "started", "passed"]


async def test_a_minute_without_broker_loses_and_repeats_nothing(
    broker: PrivateBroker, build_api, queue_name, job_id, tmp_path: Path
):
    spool_dir = tmp_path / "spool"
    job_ids = [job_id + n for n in range(JOBS)]
    for each in job_ids:
        build_api.scripts[each] = script(each)
    values = worker_settings(
        broker.uri, queue_name, build_api.url,
        pool_size=str(JOBS), spool_dir=str(spool_dir), outbox_memory_size="4096",
    )  # fmt: skip
    connection = await aio_pika.connect_robust(broker.uri, reconnect_interval=1)
    try:
        reporting = await Reporting(connection).start()
        async with running_worker(values):
            for each in job_ids:
                await publish(connection, queue_name, example_payload(each))
            await reporting.wait_for(
                lambda: all("line 3\n" in reporting.log_text(each) for each in job_ids), 60
            )
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            # What the broker could not take is on disk, not only in memory.
            assert any(spool_dir.glob("*/log/*.spool")), "nothing was spooled"
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            await asyncio.to_thread(broker.start)
            for each in job_ids:
                await reporting.wait_finished(each, timeout=120)
            await asyncio.sleep(1)  # room for a redelivery to be (wrongly) run again
        for each in job_ids:
            assert_complete(reporting, each)
        assert await queue_depth(connection, queue_name) == 0, "a delivery was never acked"
        assert not any(spool_dir.glob("*/*/*.spool")), "the spool was not emptied"
    finally:
        await connection.close()


async def test_a_full_spool_holds_the_output_back_and_says_so_once(
    broker: PrivateBroker, build_api, queue_name, job_id, tmp_path: Path, caplog
):
    lines = 400  # about 40 kB of output, four times the spool's bound
    build_api.scripts[job_id] = (
        f"#!/bin/bash\nfor i in $(seq 1 {lines}); do printf '%095d\\n' $i; sleep 0.01; done\n"
    ).encode()
    values = worker_settings(
        broker.uri, queue_name, build_api.url,
        spool_dir=str(tmp_path / "spool"), outbox_memory_size="2048", spool_max_size="10000",
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger="travis_worker")
    connection = await aio_pika.connect_robust(broker.uri, reconnect_interval=1)
    try:
        reporting = await Reporting(connection).start()
        async with running_worker(values):
            await publish(connection, queue_name, example_payload(job_id))
            await reporting.wait_for(lambda: bool(reporting.states.get(job_id)), 30)
            await asyncio.to_thread(broker.stop)
            try:
                await asyncio.sleep(8)  # the job prints on into a spool that fills up
                full = [r for r in caplog.records if str(r.msg).startswith("spool is full")]
            finally:
                await asyncio.to_thread(broker.start)
            assert len(full) == 1, "the full spool is reported once"
            await reporting.wait_finished(job_id, timeout=90)
        printed = [int(n) for n in re.findall(r"(\d{95})\n", reporting.log_text(job_id))]
        assert printed == list(range(1, lines + 1)), "output was lost or repeated"
        assert reporting.state_names(job_id) == ["received", "started", "passed"]
    finally:
        await connection.close()
