"""Garbage out: whatever bytes a job prints, at whatever pace, its log parts are valid JSON,
numbered 0..n with one final part, never over 1653 bytes, never split a UTF-8 character,
show invalid bytes as U+FFFD, and stay within the maximum log length (local backend, real
RabbitMQ, the real AMQP log writer)."""

from __future__ import annotations

import pytest

from tests.support.garbage import examples, job_outputs
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker.compat import texts

MAX_LOG_LENGTH = 300_000
WORKER_INFO_END = "travis_fold:end:worker_info\r\033[0K"


def script_printing(path) -> bytes:
    return f"#!/bin/bash\ncat '{path}'\n".encode()


def check_log(reporting, job_id: int, output: bytes) -> None:
    assert reporting.faults(job_id) == []
    log = reporting.log_text(job_id)
    assert len(log.encode()) <= MAX_LOG_LENGTH + len(texts.MAX_LOG_LENGTH)
    printed = log.split(WORKER_INFO_END, 1)[1]
    expected = output.decode(errors="replace")
    if reporting.state_names(job_id)[-1] == "passed":
        assert printed == expected
        return
    # Over the limit: the job errored, and the log is what was printed until then (its last
    # character may be one cut short by the limit) and the limit's text.
    assert reporting.state_names(job_id) == ["received", "started", "errored"]
    assert printed.endswith(texts.MAX_LOG_LENGTH)
    printed = printed.removesuffix(texts.MAX_LOG_LENGTH)
    assert expected.startswith(printed[:-1])


@pytest.mark.timeout(120)
async def test_odd_output_makes_a_sound_log(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, tmp_path
):
    outputs = examples(job_outputs, 12)
    settings = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, max_log_length=str(MAX_LOG_LENGTH)
    )
    for n, output in enumerate(outputs):
        path = tmp_path / f"output-{n}"
        path.write_bytes(output)
        build_api.scripts[job_id + n] = script_printing(path)
    async with running_worker(settings):
        for n in range(len(outputs)):
            await publish(amqp_connection, queue_name, example_payload(job_id + n))
        for n in range(len(outputs)):
            await reporting.wait_finished(job_id + n, timeout=60)
    for n, output in enumerate(outputs):
        check_log(reporting, job_id + n, output)
    assert await queue_depth(amqp_connection, queue_name) == 0


@pytest.mark.parametrize(
    "output",
    [
        b"\xff" * (MAX_LOG_LENGTH - 10_000),  # under the limit as bytes, over it as U+FFFD
        "€".encode() * (MAX_LOG_LENGTH // 3 - 5_000),  # split at every part boundary
        b"\x00\x1b[31m" * 20_000,
    ],
    ids=["invalid-bytes", "euro-signs", "nul-ansi"],
)
async def test_chosen_output_makes_a_sound_log(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, tmp_path, output
):
    path = tmp_path / "output"
    path.write_bytes(output)
    build_api.scripts[job_id] = script_printing(path)
    settings = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, max_log_length=str(MAX_LOG_LENGTH)
    )
    async with running_worker(settings):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id, timeout=30)
    check_log(reporting, job_id, output)


async def test_a_flood_at_full_speed_is_cut_at_the_limit(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = b"#!/bin/bash\nhead -c 50000000 /dev/urandom\necho never\n"
    settings = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, max_log_length=str(MAX_LOG_LENGTH)
    )
    async with running_worker(settings):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id, timeout=30)
    assert reporting.faults(job_id) == []
    assert reporting.state_names(job_id) == ["received", "started", "errored"]
    log = reporting.log_text(job_id)
    assert log.endswith(texts.MAX_LOG_LENGTH) and "never" not in log
    assert len(log.encode()) <= MAX_LOG_LENGTH + len(texts.MAX_LOG_LENGTH)
