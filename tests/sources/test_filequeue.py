"""The file job queue: payload files moving through their directories."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.support.worker import example_payload
from travis_worker.job import FinishState, StartDefaults
from travis_worker.sources.filequeue import FileJobSource


async def test_file_queue_moves_jobs_through_its_directories(tmp_path):
    source = FileJobSource(str(tmp_path), "builds", timedelta(seconds=0.05), StartDefaults())
    created = tmp_path / "builds" / "10-created.d"
    (created / "a.json").write_text(json.dumps(example_payload(11)))
    (created / "b.json").write_text("{broken")
    (created / "c.json").write_text(json.dumps(example_payload(12, timeouts="forever")))
    stream = await source.open_stream()
    job = await stream.next_job()
    assert job is not None and job.payload.job.id == 11
    assert (tmp_path / "builds" / "30-received.d" / "a.json").exists()
    await job.started()
    log = await job.open_log()
    await log.write(b"hello\n")
    await log.close()
    await job.finish(FinishState.PASSED)
    finished = tmp_path / "builds" / "70-finished.d"
    assert (finished / "a.json").exists()
    assert (finished / "a.state").read_text() == "passed"
    assert (tmp_path / "builds" / "log" / "a.log").read_bytes() == b"hello\n"
    assert (created / "b.json").exists(), "unparsable files stay where they are"
    assert (created / "c.json").exists(), "so do jobs with values their run cannot use"
    assert source.claim_next() is None


async def test_file_queue_requeue_puts_the_job_back(tmp_path):
    source = FileJobSource(str(tmp_path), "q", timedelta(seconds=0.05), StartDefaults())
    (tmp_path / "q" / "10-created.d" / "j.json").write_text(json.dumps(example_payload(12)))
    job = source.claim_next()
    assert job is not None
    await job.requeue()
    assert (tmp_path / "q" / "10-created.d" / "j.json").exists()
