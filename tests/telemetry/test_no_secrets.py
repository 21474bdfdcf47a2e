"""No configured secret leaves the worker: a real worker configured with an AMQP password, a
build API token, service account JSON and a control endpoint password takes garbage (odd
payloads, a build API whose error pages echo our request, wrong credentials at its control
endpoint), and none of those secrets appears in its process logs (logfmt and JSON), its
spans, or any job log or state update it publishes."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Iterator

import pytest

from tests.fakes.build_api import Answer, BuildApiFake
from tests.remote.harness import running_with_services
from tests.support import rabbit
from tests.support.garbage import examples, mutated_payloads
from tests.support.worker import example_payload, publish, worker_settings
from travis_worker.compat import texts
from travis_worker.logs import JsonFormatter, LogfmtFormatter

PLACEHOLDER_ID = 987_654_321_987


class Capture(logging.Handler):
    """Every line the worker's stderr handler would write, in both formats."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(LogfmtFormatter().format(record))
        self.lines.append(JsonFormatter().format(record))


@pytest.fixture
def process_logs() -> Iterator[Capture]:
    """The levels `setup_logging(debug=True)` sets: the worker's debug lines, and warnings
    of every library."""
    capture = Capture()
    root, ours = logging.getLogger(), logging.getLogger("travis_worker")
    levels = root.level, ours.level
    root.addHandler(capture)
    root.setLevel(logging.WARNING)
    ours.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


@pytest.fixture
def secrets() -> dict[str, str]:
    tag = uuid.uuid4().hex
    return {
        "build_api_token": f"build-token-{tag}",
        # One line, nothing a log format escapes: a leak would show as the very string.
        "private_key": f"-----BEGIN PRIVATE KEY-----key-{tag}-----END PRIVATE KEY-----",
        "private_key_id": f"key-id-{tag}",
        "control_password": f"control-{tag}",
    }


@pytest.fixture
async def secret_build_api(secrets) -> Iterator[BuildApiFake]:
    fake = await BuildApiFake(tokens=(secrets["build_api_token"],)).start()
    yield fake
    await fake.stop()


@pytest.mark.timeout(120)
async def test_no_secret_in_logs_spans_or_job_logs(
    spans, process_logs, secrets, secret_build_api, amqp_connection, amqp_vhost_uri, reporting,
    queue_name, job_id,
):  # fmt: skip
    build_api = secret_build_api
    vhost = amqp_vhost_uri.rsplit("/", 1)[1]
    account = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": secrets["private_key_id"],
        "private_key": secrets["private_key"],
        "client_email": "worker@test-project.iam.gserviceaccount.com",
    }
    environ = {"TRAVIS_WORKER_GCE_ACCOUNT_JSON": json.dumps(account)}
    # Jobs: odd payloads, one whose build API error pages echo our request (token and
    # all), one whose script prints its environment.
    bodies = [
        m.body.replace(f'"id": {PLACEHOLDER_ID}'.encode(), f'"id": {job_id + n}'.encode())
        for n, m in enumerate(examples(mutated_payloads(job_id=PLACEHOLDER_ID, max_depth=50), 8))
    ]
    echoing, printing = job_id + len(bodies), job_id + len(bodies) + 1
    build_api.answers[echoing] = deque(
        [
            Answer(status=502, body=b"bad gateway", echo_request=True),
            Answer(status=403, body=b"denied", echo_request=True),
        ]
    )
    build_api.scripts[printing] = b"#!/bin/bash\nenv\necho printed\n"
    with rabbit.temporary_user(vhost) as (user, password):
        secrets["amqp_password"] = password
        values = worker_settings(
            f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}",
            queue_name,
            build_api.url.replace("the-token", secrets["build_api_token"]),
            stackdriver_trace_account_json=json.dumps(account),
            remote_controller_addr="127.0.0.1:0",
            remote_controller_auth=f"ops:{secrets['control_password']}",
            debug="true",
        )
        async with running_with_services(values, environ) as worker:
            for body in [*bodies, b"\xff not json", b'{"job": {"id": "x"}}']:
                await publish(amqp_connection, queue_name, body)
            await publish(amqp_connection, queue_name, example_payload(echoing))
            await publish(amqp_connection, queue_name, example_payload(printing))
            for wrong in [("ops", "wrong"), ("ops", secrets["control_password"][:-1]), None]:
                await worker.client.request("GET", "/worker", auth=wrong)
            right = ("ops", secrets["control_password"])
            await worker.client.request("PATCH", "/worker", auth=right, data=b'{"poolSize":"x"}')
            assert (await worker.client.request("GET", "/worker", auth=right))[0] == 200
            for one in range(job_id, printing + 1):
                await reporting.wait_finished(one, timeout=60)
        await asyncio.sleep(0.2)  # the last spans end as the pipeline returns

    # What was captured holds what a leak would be in: the echoed error page, the job's
    # environment, spans of every job.
    logs = "\n".join(process_logs.lines)
    assert "client error: 'denied" in logs  # the echoing page was quoted
    assert reporting.log_text(echoing) == texts.SCRIPT_GENERATION_FAILED
    assert "printed" in reporting.log_text(printing)
    exported = [span.to_json() for span in spans.get_finished_spans()]
    assert sum('"name": "ProcessorRun"' in span for span in exported) >= 2
    published = [r.raw.decode() for rs in [*reporting.states.values()] for r in rs]
    published += [r.raw.decode() for rs in [*reporting.parts.values()] for r in rs]
    for name, secret in secrets.items():
        assert secret not in logs, f"{name} in the process logs"
        assert not any(secret in span for span in exported), f"{name} in a span"
        assert not any(secret in message for message in published), f"{name} published"
