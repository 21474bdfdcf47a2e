"""Two job sources at once (`queue-type=amqp,file`): every job runs once, and jobs are never
stranded in between when processors stop or pause."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker.job import StartDefaults
from travis_worker.sources.filequeue import FileJobSource
from travis_worker.sources.multisource import MultiSource


def drop_file_job(base, queue: str, name: str, job_id: int) -> None:
    created = base / queue / "10-created.d"
    created.mkdir(parents=True, exist_ok=True)
    (created / f"{name}.json").write_text(json.dumps(example_payload(job_id)))


async def test_one_job_per_call_and_unused_jobs_go_back(tmp_path):
    first = FileJobSource(str(tmp_path), "a", timedelta(seconds=0.05), StartDefaults())
    second = FileJobSource(str(tmp_path), "b", timedelta(seconds=0.05), StartDefaults())
    drop_file_job(tmp_path, "a", "one", 1)
    drop_file_job(tmp_path, "b", "two", 2)
    stream = await MultiSource([first, second]).open_stream()
    job = await stream.next_job()
    assert job is not None
    await stream.close()
    # Only the job taken is claimed; one that arrived with it was handed back.
    claimed = [
        *(tmp_path / "a" / "30-received.d").iterdir(),
        *(tmp_path / "b" / "30-received.d").iterdir(),
    ]
    waiting = [
        *(tmp_path / "a" / "10-created.d").iterdir(),
        *(tmp_path / "b" / "10-created.d").iterdir(),
    ]
    assert [path.name for path in claimed] == [
        "one.json" if job.payload.job.id == 1 else "two.json"
    ]
    assert len(waiting) == 1


async def test_amqp_and_file_jobs_run_once_across_a_pause(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, tmp_path
):
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url,
        queue_type="amqp,file", base_dir=str(tmp_path), file_polling_interval="100ms",
    )  # fmt: skip
    async with running_worker(values) as app:
        await publish(amqp_connection, queue_name, example_payload(job_id))
        drop_file_job(tmp_path, queue_name, "first", job_id + 1)
        await reporting.wait_finished(job_id)
        finished = tmp_path / queue_name / "70-finished.d"
        for _ in range(200):
            if (finished / "first.state").exists():
                break
            await asyncio.sleep(0.05)
        assert (finished / "first.state").read_text() == "passed"

        pool = app.pool
        assert pool is not None
        pool.toggle_pause()
        while pool.size:
            await asyncio.sleep(0.05)
        await publish(amqp_connection, queue_name, example_payload(job_id + 2))
        drop_file_job(tmp_path, queue_name, "second", job_id + 3)
        await asyncio.sleep(0.5)
        assert reporting.state_names(job_id + 2) == []
        assert (tmp_path / queue_name / "10-created.d" / "second.json").exists()
        pool.toggle_pause()
        await reporting.wait_finished(job_id + 2)
        for _ in range(200):
            if (finished / "second.state").exists():
                break
            await asyncio.sleep(0.05)
    assert (finished / "second.state").read_text() == "passed"
    assert reporting.state_names(job_id + 2) == ["received", "started", "passed"]
    assert await queue_depth(amqp_connection, queue_name) == 0
    assert not list((tmp_path / queue_name / "30-received.d").iterdir())
