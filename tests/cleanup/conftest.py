"""The reaper against the Compute API fake: a real google-cloud-compute client over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.compute_api import ComputeFake


@pytest.fixture(autouse=True)
def _no_metadata_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    # google.auth must never probe a metadata server from a test.
    monkeypatch.setenv("NO_GCE_CHECK", "True")


@pytest.fixture
async def compute_fake() -> AsyncIterator[ComputeFake]:
    fake = ComputeFake()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
