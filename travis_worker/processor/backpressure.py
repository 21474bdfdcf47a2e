"""Taking fewer jobs when they cannot succeed here: a pause of job consumption while the
cloud has no capacity, and a growing pause before resetting a job that keeps failing here.

**Capacity.** When a start fails with CapacityError (quota used up, rate limited), every
processor stops taking jobs (running jobs go on), the log says why once, and a probe asks
the provider for capacity at a growing interval; the first yes resumes consumption. A
quota storm therefore costs at most one reset per processor that was already starting a
job, not one per job in the queue.

**Repeated resets.** A job that this worker resets for the same reason several times in a
row is reset after a pause that doubles each time (bounded), so it does not bounce between
the queue and a worker that cannot run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from travis_worker import metrics
from travis_worker.errors import CapacityError

logger = logging.getLogger(__name__)


class CapacityGate:
    def __init__(
        self,
        has_capacity: Callable[[], Awaitable[bool]],
        *,
        first_probe: float = 15.0,
        longest_probe: float = 120.0,
    ) -> None:
        self._has_capacity = has_capacity
        self._first_probe = first_probe
        self._longest_probe = longest_probe
        self._open = asyncio.Event()
        self._open.set()
        self.closed = asyncio.Event()
        """Set while consumption is paused (what a waiting processor watches)."""
        self._probing: asyncio.Task[None] | None = None
        metrics.CONSUMPTION_PAUSED.set(0)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def trip(self, error: CapacityError) -> None:
        """Pause consumption until the provider has capacity again (once per episode)."""
        if not self.is_open:
            return
        self._open.clear()
        self.closed.set()
        metrics.CONSUMPTION_PAUSED.set(1)
        logger.warning(
            "pausing job consumption: the cloud has no capacity",
            extra={
                "fields": {"reason": error.reason, "err": str(error), "probe_in": self._first_probe}
            },
        )
        self._probing = asyncio.create_task(self._probe_until_open(), name="capacity-probe")

    async def wait_open(self) -> None:
        await self._open.wait()

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            await asyncio.gather(self._probing, return_exceptions=True)

    async def _probe_until_open(self) -> None:
        paused_at = time.monotonic()
        pause = self._first_probe
        while True:
            await asyncio.sleep(pause)
            try:
                if await self._has_capacity():
                    break
            except Exception:
                logger.exception("capacity probe failed")
            pause = min(pause * 2, self._longest_probe)
        self.closed.clear()
        self._open.set()
        metrics.CONSUMPTION_PAUSED.set(0)
        paused = round(time.monotonic() - paused_at, 1)
        logger.info("resuming job consumption", extra={"fields": {"paused_s": paused}})


@dataclass
class _Streak:
    reason: str
    resets: int


class ResetPacer:
    """Per job id (the most recent `remember` of them): the reason of its last reset here
    and how many resets in a row had it."""

    def __init__(
        self, *, first_pause: float = 2.0, longest_pause: float = 60.0, remember: int = 10_000
    ) -> None:
        self.first_pause = first_pause
        self.longest_pause = longest_pause
        self._remember = remember
        self._streaks: OrderedDict[int, _Streak] = OrderedDict()

    def pause_before_reset(self, job_id: int, reason: str) -> float:
        """Note a reset of `job_id` for `reason`; returns how long to wait before sending it
        (0 the first time in a row, then first_pause, doubling, up to longest_pause)."""
        streak = self._streaks.pop(job_id, None)
        if streak is None or streak.reason != reason:
            streak = _Streak(reason, 0)
        streak.resets += 1
        self._streaks[job_id] = streak
        while len(self._streaks) > self._remember:
            self._streaks.popitem(last=False)
        if streak.resets == 1:
            return 0.0
        return float(min(self.first_pause * 2 ** (streak.resets - 2), self.longest_pause))

    def finished(self, job_id: int) -> None:
        """The job ended with a finish state: its streak is over."""
        self._streaks.pop(job_id, None)


async def pause_unless(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `event` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
