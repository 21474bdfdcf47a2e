"""What an operator sees of a real worker process (`python -m travis_worker`, local backend,
real RabbitMQ): the start-up lines, a quiet log while idle, the shutdown lines with the
real pool size and how the jobs ended, and the build's version everywhere it is shown."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.worker import example_payload, publish, worker_process, worker_settings
from tests.telemetry.test_job_log_fields import parse_logfmt
from travis_worker.buildinfo import build_info
from travis_worker.util.redact import url_location

pytestmark = pytest.mark.timeout(90)


def first(lines: list[dict[str, str]], message: str) -> tuple[int, dict[str, str]]:
    for number, line in enumerate(lines):
        if line.get("msg") == message:
            return number, line
    raise AssertionError(f"no line {message!r} in {[line.get('msg') for line in lines]}")


async def test_a_real_worker_says_what_it_runs_and_how_its_jobs_ended(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    passing, failing = job_id, job_id + 1
    build_api.scripts[failing] = b"#!/bin/bash\nexit 1\n"
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, pool_size="2")
    async with worker_process(settings) as worker:
        await asyncio.sleep(1.5)  # idle: processors wait, nothing is written per poll
        idle_lines = list(worker.lines)
        for job in (passing, failing):
            await publish(amqp_connection, queue_name, example_payload(job))
        for job in (passing, failing):
            await reporting.wait_finished(job)
        _, body = await worker.get("/worker")
        info = json.loads(body)
        _, scraped = await worker.get("/metrics")
        assert await worker.stop() == 0

    print(worker.log)  # shown when the test fails
    lines = [parse_logfmt(line) for line in worker.lines]
    build = build_info()  # the child runs from the same checkout
    at_start, starting = first(lines, "starting")
    assert starting["provider"] == "local" and starting["queue_type"] == "amqp"
    assert starting["queue"] == queue_name and starting["pool_size"] == "2"
    assert starting["build_api"] == url_location(build_api.url)
    assert (
        starting["amqp"]
        == url_location(amqp_vhost_uri)
        == amqp_vhost_uri.replace("guest:guest@", "")
    )
    assert (starting["version"], starting["revision"]) == (build.version, build.revision)
    at_connected, connected = first(lines, "connected to AMQP")
    assert connected == {**connected, "connection": "jobs", "broker": starting["amqp"]}
    at_started, started = first(lines, "worker started")
    at_consuming, consuming = first(lines, "consuming")
    assert at_start < at_connected < at_started < at_consuming
    assert started["pool_size"] == "2" and consuming["queue"] == queue_name
    assert ":guest@" not in worker.log, "a credential reached the log"
    assert len(idle_lines) <= 6, "an idle worker writes a few lines, not one per poll"
    assert all("level=info" in line for line in idle_lines)

    at_sigint, _ = first(lines, "SIGINT received, starting graceful shutdown")
    at_draining, draining = first(lines, "pool shutting down")
    at_finished, finished = first(lines, "worker finished")
    assert at_sigint < at_draining < at_finished
    assert (draining["pool_size"], draining["graceful"]) == ("2", "true")
    assert finished["pool_size"] == "2" and finished["total_processed"] == "2"
    assert (finished["jobs_passed"], finished["jobs_failed"]) == ("1", "1")
    assert finished["jobs_errored"] == finished["jobs_requeued"] == "0"

    assert build.revision != "unknown" and "?" not in build.revision_url
    fold_line = f"version: v{build.version} {build.source_url}/tree/{build.revision}\n"
    assert fold_line in reporting.log_text(passing)
    assert (info["version"], info["revision"], info["generated"]) == (
        f"v{build.version}",
        build.revision,
        build.generated,
    )
    families = {f.name: f for f in text_string_to_metric_families(scraped.decode())}
    [sample] = families["travis_worker_build_info"].samples
    assert sample.labels == {
        "version": build.version, "revision": build.revision, "generated": build.generated
    }  # fmt: skip


def test_version_names_the_build() -> None:
    build = build_info()
    found = subprocess.run(
        [sys.executable, "-m", "travis_worker", "--version"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert found.stdout.startswith(
        f"travis-worker v={build.version} rev={build.revision} d={build.generated} py="
    )
    assert "?" not in found.stdout
