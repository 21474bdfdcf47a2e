"""Heap snapshots with tracemalloc, switched on only when an operator asks.

tracemalloc slows every allocation down and keeps a traceback per live block, so it is off
until the first request and can be switched off again. Each report remembers its
snapshot, so the next one can show what grew in between (the usual way to find a leak).
"""

from __future__ import annotations

import os
import tempfile
import tracemalloc
from pathlib import Path
from typing import Literal

Grouping = Literal["lineno", "filename", "traceback"]
DEFAULT_FRAMES = 10
# Allocations made by tracemalloc itself and by imports are noise in every report.
_NOISE = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


class HeapProfiler:
    def __init__(self) -> None:
        self._previous: tracemalloc.Snapshot | None = None

    @property
    def tracing(self) -> bool:
        return tracemalloc.is_tracing()

    def start(self, frames: int = DEFAULT_FRAMES) -> bool:
        """Start tracing (keeping `frames` frames per allocation); False if already on."""
        if tracemalloc.is_tracing():
            return False
        tracemalloc.start(max(1, min(frames, 100)))
        self._previous = None
        return True

    def stop(self) -> None:
        tracemalloc.stop()
        self._previous = None

    def snapshot(self) -> tracemalloc.Snapshot:
        return tracemalloc.take_snapshot().filter_traces(_NOISE)

    def report(self, *, top: int = 25, group: Grouping = "lineno", diff: bool = False) -> str:
        """The `top` biggest allocation sites, or (`diff`) the biggest changes since the
        previous report."""
        snapshot = self.snapshot()
        current, peak = tracemalloc.get_traced_memory()
        lines = [
            f"traced memory: {_mib(current)} now, {_mib(peak)} peak; "
            f"tracemalloc's own use: {_mib(tracemalloc.get_tracemalloc_memory())}; "
            f"frames kept per allocation: {tracemalloc.get_traceback_limit()}",
        ]
        previous, self._previous = self._previous, snapshot
        if diff and previous is not None:
            lines.append(f"top {top} changes since the previous report, by {group}:")
            changes = snapshot.compare_to(previous, group)[:top]
            lines += [_describe(stat, group) for stat in changes]
        else:
            if diff:
                lines.append("no previous report to compare with; showing totals")
            lines.append(f"top {top} allocation sites, by {group}:")
            lines += [_describe(stat, group) for stat in snapshot.statistics(group)[:top]]
        return "\n".join(lines) + "\n"

    def dump(self) -> bytes:
        """A snapshot file that `tracemalloc.Snapshot.load(path)` reads back."""
        snapshot = self.snapshot()
        descriptor, path = tempfile.mkstemp(prefix="travis-worker-heap-", suffix=".pickle")
        os.close(descriptor)
        try:
            snapshot.dump(path)
            return Path(path).read_bytes()
        finally:
            Path(path).unlink()


def _describe(stat: tracemalloc.Statistic | tracemalloc.StatisticDiff, group: Grouping) -> str:
    if group != "traceback":
        return str(stat)
    return "\n".join([str(stat), *("    " + line for line in stat.traceback.format())])


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
