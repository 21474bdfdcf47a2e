"""Process-wide settings a worker makes for itself (the open-files limit is tested through
the real command, in tests/cli/test_run_job.py)."""

from __future__ import annotations

import gc

from travis_worker.util.process import FULL_COLLECTION_EVERY, steady_collector


def test_the_collector_ignores_what_exists_and_collects_fully_less_often_meanwhile():
    before = gc.get_threshold()
    survivor = [object()]  # made before the block: left alone during it
    with steady_collector():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (before[0], before[1], FULL_COLLECTION_EVERY)
        # What the block makes is still collected, cycles included.
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert survivor
