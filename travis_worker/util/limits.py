"""The process limits a worker raises for itself at start-up."""

from __future__ import annotations

import resource


def raise_open_files_limit(wanted: int | None = None) -> int:
    """Raise the soft limit of open files to the hard limit (or to `wanted`, if lower) and
    return the soft limit now in force.

    Every running job holds descriptors: its script's output pipe and child watcher on the
    local backend, SSH sockets (several while a VM boots) on gce, connections to the
    Compute API. A pool of hundreds outgrows the usual soft limit of 1024, which is there
    for programs that use select(2); asyncio does not. Go programs, travis-ci/worker among
    them, have raised their own soft limit this way since Go 1.19.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if wanted is None else wanted
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
