"""Shared test plumbing: real services or a clear skip (a hard failure when CI=true)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

# The Compute API fake fixture, and no metadata-server probes by google.auth in any test.
pytest_plugins = ["tests.support.compute"]

AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(condition: bool, reason: str) -> None:
    """Skip with `reason` on a laptop; fail the test in CI, where every service must exist."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def amqp_uri() -> str:
    need(port_open("127.0.0.1", 5672), "RabbitMQ is not answering on 127.0.0.1:5672")
    return AMQP_URI


@pytest.fixture(scope="session")
def redis_url() -> str:
    need(port_open("127.0.0.1", 6379), "Redis is not answering on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses, so tests never see each other's messages."""
    return f"builds.test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def root() -> None:
    need(os.geteuid() == 0, "needs root (sshd test VMs, network namespaces)")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove every worker setting from the environment for the test."""
    for name in list(os.environ):
        if name.startswith("TRAVIS_WORKER_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture(scope="session")
def amqp_vhost_uri(amqp_uri: str) -> Iterator[str]:
    """A private vhost for this test session: the reporting queues have fixed names, so
    sessions running at the same time on one broker must not share them."""
    from tests.support import rabbit

    need(rabbit.have_rabbitmqctl(), "rabbitmqctl is needed to create a test vhost")
    vhost = rabbit.create_vhost()
    yield f"{AMQP_URI.rstrip('/')}/{vhost}"
    rabbit.delete_vhost(vhost)


@pytest.fixture
async def amqp_connection(amqp_vhost_uri: str) -> Any:
    import aio_pika

    connection = await aio_pika.connect_robust(amqp_vhost_uri)
    yield connection
    await connection.close()


@pytest.fixture
async def reporting(amqp_connection: Any) -> Any:
    from tests.support.rabbit import Reporting

    return await Reporting(amqp_connection).start()


@pytest.fixture
async def build_api() -> Any:
    from tests.fakes.build_api import BuildApiFake

    fake = await BuildApiFake().start()
    yield fake
    await fake.stop()


@pytest.fixture
def job_id() -> int:
    """A job id no other test uses."""
    return int(uuid.uuid4().int % 10**9) + 10**9
