"""Which VMs are ours and which of ours are orphans (policy.py, pure functions)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from travis_worker.cleanup.policy import JobVm, decide, is_ours, is_ownerless

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=3)
PATTERN = re.compile("travis-job-.+")
OURS = {"created-by": "travis-worker", "travis-worker": "worker-1"}


def vm(
    *,
    age: timedelta = timedelta(minutes=5),
    status: str = "RUNNING",
    max_run: timedelta | None = None,
    name: str = "travis-job-1",
    labels: dict[str, str] | None = None,
) -> JobVm:
    return JobVm(
        name, "us-central1-a", status, NOW - age, OURS if labels is None else labels, max_run
    )


@pytest.mark.parametrize(
    ("name", "labels", "ours"),
    [
        ("travis-job-1", OURS, True),
        ("travis-job-1", {}, False),
        ("travis-job-1", {"created-by": "someone-else"}, False),
        ("worker-1", OURS, False),
        ("xtravis-job-1", OURS, False),  # the whole name must match
    ],
)
def test_ours_needs_both_name_and_label(name: str, labels: dict[str, str], ours: bool) -> None:
    assert is_ours(vm(name=name, labels=labels), PATTERN) is ours


@pytest.mark.parametrize(
    ("candidate", "delete", "reason"),
    [
        (vm(age=timedelta(minutes=5)), False, "young"),
        (vm(age=timedelta(hours=3)), True, "stale"),
        (vm(status="TERMINATED"), True, "terminated"),
        (vm(status="STOPPED"), True, "stopped"),
        (vm(status="SUSPENDED"), True, "suspended"),
        (vm(status="STOPPING", age=timedelta(hours=9)), False, "changing-state"),
        # A deadline longer than the max age keeps a VM whose job may still run ...
        (vm(age=timedelta(hours=4), max_run=timedelta(hours=5)), False, "within-max-run-duration"),
        # ... and a VM past its deadline (plus slack) is one GCE failed to delete.
        (vm(age=timedelta(hours=2), max_run=timedelta(hours=1)), True, "expired"),
        (vm(age=timedelta(minutes=65), max_run=timedelta(hours=1)), False, "young"),
        (vm(status="TERMINATED", max_run=timedelta(hours=5)), True, "terminated"),
    ],
)
def test_decisions(candidate: JobVm, delete: bool, reason: str) -> None:
    decision = decide(candidate, now=NOW, max_age=MAX_AGE)
    assert (decision.delete, decision.reason) == (delete, reason)


def test_an_unreadable_creation_time_keeps_the_vm() -> None:
    unreadable = JobVm("travis-job-1", "us-central1-a", "TERMINATED", None, OURS)
    assert decide(unreadable, now=NOW, max_age=MAX_AGE).delete is False


def test_ownerless_when_the_labelled_worker_host_is_not_listed() -> None:
    assert is_ownerless(vm(), frozenset({"worker-2"}))
    assert not is_ownerless(vm(), frozenset({"worker-1"}))
    assert not is_ownerless(vm(labels={"created-by": "travis-worker"}), frozenset())
