"""Shared test plumbing: real services or a clear skip (a hard failure when CI=true)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

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
