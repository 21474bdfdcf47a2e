"""A fixed script for every job: `run-job --script FILE`, with no build API involved."""

from __future__ import annotations

from typing import Any


class StaticScript:
    """A fixed script for every job (`run-job --script`): no build API involved."""

    def __init__(self, script: bytes) -> None:
        self._script = script

    async def generate(self, raw_payload: dict[str, Any], job_id: int) -> bytes:
        return self._script

    async def close(self) -> None:
        """Nothing to release."""
