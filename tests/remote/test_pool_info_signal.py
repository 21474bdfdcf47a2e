"""SIGUSR1 writes the pool's state to the log, for operators without the
control endpoint."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from tests.remote.harness import running_with_services, until
from tests.support.worker import worker_settings
from tests.telemetry.test_job_log_fields import LineCapture, parse_logfmt


async def test_sigusr1_logs_pool_info(amqp_vhost_uri, build_api, queue_name):
    capture = LineCapture()
    logger = logging.getLogger("travis_worker.app.worker")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, provider_name="fake", pool_size="2"
    )
    try:
        async with running_with_services(values) as worker:
            await until(lambda: all(p.status == "waiting" for p in worker.app.pool.processors()))
            os.kill(os.getpid(), signal.SIGUSR1)
            await until(lambda: sum("processor info" in line for line in capture.lines) == 2)
            await asyncio.sleep(0)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(logging.NOTSET)
    lines = [parse_logfmt(line) for line in capture.lines]
    [info] = [line for line in lines if line["msg"] == "received SIGUSR1"]
    assert (info["pool_size"], info["total_processed"]) == ("2", "0")
    assert {"version", "revision", "generated", "boot_time", "uptime_min"} <= set(info)
    processors = [line for line in lines if line["msg"] == "processor info"][:2]
    assert [p["n"] for p in processors] == ["0", "1"]
    assert all(p["status"] == "waiting" and p["processed"] == "0" for p in processors)
