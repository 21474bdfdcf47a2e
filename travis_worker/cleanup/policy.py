"""Which VMs are ours, and which of ours are orphans. Pure functions of what the API lists.

A job VM is ours only when BOTH its name matches the job-VM pattern AND it carries the label
`created-by=travis-worker` (set by the GCE backend at insert). Anything else in the project
is never considered, whatever its age or state.

An orphan is a job VM no worker will delete any more:

* STOPPED, TERMINATED or SUSPENDED: the VM powered itself off (the startup script's
  auto-implode at hard timeout + 10 m) or was stopped; no job runs on a stopped VM.
* past its own `scheduling.maxRunDuration` (plus slack): Compute Engine should have deleted
  it at that deadline (`instanceTerminationAction: DELETE`); it did not.
* older than the max age, when the VM has no max run duration to say how long its job may
  legitimately run (VMs of older workers): gcloud-cleanup's rule.

A running VM that is older than the max age but still inside its max run duration is kept:
the worker set that deadline from the job's hard timeout, so the job may still be running,
and Compute Engine deletes the VM at the deadline anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from travis_worker.backends.google.body import CREATED_BY, LABEL_CREATED_BY, LABEL_WORKER

# The labels the GCE backend puts on every job VM it inserts.
OWNER_LABEL = LABEL_CREATED_BY
OWNER_VALUE = CREATED_BY
WORKER_HOST_LABEL = LABEL_WORKER
"""Label naming the worker host that started the VM (sanitised host name)."""

# Compute Engine deletes a VM at its deadline within a few minutes, not to the second;
# deleting earlier would race it for nothing.
MAX_RUN_SLACK = timedelta(minutes=10)
STOPPED_STATES = frozenset({"STOPPED", "TERMINATED", "SUSPENDED"})
# On the way to another state; the next pass sees where it went.
CHANGING_STATES = frozenset({"STOPPING", "SUSPENDING"})


@dataclass(frozen=True)
class JobVm:
    """An instance as the reaper sees it (any instance of the project, not only ours)."""

    name: str
    zone: str
    status: str
    created: datetime | None
    """creationTimestamp, or None when it does not parse."""
    labels: Mapping[str, str] = field(default_factory=dict)
    max_run_duration: timedelta | None = None


@dataclass(frozen=True)
class Decision:
    delete: bool
    reason: str
    """Why: stopped/terminated/suspended/expired/stale (delete), or why it is kept."""


def is_ours(vm: JobVm, name_pattern: re.Pattern[str]) -> bool:
    """Named like a job VM and labelled by the worker: both, always."""
    return name_pattern.fullmatch(vm.name) is not None and vm.labels.get(OWNER_LABEL) == OWNER_VALUE


def decide(vm: JobVm, *, now: datetime, max_age: timedelta) -> Decision:
    """Delete or keep one of our VMs (call only for VMs that `is_ours`)."""
    if vm.created is None:
        return Decision(False, "unreadable-creation-time")
    if vm.status in STOPPED_STATES:
        return Decision(True, vm.status.lower())
    if vm.status in CHANGING_STATES:
        return Decision(False, "changing-state")
    age = now - vm.created
    if vm.max_run_duration is not None:
        if age >= vm.max_run_duration + MAX_RUN_SLACK:
            return Decision(True, "expired")
        if age >= max_age:
            return Decision(False, "within-max-run-duration")
        return Decision(False, "young")
    if age >= max_age:
        return Decision(True, "stale")
    return Decision(False, "young")


def is_ownerless(vm: JobVm, instance_names: frozenset[str]) -> bool:
    """The worker host named by the VM's label no longer exists in the project: nothing
    will delete this VM but its deadline or the reaper. Reported, never acted on alone
    (worker hosts outside the project would look ownerless too)."""
    host = vm.labels.get(WORKER_HOST_LABEL)
    return bool(host) and host not in instance_names
