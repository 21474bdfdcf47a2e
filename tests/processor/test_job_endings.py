"""Every way a job can end other than by its exit code, with the texts users see."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.support.worker import (
    cancel_job,
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker.compat import texts

SLEEPER = b"#!/bin/bash\necho started\nsleep 30\necho never\n"


async def test_cancel_command_cancels_the_running_job(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = SLEEPER
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "started" in reporting.log_text(job_id))
        await cancel_job(amqp_connection, job_id, "cancelled by a user")
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "cancelled"]
    log = reporting.log_text(job_id)
    assert log.endswith("started\n\n\nDone: Job Cancelled\n\ncancelled by a user")
    assert "never" not in log
    assert await queue_depth(amqp_connection, queue_name) == 0


async def test_hard_timeout_errors_with_the_time_limit_text(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = SLEEPER
    payload = example_payload(job_id, timeouts={"hard_limit": 1, "log_silence": None})
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "errored"]
    assert reporting.log_text(job_id).endswith("started\n" + texts.HARD_TIMEOUT)


async def test_log_silence_errors_with_the_stalled_build_text(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = SLEEPER
    payload = example_payload(job_id, timeouts={"hard_limit": 0, "log_silence": 1})
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "errored"]
    log = reporting.log_text(job_id)
    assert log.endswith(texts.log_silence(timedelta(seconds=1)))
    assert "No output has been received in the last 1s, this potentially" in log


async def test_log_silence_setting_is_printed_as_a_go_duration(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = SLEEPER
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, log_timeout="1.5s")
    async with running_worker(settings):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert "No output has been received in the last 1.5s," in reporting.log_text(job_id)


async def test_max_log_length_errors_and_stops_the_script(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = b"#!/bin/bash\nwhile true; do echo 0123456789; done\n"
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, max_log_length="20000")
    async with running_worker(settings):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "errored"]
    log = reporting.log_text(job_id)
    assert log.endswith(texts.MAX_LOG_LENGTH)
    assert len(log.encode()) <= 20000 + len(texts.MAX_LOG_LENGTH)


async def test_build_api_client_error_errors_the_job_at_once(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.failures.append((400, "bad payload"))
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["errored"]
    assert reporting.log_text(job_id) == texts.SCRIPT_GENERATION_FAILED
    assert len(build_api.requests) == 1
    finished = reporting.states[job_id][0].body
    assert finished["received_at"] == finished["started_at"] == finished["finished_at"]


async def test_build_api_server_errors_are_retried(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.failures.extend([(500, "boom"), (503, "busy")])
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "passed"]
    assert len(build_api.requests) == 3


async def test_backend_failure_requeues(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, provider_name="fake")
    async with running_worker(settings, environ={"TRAVIS_WORKER_FAKE_ERROR": "true"}):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "reset"]
    assert reporting.states[job_id][-1].type == "job:test:reset"
    assert await queue_depth(amqp_connection, queue_name) == 0


async def test_state_update_count_continues_from_the_payload(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    payload = example_payload(job_id, meta={"state_update_count": 7}, trace=True)
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    bodies = [s.body for s in reporting.states[job_id]]
    assert [b["meta"]["state_update_count"] for b in bodies] == [7, 8, 9]
    assert all(b["trace"] is True for b in bodies)


async def test_jobs_queued_together_all_run_once(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    ids = [job_id + n for n in range(6)]
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, pool_size="3")
    async with running_worker(settings):
        for one in ids:
            await publish(amqp_connection, queue_name, example_payload(one))
        await asyncio.gather(*(reporting.wait_finished(one) for one in ids))
    for one in ids:
        assert reporting.state_names(one) == ["received", "started", "passed"]
