"""Whether the region has room for one more job VM, read from its quotas (`regions.get`).

A worker paused by a CapacityError asks this before it takes jobs again: one API call
instead of a job's failed insert (and a reset) per probe.
"""

from __future__ import annotations

from collections.abc import Iterable

from travis_worker.backends.google.api_types import Quota

# The regional quotas an instances.insert of a job VM draws on. Machine families other than
# N1 have CPU quotas of their own (`N2_CPUS`, …), added from the configured machine types.
VM_QUOTAS = frozenset(
    {"CPUS", "INSTANCES", "SSD_TOTAL_GB", "DISKS_TOTAL_GB", "IN_USE_ADDRESSES", "PREEMPTIBLE_CPUS"}
)


def quota_metrics(machine_types: Iterable[str]) -> frozenset[str]:
    """VM_QUOTAS plus the CPU quota of each machine family among `machine_types`."""
    families = {name.split("-", 1)[0].upper() for name in machine_types if "-" in name}
    return VM_QUOTAS | {f"{family}_CPUS" for family in families if family != "N1"}


def used_up(quotas: Iterable[Quota], metrics: frozenset[str]) -> list[str]:
    """The quotas among `metrics` with nothing left. A limit of 0 is a quota the project was
    never granted (a GPU type, a family it does not use), not one that ran out."""
    return sorted(q.metric for q in quotas if q.metric in metrics and 0 < q.limit <= q.usage)
