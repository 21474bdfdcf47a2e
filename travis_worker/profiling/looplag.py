"""Event-loop lag: how late the loop wakes a sleeper.

Every job, log flush and AMQP heartbeat shares one loop. Code that blocks it (a synchronous
call, a huge JSON document) delays all of them at once; the oversleep of a short periodic
sleep measures exactly that delay, at almost no cost.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from travis_worker import metrics

CHECK_INTERVAL_SECONDS = 0.5
RECENT_SAMPLES = 120  # one minute at the default interval


class LoopLagMonitor:
    def __init__(
        self, interval: float = CHECK_INTERVAL_SECONDS, keep: int = RECENT_SAMPLES
    ) -> None:
        self.interval = interval
        self.latest = 0.0
        self.worst = 0.0
        self.checks = 0
        self.recent: deque[tuple[float, float]] = deque(maxlen=keep)
        """(unix time, lag seconds) of the latest checks."""

    async def run(self) -> None:
        """Measure until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.record(max(0.0, loop.time() - before - self.interval))

    def record(self, lag: float) -> None:
        self.latest = lag
        self.worst = max(self.worst, lag)
        self.checks += 1
        self.recent.append((time.time(), lag))
        metrics.EVENT_LOOP_LAG.set(lag)
        metrics.EVENT_LOOP_DELAY.observe(lag)

    def summary(self) -> dict[str, Any]:
        lags = sorted(lag for _, lag in self.recent)
        return {
            "interval_seconds": self.interval,
            "checks": self.checks,
            "latest_seconds": self.latest,
            "max_seconds": self.worst,
            "recent_p50_seconds": _quantile(lags, 0.5),
            "recent_p99_seconds": _quantile(lags, 0.99),
            "recent": [{"time": at, "lag_seconds": lag} for at, lag in self.recent],
        }


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
