"""Fixtures shared by the GCE backend, reaper and doctor tests: the Compute API fake, a token
endpoint, and no metadata-server probes from google.auth."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.compute_api import ComputeFake
from tests.fakes.token_server import TokenServer


@pytest.fixture(autouse=True)
def _no_metadata_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    # google.auth must never probe a metadata server from a test.
    monkeypatch.setenv("NO_GCE_CHECK", "True")


@pytest.fixture
async def compute_only() -> AsyncIterator[ComputeFake]:
    """The Compute fake without VMs behind it (API-level tests, no root needed)."""
    async with ComputeFake() as fake:
        yield fake


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    """A token endpoint (and metadata server) on loopback, answering properly until told to
    fail."""
    server = TokenServer()
    runner = await server.start()
    yield server
    await runner.cleanup()
