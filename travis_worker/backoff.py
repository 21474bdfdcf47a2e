"""Exponential backoff with jitter, the policy travis-ci/worker takes from cenkalti/backoff:
0.5 s first, ×1.5 each time, ±50 % jitter, at most 10 s apart (callers tune the numbers)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    multiplier: float = 1.5
    jitter: float = 0.5
    max_interval: float = 10.0

    def delays(self) -> Iterator[float]:
        """An endless series of pauses, each randomised around the growing interval."""
        interval = self.initial
        while True:
            yield interval * random.uniform(1 - self.jitter, 1 + self.jitter)
            interval = min(interval * self.multiplier, self.max_interval)
