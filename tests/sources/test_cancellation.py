"""The in-process fan-out of cancel_job commands."""

from __future__ import annotations

from travis_worker.sources.cancellation import CancellationBroadcaster


def test_broadcast_reaches_only_current_subscribers_of_the_job():
    broadcaster = CancellationBroadcaster()
    with broadcaster.subscribe(1) as first, broadcaster.subscribe(1) as second:
        with broadcaster.subscribe(1) as gone:
            pass
        with broadcaster.subscribe(2) as other:
            assert broadcaster.broadcast(1, "42") == 2
            assert broadcaster.broadcast(1, "again") == 0
            assert first.cancelled and second.cancelled and first.reason == "42"
            assert not gone.cancelled and not other.cancelled
    assert broadcaster.broadcast(3, "nobody") == 0
