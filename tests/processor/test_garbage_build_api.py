"""Build API garbage through a running worker: whatever the build API answers (errors,
garbage, huge, gzipped, slow or cut-off bodies, pages echoing the request), each job ends
with a state the hub can act on and the worker goes on (local backend, real RabbitMQ)."""

from __future__ import annotations

import dataclasses
from collections import deque
from datetime import timedelta

import pytest
from hypothesis import strategies as st

from tests.support.garbage import answer_sequences, build_outcome, examples
from tests.support.worker import (
    example_payload,
    publish,
    queue_depth,
    running_worker,
    worker_settings,
)
from travis_worker.buildscript.api import BuildApiClient, BuildApiConfig
from travis_worker.compat import texts
from travis_worker.util.backoff import Backoff

# A script that runs is this one: random bytes are not run through bash on this machine.
SAFE_SCRIPT = b"#!/bin/bash\necho garbage survived\n"
MAX_SCRIPT_BYTES = 1024 * 1024


def runnable_bodies_made_safe(answers):
    """The answers, with every body that might be run replaced by SAFE_SCRIPT."""
    return [
        dataclasses.replace(a, body=SAFE_SCRIPT) if 0 < len(a.body) <= MAX_SCRIPT_BYTES else a
        for a in answers
    ]


@pytest.mark.timeout(120)
async def test_every_job_ends_with_a_state_whatever_the_build_api_answers(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    # The worker's jobs share the loop with the fake: time limits with room to spare.
    sequences = examples(answer_sequences(st.just(b"x" * 100), slow=2.0), 12)
    sequences = [runnable_bodies_made_safe(answers) for answers in sequences]
    for n, answers in enumerate(sequences):
        build_api.answers[job_id + n] = deque(answers)
    config = BuildApiConfig(
        uri=build_api.url,
        retry_for=timedelta(seconds=10),
        request_timeout=timedelta(seconds=1.5),
        max_script_bytes=MAX_SCRIPT_BYTES,
    )
    client = BuildApiClient(config, Backoff(initial=0.01, max_interval=0.05))
    settings = worker_settings(amqp_vhost_uri, queue_name, build_api.url, pool_size="3")
    last = job_id + len(sequences)  # after all of them, a plain job: the worker goes on
    try:
        async with running_worker(settings, scripts=client):
            for n in range(len(sequences)):
                await publish(amqp_connection, queue_name, example_payload(job_id + n))
            await publish(amqp_connection, queue_name, example_payload(last))
            for one in range(job_id, last + 1):
                await reporting.wait_finished(one, timeout=60)
    finally:
        await client.close()
    for n, answers in enumerate(sequences):
        one = job_id + n
        assert reporting.faults(one) == [], answers
        if build_outcome(answers, MAX_SCRIPT_BYTES) == "errored":
            assert reporting.state_names(one) == ["errored"], answers
            assert reporting.log_text(one) == texts.SCRIPT_GENERATION_FAILED
        else:
            assert reporting.state_names(one) == ["received", "started", "passed"], answers
    assert reporting.state_names(last) == ["received", "started", "passed"]
    assert await queue_depth(amqp_connection, queue_name) == 0
