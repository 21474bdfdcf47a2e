from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_leftover_heap_tracing() -> Iterator[None]:
    """`GET /debug/heap` switches tracemalloc on; it must not slow the rest of the suite."""
    was_tracing = tracemalloc.is_tracing()
    yield
    if not was_tracing and tracemalloc.is_tracing():
        tracemalloc.stop()
