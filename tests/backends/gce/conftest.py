"""The GCE backend against the Compute API fake (real google-cloud-compute client over HTTP)
and the sshd "VMs" of tests/backends/conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.fakes import sshvm
from tests.fakes.compute_api import ComputeFake
from travis_worker.backends.base import ProviderContext
from travis_worker.backends.gce import GceProvider, create_provider
from travis_worker.job import StartAttributes

ProviderFactory = Callable[..., Awaitable[GceProvider]]


@pytest.fixture
async def compute(vm_host: sshvm.VmHost) -> AsyncIterator[ComputeFake]:
    """The Compute fake whose inserts boot sshd VMs."""
    async with ComputeFake(vm_host=vm_host) as fake:
        yield fake


def fast_keys(fake: ComputeFake, **overrides: str) -> dict[str, str]:
    """Provider keys for tests: the fake's endpoint and millisecond-scale pauses."""
    keys = {
        "API_ENDPOINT": fake.endpoint,
        "PROJECT_ID": fake.project,
        "ZONES": "us-central1-a,us-central1-b",
        "BACKOFF_RETRY_INITIAL": "20ms",
        "BACKOFF_RETRY_MAX": "5s",
        "BOOT_POLL_SLEEP": "100ms",
        "STOP_POLL_SLEEP": "100ms",
        "UPLOAD_RETRIES": "20",
        "UPLOAD_RETRY_SLEEP": "100ms",
        "SSH_DIAL_TIMEOUT": "2s",
        "RATE_LIMIT_MAX_CALLS": "0",
    }
    keys.update(overrides)
    return keys


@pytest.fixture
async def make_provider(compute: ComputeFake) -> AsyncIterator[ProviderFactory]:
    """Build and set up providers against the fake; all are closed after the test."""
    made: list[GceProvider] = []

    async def make(fake: ComputeFake | None = None, **overrides: str) -> GceProvider:
        context = ProviderContext("worker-1.example.com", fast_keys(fake or compute, **overrides))
        provider = create_provider(context)
        made.append(provider)
        await provider.setup()
        return provider

    yield make
    for provider in made:
        await provider.close()


def gce_environ(compute: ComputeFake, **overrides: str) -> dict[str, str]:
    """A worker's environment for the gce backend against `compute` (the `fast_keys`)."""
    keys = fast_keys(compute, **overrides)
    return {f"TRAVIS_WORKER_GCE_{key}": value for key, value in keys.items()}


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Until `condition()` holds (what a background task, e.g. a deletion, brings about)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def job_attrs(**changes: Any) -> StartAttributes:
    attrs = StartAttributes(
        language="ruby",
        dist="trusty",
        group="stable",
        os="linux",
        arch="amd64",
        vm_type="default",
        job_id=4242,
        repository="Travis-CI/Hello.World",
        hard_timeout=timedelta(minutes=50),
    )
    for key, value in changes.items():
        setattr(attrs, key, value)
    return attrs
