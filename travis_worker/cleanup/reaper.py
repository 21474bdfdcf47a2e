"""One reaper pass (list, decide, delete) and the loop around it."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from travis_worker import metrics
from travis_worker.backends.google.api_types import ComputeApiError
from travis_worker.backends.google.ratelimit import RateLimiter
from travis_worker.cleanup.compute import Compute, job_vm
from travis_worker.cleanup.config import CleanupConfig
from travis_worker.cleanup.policy import JobVm, decide, is_ours, is_ownerless
from travis_worker.logs import fields

logger = logging.getLogger(__name__)


@dataclass
class PassReport:
    """What one pass saw and did; also logged as one line and exported as metrics."""

    job_vms: Counter[str] = field(default_factory=Counter)
    """Our job VMs by status."""
    orphans: Counter[str] = field(default_factory=Counter)
    """Our job VMs due for deletion, by reason."""
    kept: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)
    would_delete: Counter[str] = field(default_factory=Counter)
    already_gone: int = 0
    errors: int = 0
    ownerless: int = 0


class Reaper:
    def __init__(self, config: CleanupConfig, compute: Compute, limiter: RateLimiter) -> None:
        self.config = config
        self.compute = compute
        self.limiter = limiter
        self.name_pattern = re.compile(config.name_pattern)
        self.stopping = asyncio.Event()
        self.started_at = time.monotonic()
        self.last_success_at: float | None = None

    def healthy(self) -> bool:
        """A pass finished recently enough (or the first one is still due)."""
        since = self.last_success_at if self.last_success_at is not None else self.started_at
        allowed = 3 * self.config.loop_sleep.total_seconds() + 300
        return time.monotonic() - since <= allowed

    async def run_pass(self) -> PassReport:
        """List, decide, delete. Raises ComputeApiError when the list cannot be read (after
        ComputeApi's own retries)."""
        report = PassReport()
        # Every instance, not only ours: the names also tell which worker hosts still exist.
        instances = [job_vm(info) for info in await self.compute.list_instances()]
        names = frozenset(vm.name for vm in instances)
        now = datetime.now(UTC)
        due: list[tuple[JobVm, str]] = []
        for vm in instances:
            if not is_ours(vm, self.name_pattern):
                continue
            report.job_vms[vm.status] += 1
            report.ownerless += is_ownerless(vm, names)
            decision = decide(vm, now=now, max_age=self.config.instance_max_age)
            if decision.delete:
                report.orphans[decision.reason] += 1
                due.append((vm, decision.reason))
            else:
                report.kept[decision.reason] += 1
        for vm, reason in due:
            if self.stopping.is_set():
                break
            await self._reap(vm, reason, report)
        return report

    async def _reap(self, vm: JobVm, reason: str, report: PassReport) -> None:
        where = fields(instance=vm.name, zone=vm.zone, reason=reason, status=vm.status)
        if self.config.dry_run:
            logger.info("would delete", extra=where)
            report.would_delete[reason] += 1
            metrics.CLEANUP_WOULD_DELETE.labels(reason).inc()
            return
        # ComputeApi never holds a worker's delete back; the reaper's bulk deletes it does.
        await self.limiter.wait()
        try:
            operation = await self.compute.delete_instance(vm.zone, vm.name)
        except ComputeApiError as exc:
            logger.warning("could not delete", extra=fields(**where["fields"], err=str(exc)))
            report.errors += 1
            metrics.CLEANUP_DELETE_ERRORS.inc()
            return
        if operation is None:  # deleted meanwhile, by its worker or by GCE
            report.already_gone += 1
            return
        logger.info("deleted", extra=where)
        report.deleted[reason] += 1
        metrics.CLEANUP_DELETED.labels(reason).inc()

    def _publish(self, report: PassReport) -> None:
        metrics.CLEANUP_JOB_VMS.clear()
        for status, count in report.job_vms.items():
            metrics.CLEANUP_JOB_VMS.labels(status).set(count)
        metrics.CLEANUP_ORPHANS.clear()
        for reason, count in report.orphans.items():
            metrics.CLEANUP_ORPHANS.labels(reason).set(count)
        metrics.CLEANUP_OWNERLESS.set(report.ownerless)
        summary = {
            "job_vms": sum(report.job_vms.values()),
            "orphans": sum(report.orphans.values()),
            "deleted": sum(report.deleted.values()),
            "would_delete": sum(report.would_delete.values()),
            "already_gone": report.already_gone,
            "errors": report.errors,
            "ownerless": report.ownerless,
            **{f"status.{status}": n for status, n in sorted(report.job_vms.items())},
            **{f"orphans.{reason}": n for reason, n in sorted(report.orphans.items())},
            **{f"kept.{reason}": n for reason, n in sorted(report.kept.items())},
        }
        logger.info("pass finished", extra=fields(**summary))

    async def run(self) -> int:
        """Passes until stopped (or one with `once`). Returns the exit code: with `once`,
        1 when the pass could not list the VMs; a loop only stops when asked, with 0."""
        while True:
            started = time.monotonic()
            try:
                report = await self.run_pass()
            except ComputeApiError as exc:
                logger.error("pass failed", extra=fields(err=str(exc)))
                metrics.CLEANUP_PASSES.labels("failed").inc()
                if self.config.once:
                    return 1
            else:
                self._publish(report)
                self.last_success_at = time.monotonic()
                metrics.CLEANUP_PASSES.labels("ok").inc()
                metrics.CLEANUP_LAST_SUCCESS.set_to_current_time()
                metrics.CLEANUP_PASS_DURATION.observe(time.monotonic() - started)
                if self.config.once:
                    return 0
            if self.stopping.is_set():
                return 0
            try:
                await asyncio.wait_for(self.stopping.wait(), self.config.loop_sleep.total_seconds())
            except TimeoutError:
                continue
            return 0
