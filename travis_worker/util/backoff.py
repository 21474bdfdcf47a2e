"""Exponential backoff with jitter, the policy travis-ci/worker takes from cenkalti/backoff:
0.5 s first, ×1.5 each time, ±50 % jitter, at most 10 s apart (callers tune the numbers)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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


async def retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_on: type[Exception] | tuple[type[Exception], ...],
    backoff: Backoff,
    give_up_after: float | None = None,
    attempts: int | None = None,
    retryable: Callable[[Exception], bool] = lambda error: True,
    on_retry: Callable[[Exception, float], None] | None = None,
) -> T:
    """Call `attempt` until it succeeds. A `retry_on` error that is `retryable` is retried
    after the next backoff pause, unless that pause would pass `give_up_after` seconds from
    the first call or `attempts` calls were made; then it is raised."""
    started = time.monotonic()
    pauses = backoff.delays()
    made = 0
    while True:
        made += 1
        try:
            return await attempt()
        except retry_on as error:
            pause = next(pauses)
            out_of_time = give_up_after is not None and (
                time.monotonic() - started + pause > give_up_after
            )
            out_of_attempts = attempts is not None and made >= attempts
            if not retryable(error) or out_of_time or out_of_attempts:
                raise
            if on_retry is not None:
                on_retry(error, pause)
        await asyncio.sleep(pause)
