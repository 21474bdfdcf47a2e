"""Which zone a job VM boots in, and where to go when a zone has no capacity.

travis-ci/worker picks a random configured zone and switches zones only when the insert
*request* fails; the usual stockout (ZONE_RESOURCE_POOL_EXHAUSTED) arrives later, in the
insert *operation*, and there it requeued the job. Here both kinds switch zones, GCE's own
hint of zones with capacity is tried first, and a zone that ran out is avoided by every
job of this worker for a cool-down, so one stockout costs one failed insert, not one per
job.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable


class ZoneChooser:
    """Zone choice shared by all jobs of one provider."""

    def __init__(
        self,
        configured: Iterable[str],
        region_zones: Iterable[str],
        *,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured = list(dict.fromkeys(configured))
        self.region_zones = [zone for zone in region_zones if zone not in self.configured]
        self.cooldown = cooldown
        self._clock = clock
        self._failed_at: dict[str, float] = {}

    def cooling(self, zone: str) -> bool:
        failed_at = self._failed_at.get(zone)
        return failed_at is not None and self._clock() - failed_at < self.cooldown

    def mark_failed(self, zone: str) -> None:
        self._failed_at[zone] = self._clock()

    def first(self, usable: Callable[[str], bool] = lambda zone: True) -> str:
        """A random configured zone that is not cooling down (any configured one if all are)."""
        candidates = [z for z in self.configured if usable(z)] or self.configured
        warm = [zone for zone in candidates if not self.cooling(zone)]
        return random.choice(warm or candidates)

    def next(
        self,
        tried: set[str],
        hints: Iterable[str] = (),
        usable: Callable[[str], bool] = lambda zone: True,
    ) -> str | None:
        """The zone to try after the ones in `tried` failed, or None when none is left.

        Preference: zones GCE named as having capacity, then configured zones, then the
        region's other zones; zones cooling down only as a last resort.
        """
        known = set(self.configured) | set(self.region_zones)
        fresh = [z for z in dict.fromkeys(hints) if z in known and z not in tried and usable(z)]
        if fresh:
            return fresh[0]
        for group in (self.configured, self.region_zones):
            open_zones = [z for z in group if z not in tried and usable(z)]
            warm = [zone for zone in open_zones if not self.cooling(zone)]
            if warm:
                return random.choice(warm)
        cold = [z for z in (*self.configured, *self.region_zones) if z not in tried and usable(z)]
        return min(cold, key=lambda zone: self._failed_at.get(zone, 0.0)) if cold else None
