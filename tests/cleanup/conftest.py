"""The reaper against the Compute API fake: a real google-cloud-compute client over HTTP."""

from __future__ import annotations

import pytest

from tests.fakes.compute_api import ComputeFake


@pytest.fixture
def compute_fake(compute_only: ComputeFake) -> ComputeFake:
    """The reaper's tests need no VMs behind the fake."""
    return compute_only
