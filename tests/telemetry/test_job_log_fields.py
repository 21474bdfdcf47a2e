"""Every log line of a job carries the job's fields, as the reference deployment's
`journalctl | honeytail` (keyval parser) expects: job_id, repository, uuid, processor,
and instance_id once the instance is up (local backend, real RabbitMQ)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator

import pytest

from tests.support.worker import example_payload, publish, running_worker, worker_settings
from travis_worker.logs import JsonFormatter, LogfmtFormatter, bind, current_context, log_context

PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
JOB_FIELDS = ("job_id", "repository", "uuid", "processor")


def parse_logfmt(line: str) -> dict[str, str]:
    fields = {}
    for key, value in PAIR.findall(line):
        fields[key] = value[1:-1] if value.startswith('"') else value
    return fields


class LineCapture(logging.Handler):
    """Formats each record when it is emitted (in the emitting task's context), as the
    stderr handler of a real worker does."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(LogfmtFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[LineCapture]:
    capture = LineCapture()
    logger = logging.getLogger("travis_worker")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(level)


async def test_every_line_of_a_job_carries_its_fields(
    captured, amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, tmp_path
):
    # A payload filter that prints no JSON (a line before the instance exists) and a
    # backend whose run fails (a requeue line after it exists): a job with things to say.
    payload_filter = tmp_path / "filter.sh"
    payload_filter.write_text("#!/bin/sh\necho not-json\n")
    payload_filter.chmod(0o755)
    values = worker_settings(
        amqp_vhost_uri,
        queue_name,
        build_api.url,
        provider_name="fake",
        payload_filter_executable=str(payload_filter),
    )
    environ = {"TRAVIS_WORKER_FAKE_ERROR": "true"}
    async with running_worker(values, environ) as app:
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
        for _ in range(200):
            if any('msg="finished job"' in line for line in captured.lines):
                break
            await asyncio.sleep(0.01)
        processor_id = app.pool.processors()[0].id if app.pool else ""

    lines = [parse_logfmt(line) for line in captured.lines]
    start = next(n for n, f in enumerate(lines) if f["msg"] == "starting job")
    end = next(n for n, f in enumerate(lines) if f["msg"] == "finished job")
    job_lines = lines[start : end + 1]
    messages = [f["msg"] for f in job_lines]
    assert "payload filter printed no JSON" in messages and "requeueing job" in messages
    uuid = reporting.states[job_id][0].body["meta"]["uuid"]
    expected = {
        "job_id": str(job_id),
        "repository": "igorwwwwwwwwwwwwwwwwwwww/hello-world",
        "uuid": uuid,
        "processor": processor_id,
        "job_path": f"igorwwwwwwwwwwwwwwwwwwww/hello-world/jobs/{job_id}",
    }
    for fields in job_lines:
        assert {key: fields.get(key) for key in expected} == expected, fields
        assert fields["pid"].isdigit()
    # From the moment the instance is up, every line names it; before, none can.
    filtered = messages.index("payload filter printed no JSON")
    assert all("instance_id" not in f for f in job_lines[: filtered + 1])
    requeued = messages.index("requeueing job")
    assert all(f.get("instance_id") == "fake" for f in job_lines[requeued:])
    assert reporting.state_names(job_id) == ["received", "started", "reset"]


def test_json_lines_carry_the_same_context():
    record = logging.LogRecord("travis_worker.x", logging.INFO, __file__, 1, "hi", (), None)
    with log_context(job_id=7, repository="o/r", uuid="u", processor="p"):
        logfmt = LogfmtFormatter().format(record)
        json_line = JsonFormatter().format(record)
    assert "job_id=7 repository=o/r uuid=u processor=p" in logfmt
    assert '"job_id": 7' in json_line and '"processor": "p"' in json_line


async def test_bind_reaches_the_tasks_a_job_started_before_it():
    """A job's log flusher starts before the instance exists; its lines must still name
    the instance once it is bound, and the next job must not inherit it."""
    said: list[dict[str, object]] = []
    with log_context(job_id=1):
        bound = asyncio.Event()

        async def flusher() -> None:
            await bound.wait()
            said.append(current_context())

        task = asyncio.create_task(flusher())
        bind(instance_id="i-1")
        bound.set()
        await task
        assert current_context() == {"job_id": 1, "instance_id": "i-1"}
    assert said == [{"job_id": 1, "instance_id": "i-1"}]
    with log_context(job_id=2):
        assert current_context() == {"job_id": 2}
    assert current_context() == {}
