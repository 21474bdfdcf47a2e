"""Never run one job twice in this process because the broker redelivered it.

When the broker connection drops mid-job, the job's delivery goes back to the queue while
the job keeps running here, and the reconnected consumer may receive it again. A redelivered
job is therefore held until this process's run of it has settled; if that run published its
final state but could not acknowledge (its channel was gone), the redelivery is
acknowledged and dropped instead of being run again.

A delivery is recognised by job id *and* `meta.state_update_count`: a job restarted by the
hub keeps its id but comes with a higher count, and must run.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

# Redeliveries come within seconds of the reconnect; older memories are forgotten.
_MEMORY_SECONDS = 600.0
_MEMORY_SIZE = 1024

DeliveryKey = tuple[int, int]
"""(job id, meta.state_update_count) of a delivery."""


class RunningJobs:
    def __init__(self) -> None:
        self._running: dict[int, asyncio.Event] = {}
        self._settled_unacked: OrderedDict[DeliveryKey, float] = OrderedDict()

    async def admit(self, key: DeliveryKey, *, redelivered: bool) -> bool:
        """True when the job may run now; False when this delivery already ran here."""
        job_id = key[0]
        while job_id in self._running:
            await self._running[job_id].wait()
        self._forget_old()
        if redelivered and self._settled_unacked.pop(key, None) is not None:
            return False
        self._running[job_id] = asyncio.Event()
        return True

    def settled(self, key: DeliveryKey, *, state_published: bool, acked: bool) -> None:
        """The run of this delivery is over (or it was handed back without running)."""
        if state_published and not acked:
            self._settled_unacked[key] = time.monotonic()
            while len(self._settled_unacked) > _MEMORY_SIZE:
                self._settled_unacked.popitem(last=False)
        finished = self._running.pop(key[0], None)
        if finished is not None:
            finished.set()

    def _forget_old(self) -> None:
        horizon = time.monotonic() - _MEMORY_SECONDS
        while self._settled_unacked and next(iter(self._settled_unacked.values())) < horizon:
            self._settled_unacked.popitem(last=False)
