"""In-process fan-out of `cancel_job` commands to the pipelines running those jobs.

As in travis-ci/worker, a command for a job nobody subscribed to is dropped: job ids are
reused when a job is restarted, so remembering old cancels would kill the restart.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class CancelSubscription:
    """Fires once when the job is cancelled; `reason` is the command's text."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.event = asyncio.Event()
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()

    def fire(self, reason: str) -> None:
        self.reason = reason
        self.event.set()


class CancellationBroadcaster:
    """Maps job ids to the subscriptions waiting on them."""

    def __init__(self) -> None:
        self._subscriptions: defaultdict[int, list[CancelSubscription]] = defaultdict(list)

    @contextmanager
    def subscribe(self, job_id: int) -> Iterator[CancelSubscription]:
        subscription = CancelSubscription(job_id)
        self._subscriptions[job_id].append(subscription)
        try:
            yield subscription
        finally:
            self._unsubscribe(subscription)

    def _unsubscribe(self, subscription: CancelSubscription) -> None:
        waiting = self._subscriptions.get(subscription.job_id)
        if waiting is None:
            return
        if subscription in waiting:
            waiting.remove(subscription)
        if not waiting:
            del self._subscriptions[subscription.job_id]

    def broadcast(self, job_id: int, reason: str) -> int:
        """Cancel every subscriber of `job_id`; returns how many there were."""
        waiting = self._subscriptions.pop(job_id, [])
        for subscription in waiting:
            subscription.fire(reason)
        return len(waiting)
