"""Never run one job twice in this process because the broker redelivered it.

When the broker connection drops mid-job, the job's delivery goes back to the queue while
the job keeps running here, and the reconnected consumer may receive it again. A redelivered
job is therefore held until this process's run of it has settled; if that run published its
final state but could not acknowledge (its channel was gone), the redelivery is
acknowledged and dropped instead of being run again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

# How many settled-but-unacknowledged job ids to remember; redeliveries come within seconds.
_MEMORY = 1024


class RunningJobs:
    def __init__(self) -> None:
        self._running: dict[int, asyncio.Event] = {}
        self._settled_unacked: OrderedDict[int, None] = OrderedDict()

    async def admit(self, job_id: int, *, redelivered: bool) -> bool:
        """True when the job may run now; False when it already ran here to the end."""
        while job_id in self._running:
            await self._running[job_id].wait()
        if redelivered and job_id in self._settled_unacked:
            del self._settled_unacked[job_id]
            return False
        self._running[job_id] = asyncio.Event()
        return True

    def settled(self, job_id: int, *, state_published: bool, acked: bool) -> None:
        """The run of `job_id` is over."""
        if state_published and not acked:
            self._settled_unacked[job_id] = None
            while len(self._settled_unacked) > _MEMORY:
                self._settled_unacked.popitem(last=False)
        finished = self._running.pop(job_id, None)
        if finished is not None:
            finished.set()
