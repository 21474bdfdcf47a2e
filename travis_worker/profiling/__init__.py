"""Looking inside a running worker without stopping it (the role of Go's pprof).

Everything here is safe to call while jobs run: the CPU sampler reads other threads' stacks
from its own thread, heap tracing starts only when asked for, and stack dumps are one pass
over objects that already exist.
"""

from __future__ import annotations

from travis_worker.profiling.heap import HeapProfiler
from travis_worker.profiling.looplag import LoopLagMonitor
from travis_worker.profiling.sampler import SampledProfile, sample_in_thread
from travis_worker.profiling.stacks import format_task_stacks, format_thread_stacks

__all__ = [
    "HeapProfiler",
    "LoopLagMonitor",
    "SampledProfile",
    "format_task_stacks",
    "format_thread_stacks",
    "sample_in_thread",
]
