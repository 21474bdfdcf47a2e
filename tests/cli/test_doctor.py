"""`travis-worker doctor` against the real broker, the build API fake and the Compute fake:
everything passing, then the broker and build API failures, once each (the GCE ones are in
test_doctor_gce.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest

from tests.cli.doctor_support import closed_port, doctor, doctor_command, healthy_env
from travis_worker.backends.google.permissions import worker_permissions
from travis_worker.cli import main

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def env(amqp_vhost_uri, queue_name, build_api, compute_only) -> dict[str, str]:
    return healthy_env(amqp_vhost_uri, queue_name, build_api, compute_only)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and never answers (a hung host)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_healthy_host_passes_every_check(env, queue_name, amqp_connection, compute_only):
    outcome = await doctor(env)

    assert outcome.status == 0, "\n".join(outcome.lines)
    assert outcome.failures == [] and outcome.starting("warn") == []
    assert outcome.lines[-1].startswith("verdict: ready: ")
    broker = outcome.line_about("broker amqp://")
    assert broker.startswith("ok    broker amqp://guest:REDACTED@127.0.0.1:5672/")
    assert f"queue {queue_name} declared" in broker
    assert "travis-build v12.3.4-fake" in outcome.line_about("build API")
    for subject in ("credentials", "project", "zone us-central1-a", "zone us-central1-b",
                    "network default", "machine types", "images", "permissions"):  # fmt: skip
        assert outcome.line_about(f"gce {subject}").startswith("ok    gce ")
    # The job queue now exists, durable, as the worker declares it.
    channel = await amqp_connection.channel()
    await channel.declare_queue(queue_name, passive=True)
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        await channel.declare_queue(queue_name, durable=False)
    # Resource Manager was asked about exactly the worker's permissions.
    asked = [call for call in compute_only.calls if call.method == "projects.testIamPermissions"]
    assert len(asked) == 1
    assert str(len(worker_permissions())) in outcome.line_about("gce permissions")


async def test_the_command_passes_and_prints_no_secret(env, build_api):
    outcome = await doctor_command(env, "--check-timeout", "5s")

    assert outcome.status == 0, outcome.stderr + "\n".join(outcome.lines)
    assert outcome.lines[-1].startswith("verdict: ready: ")
    text = "\n".join(outcome.lines)
    assert build_api.tokens[0] not in text and "guest:guest" not in text


async def test_the_command_fails_on_a_refused_token_and_does_not_print_it(env, build_api):
    env["TRAVIS_WORKER_BUILD_API_URI"] = build_api.url.replace(build_api.tokens[0], "s3cr3t")

    outcome = await doctor_command(env)

    assert outcome.status == 1
    assert outcome.failures == [
        f"FAIL  build API http://127.0.0.1:{build_api.port}/script answers 403 for the "
        "configured token: the configured token is refused"
    ]
    assert "s3cr3t" not in "\n".join(outcome.lines) + outcome.stderr
    assert outcome.lines[-1] == f"verdict: NOT ready: 1 of {len(outcome.lines) - 1} checks failed"


async def test_a_missing_token_is_named(env, build_api):
    env["TRAVIS_WORKER_BUILD_API_URI"] = f"http://127.0.0.1:{build_api.port}/script"

    outcome = await doctor(env)

    assert outcome.status == 1
    [failure] = outcome.failures
    assert "answers 401 for the configured token: no token was sent" in failure


async def test_an_unreachable_broker_fails_its_line(env):
    env["TRAVIS_WORKER_AMQP_URI"] = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"

    outcome = await doctor(env)

    assert outcome.status == 1
    [failure] = outcome.failures
    assert failure.startswith("FAIL  broker amqp://guest:REDACTED@127.0.0.1:")
    assert "gives no connection" in failure and "Connect call failed" in failure


async def test_wrong_broker_credentials_fail_their_line(env, amqp_vhost_uri):
    env["TRAVIS_WORKER_AMQP_URI"] = amqp_vhost_uri.replace("guest:guest@", "guest:wrong@")

    outcome = await doctor(env)

    assert outcome.status == 1
    [failure] = outcome.failures
    assert "ACCESS_REFUSED" in failure and "wrong" not in failure


async def test_a_build_api_that_is_down_fails_its_line(env, build_api):
    env["TRAVIS_WORKER_BUILD_API_URI"] = f"http://the-token@127.0.0.1:{closed_port()}/script"

    outcome = await doctor(env)

    assert outcome.status == 1
    [failure] = outcome.failures
    assert failure.startswith("FAIL  build API http://127.0.0.1:")
    assert "does not answer" in failure


async def test_a_hung_host_costs_one_time_limit(env, silent_server):
    env["TRAVIS_WORKER_BUILD_API_URI"] = f"http://the-token@127.0.0.1:{silent_server}/script"

    started = asyncio.get_running_loop().time()
    outcome = await doctor(env, seconds=1.0)

    assert outcome.failures == [
        f"FAIL  build API http://127.0.0.1:{silent_server}/script: no answer within 1s"
    ]
    assert outcome.line_about("gce permissions").startswith("ok ")  # later checks still ran
    assert asyncio.get_running_loop().time() - started < 10


async def test_checks_that_do_not_apply_are_skipped_and_pass(env):
    env.update(TRAVIS_WORKER_PROVIDER_NAME="local", TRAVIS_WORKER_QUEUE_TYPE="file")

    outcome = await doctor(env)

    assert outcome.status == 0
    assert outcome.starting("skip") == [
        "skip  broker: queue-type file takes no jobs from a broker",
        "skip  cloud: provider local has no cloud to check (the cloud checks are for gce)",
    ]
    assert outcome.lines[-1] == "verdict: ready: 1 checks passed (2 skipped)"


async def test_missing_settings_fail_their_lines(env):
    del env["TRAVIS_WORKER_QUEUE_NAME"], env["TRAVIS_WORKER_BUILD_API_URI"]

    outcome = await doctor(env)

    assert outcome.status == 1
    assert outcome.failures == [
        "FAIL  broker: queue-name is not set (TRAVIS_WORKER_QUEUE_NAME)",
        "FAIL  build API: build-api-uri is not set (TRAVIS_WORKER_BUILD_API_URI)",
    ]


def test_an_invalid_time_limit_is_a_settings_error(capsys, clean_env):
    assert main(["doctor", "--check-timeout", "forever"]) == 2
    assert capsys.readouterr().err == (
        "travis-worker: invalid value 'forever' for --check-timeout: invalid duration 'forever'\n"
    )
