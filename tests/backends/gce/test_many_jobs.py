"""100 jobs at once in one worker process on the gce backend: 100 VMs inserted through the
Compute fake, 100 real sshd VMs, each job streaming a line every 100 ms over its own SSH
connection. Every job runs to the end with its complete log, one finish state and one ack,
and no VM is left behind."""

from __future__ import annotations

import logging

import pytest

from tests.backends.gce.conftest import eventually, gce_environ
from tests.support.streaming import run_streaming_jobs, worker_complaints
from tests.support.worker import worker_settings
from travis_worker.util.process import raise_open_files_limit

pytestmark = pytest.mark.usefixtures("root")
JOBS = 100
LINES = 100  # 10 s of output per job
# The fast keys give a VM 2 s to answer SSH, plenty for one; 100 sshd VMs booting at once on
# two cores take longer, so the production defaults apply (5 s per dial, up to 120 s).
PRODUCTION_SSH_BUDGET = {
    "SSH_DIAL_TIMEOUT": "5s",
    "UPLOAD_RETRIES": "120",
    "UPLOAD_RETRY_SLEEP": "1s",
}


@pytest.mark.timeout(240)
async def test_100_streaming_jobs_run_at_once_on_their_own_vms(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, compute, caplog
):
    caplog.set_level(logging.WARNING)
    raise_open_files_limit()  # what `travis-worker` does for itself; here the test is the process
    job_ids = [job_id + number for number in range(JOBS)]
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, provider_name="gce", pool_size=str(JOBS)
    )

    run = await run_streaming_jobs(
        amqp_connection,
        reporting,
        build_api,
        (values, gce_environ(compute, **PRODUCTION_SSH_BUDGET)),
        job_ids,
        lines=LINES,
        timeout=180,
    )

    assert run.problems(LINES) == {}
    # Each job streams for LINES / 10 seconds once all of them run: most of it together.
    assert run.streaming_overlap() > LINES / 20, "the jobs did not all stream at the same time"
    assert (run.ready_while_running, run.consumers_while_running) == (0, JOBS)
    assert (run.ready_after, run.consumers_after) == (0, 0)
    assert len(compute.inserts) == JOBS
    assert sorted(delete.name for delete in compute.deletes) == sorted(
        insert.name for insert in compute.inserts
    )
    await eventually(lambda: compute.instances == {}, timeout=30)
    assert worker_complaints(caplog.records) == []
