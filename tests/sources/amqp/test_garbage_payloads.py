"""Garbage in, nothing lost: mutated and random deliveries fed to one running worker (real
RabbitMQ, local backend). Every delivery with a usable job id ends exactly once with a state
the hub can act on and a complete log; every other one is dead-lettered; the worker goes on
and leaves nothing unacked."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import strategies as st

from tests.support.garbage import examples, mutated_payloads
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker.compat import texts

PLACEHOLDER_ID = 987_654_321_987
# Parsing in the consumer runs a few dozen frames deep: stay clear of Python's recursion
# limit, so a usable job id is always found (deeper bodies are covered in test_payload*).
MAX_DEPTH = 700
INTAKE_ERRORS = ("An error occurred while reading the job payload: ", texts.JOB_CONFIG_UNPARSABLE)


@pytest.mark.timeout(120)
async def test_every_delivery_ends_once_with_a_state_or_in_the_dead_letters(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, dead_letters
):
    mutated = examples(mutated_payloads(job_id=PLACEHOLDER_ID, max_depth=MAX_DEPTH), 30)
    placeholder = f'"id": {PLACEHOLDER_ID}'.encode()
    jobs = {
        job_id + n: (m, m.body.replace(placeholder, f'"id": {job_id + n}'.encode()))
        for n, m in enumerate(mutated)
    }
    no_id = examples(
        mutated_payloads().filter(lambda m: not m.job_id_usable).map(lambda m: m.body)
        | st.binary(max_size=200),
        10,
    )
    last = job_id + len(jobs)  # a plain job after all the garbage: the worker goes on
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, pool_size="3")
    async with running_worker(settings):
        for n, body in enumerate(b for _, b in jobs.values()):
            await publish(amqp_connection, queue_name, body)
            if n < len(no_id):
                await publish(amqp_connection, queue_name, no_id[n])
        await publish(amqp_connection, queue_name, example_payload(last))
        for one in [*jobs, last]:
            await reporting.wait_finished(one, timeout=60)
        await reporting.wait_for(lambda: len(dead_letters) == len(no_id), timeout=10)
    await asyncio.sleep(0.5)  # anything sent twice would have arrived by now

    for one, (how, body) in jobs.items():
        assert reporting.faults(one) == [], body[:300]
        states = reporting.state_names(one)
        if states == ["errored"]:
            # Errored at intake: only because something it needs was touched, with one line.
            assert not how.must_run, body[:300]
            assert reporting.log_text(one).startswith(INTAKE_ERRORS)
            assert "\n" not in reporting.log_text(one)
        else:
            assert states == ["received", "started", "passed"], body[:300]
    assert reporting.state_names(last) == ["received", "started", "passed"]
    assert sorted(dead_letters) == sorted(no_id)
    assert await queue_depth(amqp_connection, queue_name) == 0
