"""Process-wide settings a worker makes for itself: the open-files limit at start-up, and
a garbage collector that keeps out of the event loop's way while jobs run."""

from __future__ import annotations

import gc
import resource
from collections.abc import Iterator
from contextlib import contextmanager

# gen1 collections between two full ones (CPython's default is 10).
FULL_COLLECTION_EVERY = 100


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard limit; return the limit now in force.

    Every running job holds descriptors: its script's output pipe and child watcher on the
    local backend, SSH sockets (several while a VM boots) on gce, connections to the
    Compute API. A pool of hundreds outgrows the usual soft limit of 1024, which is there
    for programs that use select(2); asyncio does not. Go programs, travis-ci/worker among
    them, have raised their own soft limit this way since Go 1.19.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard or soft == resource.RLIM_INFINITY or hard == resource.RLIM_INFINITY:
        return soft  # nothing to raise to (the kernel never allows an unlimited one)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@contextmanager
def steady_collector() -> Iterator[None]:
    """While the block runs, the cyclic garbage collector ignores what exists when it starts
    (modules, clients, connections: they live as long as the worker) and makes a full
    collection after every FULL_COLLECTION_EVERY younger ones instead of 10; afterwards both
    are as before.

    A full collection walks every tracked object and stops the event loop meanwhile: with
    300 jobs running that took 100-200 ms, several times a minute, and every job's log
    waited. Most garbage is freed by reference counting; what forms cycles waits longer.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
