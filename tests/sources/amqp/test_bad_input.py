"""Deliveries that are not usable jobs: nothing crashes, nothing stays unacked, nothing is
lost (a dead-letter exchange on the queue keeps what was rejected), and every delivery with a
usable job id ends with a state."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker.compat import texts


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'["a", "list"]',
        b'{"job": {"id": "12"}}',
        b'{"job": {"number": "1.1"}}',
        b'{"job": {"id": 0}}',
        b'{"job": {"id": 5.0}}',
        b"\xff\xfe garbage",
        b'{"job": {"id": 5}, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
async def test_unusable_delivery_is_dead_lettered_and_the_worker_goes_on(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, dead_letters, body
):
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, body)
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
        for _ in range(100):
            if dead_letters:
                break
            await asyncio.sleep(0.05)
    assert dead_letters == [body]
    assert reporting.state_names(job_id) == ["received", "started", "passed"]
    assert await queue_depth(amqp_connection, queue_name) == 0


async def test_job_with_unusable_config_is_errored_with_the_config_text(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    payload = example_payload(job_id, meta={"state_update_count": 3})
    payload["config"]["dist"] = ["not", "a", "string"]
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["errored"]
    assert reporting.log_text(job_id) == texts.JOB_CONFIG_UNPARSABLE
    assert reporting.states[job_id][0].body["meta"]["state_update_count"] == 3
    assert build_api.requests == []
    assert await queue_depth(amqp_connection, queue_name) == 0


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        (
            {"timeouts": {"hard_limit": -1, "log_silence": None}},
            "timeouts.hard_limit must be at least 0 (got -1)",
        ),
        ({"timeouts": "50m"}, 'timeouts must be an object (got "50m")'),
        ({"vm_size": 2}, "vm_size must be a string (got 2)"),
        (
            {"vm_config": {"zone": "z" * 10**6}},
            'vm_config.zone must be at most 255 characters long (got "'
            + "z" * 40
            + '…" (1000000 characters))',
        ),
    ],
)
async def test_job_with_a_value_its_run_needs_but_cannot_use_is_errored_naming_it(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, changes, line
):
    payload = example_payload(job_id, meta={"state_update_count": 3}, **changes)
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    assert reporting.faults(job_id) == []
    assert reporting.state_names(job_id) == ["errored"]
    assert reporting.log_text(job_id) == texts.payload_unusable([line])
    assert reporting.log_text(job_id) == (
        f"An error occurred while reading the job payload: {line}. The job was not run."
    )
    finished = reporting.states[job_id][0]
    assert finished.type == "job:test:finish"
    assert finished.body["meta"]["state_update_count"] == 3
    assert finished.body["received_at"] == finished.body["started_at"]
    assert finished.body["started_at"] == finished.body["finished_at"]
    assert build_api.requests == []
    assert await queue_depth(amqp_connection, queue_name) == 0


async def test_job_with_wrong_values_that_only_decorate_it_runs(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    payload = example_payload(
        job_id,
        repository={"id": "one", "slug": ["o", "r"]},
        uuid=12,
        queue={"name": "builds"},
        trace="yes",
        meta={"state_update_count": -2},
    )
    payload["job"]["queued_at"] = "yesterday"
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, payload)
        await reporting.wait_finished(job_id)
    assert reporting.faults(job_id) == []
    assert reporting.state_names(job_id) == ["received", "started", "passed"]
    first = reporting.states[job_id][0].body
    assert first["meta"]["state_update_count"] == 0 and "queued_at" not in first
    assert "trace" not in first and len(first["meta"]["uuid"]) == 36
    # The build API still gets the payload as it came.
    assert build_api.requests[0].body["repository"] == {"id": "one", "slug": ["o", "r"]}


async def test_non_utf8_output_becomes_replacement_characters(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    build_api.scripts[job_id] = b"#!/bin/bash\nprintf 'ok \\xff\\xfe caf\\xc3\\xa9\\n'\n"
    async with running_worker(worker_settings(amqp_vhost_uri, queue_name, build_api.url)):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert reporting.log_text(job_id).endswith("ok \ufffd\ufffd café\n")
    assert reporting.state_names(job_id)[-1] == "passed"
