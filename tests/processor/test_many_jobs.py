"""300 jobs at once in one worker process (local backend), each streaming a line every
100 ms: every job runs to the end with its complete log, one finish state and one ack."""

from __future__ import annotations

import logging

import pytest

from tests.support.streaming import run_streaming_jobs, worker_complaints
from tests.support.worker import worker_settings
from travis_worker.util.process import raise_open_files_limit

JOBS = 300
LINES = 100  # 10 s of output per job


@pytest.mark.timeout(240)
async def test_300_streaming_jobs_run_at_once_with_complete_logs(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, caplog
):
    caplog.set_level(logging.WARNING)
    raise_open_files_limit()  # what `travis-worker` does for itself; here the test is the process
    job_ids = [job_id + number for number in range(JOBS)]
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, pool_size=str(JOBS))

    run = await run_streaming_jobs(
        amqp_connection, reporting, build_api, (values, {}), job_ids, lines=LINES, timeout=180
    )

    assert run.problems(LINES) == {}
    # Each job streams for LINES / 10 seconds once all of them run: most of it together.
    assert run.streaming_overlap() > LINES / 20, "the jobs did not all stream at the same time"
    assert (run.ready_while_running, run.consumers_while_running) == (0, JOBS)
    # Closing the worker's channels would have put any unacked delivery back in the queue.
    assert (run.ready_after, run.consumers_after) == (0, 0)
    assert worker_complaints(caplog.records) == []
