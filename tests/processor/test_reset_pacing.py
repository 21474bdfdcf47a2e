"""A job this worker resets again and again for the same reason comes back after a growing,
bounded pause: it does not bounce between the queue and a worker that cannot run it."""

from __future__ import annotations

import time

import pytest

from tests.support.worker import example_payload, publish, running_worker, worker_settings
from travis_worker.processor.backpressure import ResetPacer


@pytest.mark.timeout(5)
def test_the_pause_doubles_per_reset_in_a_row_and_is_bounded():
    pacer = ResetPacer(first_pause=2, longest_pause=10)
    assert [pacer.pause_before_reset(1, "lost") for _ in range(5)] == [0, 2, 4, 8, 10]
    assert pacer.pause_before_reset(1, "stale_vm") == 0, "another reason starts a new streak"
    assert pacer.pause_before_reset(2, "lost") == 0, "streaks are per job"
    pacer.finished(1)
    assert pacer.pause_before_reset(1, "stale_vm") == 0, "a finished job starts afresh"


@pytest.mark.timeout(5)
def test_it_remembers_a_bounded_number_of_jobs():
    pacer = ResetPacer(remember=3)
    for job in range(10):
        pacer.pause_before_reset(job, "lost")
    assert pacer.pause_before_reset(0, "lost") == 0, "the oldest streaks were forgotten"
    assert pacer.pause_before_reset(9, "lost") > 0


@pytest.mark.timeout(60)
async def test_the_third_reset_in_a_row_waits_longer(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    """The fake backend with ERROR=true loses every instance mid-script (a reset); the test
    plays the hub and queues the job again after each reset."""
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, provider_name="fake")
    took: list[float] = []
    async with running_worker(values, {"TRAVIS_WORKER_FAKE_ERROR": "true"}):
        for attempt in range(3):
            started = time.monotonic()
            await publish(amqp_connection, queue_name, example_payload(job_id))
            await reporting.wait_for(
                lambda n=attempt: reporting.state_names(job_id).count("reset") > n, 30
            )
            took.append(time.monotonic() - started)
    assert took[0] < 1.5
    assert took[1] >= 2.0, "the second reset in a row waits"
    assert took[2] >= 4.0 and took[2] > took[1], "and the third longer"
