"""Growing, shrinking and pausing the pool while jobs run (fake backend, real RabbitMQ)."""

from __future__ import annotations

import asyncio
import logging
import signal

import pytest

from tests.support.worker import example_payload, publish, running_worker, worker_settings
from travis_worker.processor.processor import ProcessorStatus


async def until(predicate, timeout: float = 15.0) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), timeout)


def size_changes(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int, bool]]:
    """(previous, new, paused) of every `pool size changed` line."""
    changes = [
        r.__dict__["fields"] for r in caplog.records if r.getMessage() == "pool size changed"
    ]
    return [(f["previous"], f["pool_size"], f["paused"]) for f in changes]


async def test_sigttin_grows_and_sigttou_really_shrinks(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, caplog
):
    caplog.set_level(logging.INFO, logger="travis_worker.processor.pool")
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, provider_name="fake", pool_size="2"
    )
    environ = {"TRAVIS_WORKER_FAKE_RUN_SLEEP": "1s"}
    async with running_worker(values, environ) as app:
        pool = app.pool
        assert pool is not None and pool.size == 2
        app.handle_signal(signal.SIGTTIN)
        assert pool.expected_size == 3
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "started" in reporting.state_names(job_id))
        busy = [p for p in pool.processors() if p.status == ProcessorStatus.PROCESSING]
        assert len(busy) == 1
        for _ in range(3):
            app.handle_signal(signal.SIGTTOU)
        assert pool.expected_size == 0
        # Idle processors leave at once; the busy one finishes its job first.
        await until(lambda: pool.size == 1)
        assert pool.processors()[0].id == busy[0].id
        await reporting.wait_finished(job_id)
        await until(lambda: pool.size == 0)
        assert reporting.state_names(job_id) == ["received", "started", "passed"]
        assert pool.total_processed == 1
        # Growing again takes jobs again.
        pool.set_size(1)
        await publish(amqp_connection, queue_name, example_payload(job_id + 1))
        await reporting.wait_finished(job_id + 1)
    # One line per change, whoever asked for it.
    assert size_changes(caplog) == [
        (2, 3, False),
        (3, 2, False),
        (2, 1, False),
        (1, 0, False),
        (0, 1, False),
    ]


async def test_sigusr2_pauses_and_resumes(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, caplog
):
    caplog.set_level(logging.INFO, logger="travis_worker.processor.pool")
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, provider_name="fake", pool_size="2"
    )
    async with running_worker(values) as app:
        pool = app.pool
        assert pool is not None
        app.handle_signal(signal.SIGUSR2)
        await until(lambda: pool.size == 0)
        assert pool.paused and not app.ready
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await asyncio.sleep(0.5)
        assert reporting.state_names(job_id) == []
        pool.increment()  # while paused: resumes one bigger
        app.handle_signal(signal.SIGUSR2)
        assert pool.expected_size == 3
        await reporting.wait_finished(job_id)
    said = [r.getMessage() for r in caplog.records]
    assert said.count("pausing pool") == said.count("resuming pool") == 1
    assert size_changes(caplog) == [(2, 3, True)]  # pausing and resuming change no target
