"""A real worker (local backend) against the real RabbitMQ and a build API fake: the full
message sequence of each kind of ending, byte-level details included."""

from __future__ import annotations

import json
from typing import Any

from tests.support.rabbit import Reporting
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)

WORKER_INFO_START = "travis_fold:start:worker_info\r\033[0K\033[33;1mWorker information\033[0m\n"


async def run_one(
    amqp_connection: Any,
    amqp_vhost_uri: str,
    reporting: Reporting,
    build_api: Any,
    queue_name: str,
    payload: dict[str, Any],
    script: bytes,
    **settings: str,
) -> None:
    job_id = payload["job"]["id"]
    build_api.scripts[job_id] = script
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, **settings)
    async with running_worker(values):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    assert await queue_depth(amqp_connection, queue_name) == 0, "delivery was not acked"


async def test_example_payload_passes_with_exact_messages(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    payload = example_payload(job_id)
    script = b"#!/bin/bash\necho Hello World\necho '<b>&'\n"
    await run_one(
        amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, payload, script
    )

    states = reporting.states[job_id]
    assert [s.body["state"] for s in states] == ["received", "started", "passed"]
    assert [s.type for s in states] == ["job:test:receive", "job:test:start", "job:test:finish"]
    for count, state in enumerate(states):
        assert state.content_type == "application/json"
        assert state.delivery_mode == 2
        assert state.timestamp is not None
        assert state.routing_key == "reporting.jobs.builds"
        assert state.exchange == ""
        assert state.body["meta"]["state_update_count"] == count
        assert state.body["queued_at"] == "2018-05-14T14:26:50Z"
        assert state.body["meta"]["uuid"]
        # Go marshals the body from a map: keys sorted, compact.
        assert state.raw == json.dumps(state.body, separators=(",", ":"), sort_keys=True).encode()
    assert "instance_id" not in states[0].body["meta"]
    assert states[1].body["meta"]["instance_id"].startswith("local:")
    assert set(states[0].body) == {"id", "state", "meta", "queued_at", "received_at"}
    assert set(states[2].body) == {
        "id", "state", "meta", "queued_at", "received_at", "started_at", "finished_at"
    }  # fmt: skip

    parts = sorted(reporting.parts[job_id], key=lambda p: p.body["number"])
    assert [p.body["number"] for p in parts] == list(range(len(parts)))
    assert [p.body["final"] for p in parts].count(True) == 1 and parts[-1].body["final"]
    assert parts[-1].body["log"] == ""
    for part in parts:
        assert part.type == "job:test:log"
        assert part.delivery_mode == 2
        assert part.exchange == "reporting"
        assert part.routing_key == "reporting.jobs.logs"
        assert part.body["uuid"] == states[0].body["meta"]["uuid"]
        assert list(part.body)[:5] == ["id", "log", "number", "uuid", "final"]
    with_meta = [p for p in parts if "meta" in p.body]
    assert len(with_meta) == 1
    assert with_meta[0].body["meta"] == {
        "queued_at": "2018-05-14T14:26:50Z",
        "repo": "igorwwwwwwwwwwwwwwwwwwww/hello-world",
        "queue": "builds.ec2",
        "infra": "",
    }
    log = reporting.log_text(job_id)
    assert log.startswith(WORKER_INFO_START)
    assert "\nhostname: " in log and "@" in log.split("hostname: ")[1].split("\n")[0]
    assert "(via amqp)\nstartup: 0s\ntravis_fold:end:worker_info\r\033[0K" in log
    assert log.endswith("Hello World\n<b>&\n")
    # Go's encoder escapes HTML characters; so do we, byte for byte.
    assert b"\\u003cb\\u003e\\u0026" in b"".join(p.raw for p in parts)

    request = build_api.requests[-1]
    assert request.headers["Authorization"] == "token the-token"
    assert request.query == {"job_id": str(job_id), "source": "worker"}
    assert request.body["job"]["id"] == job_id
    assert request.body["paranoid"] is False
    assert request.body["cache_settings"]["type"] == "s3"


async def test_failing_script_fails(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    payload = example_payload(job_id)
    await run_one(
        amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, payload, b"exit 1\n"
    )
    assert reporting.state_names(job_id) == ["received", "started", "failed"]


async def test_erroring_script_errors(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    payload = example_payload(job_id)
    await run_one(
        amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, payload, b"exit 86\n"
    )
    assert reporting.state_names(job_id) == ["received", "started", "errored"]
