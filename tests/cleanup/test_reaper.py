"""The reaper against the Compute fake, through the real client: what it deletes, what it
never touches, dry run, retries and the rate limit."""

from __future__ import annotations

import time
from datetime import timedelta

from prometheus_client import REGISTRY

from tests.cleanup.support import OURS, deleted_names, reaper_config, seed
from tests.fakes.compute_api import ComputeFake
from travis_worker.backends.google.ratelimit import LocalRateLimiter
from travis_worker.cleanup import run_cleanup
from travis_worker.cleanup.compute import connect
from travis_worker.cleanup.config import CleanupConfig
from travis_worker.cleanup.reaper import PassReport, Reaper

HOUR = timedelta(hours=1)


def seed_mixed_project(fake: ComputeFake) -> set[str]:
    """A project with every kind of instance; returns the names that are orphans."""
    # Orphans: ours and dead, or too old.
    seed(fake, "travis-job-stale", age=4 * HOUR)
    seed(fake, "travis-job-terminated", age=timedelta(minutes=5), status="TERMINATED")
    seed(fake, "travis-job-stopped", age=timedelta(minutes=5), status="STOPPED")
    seed(fake, "travis-job-suspended", age=timedelta(minutes=5), status="SUSPENDED")
    # Ours but alive: young, or on its way to another state.
    seed(fake, "travis-job-young", age=timedelta(minutes=10))
    seed(fake, "travis-job-stopping", age=5 * HOUR, status="STOPPING")
    # Not ours, however old or dead: a name without the label, a label without the name.
    seed(fake, "travis-job-unlabelled", age=10 * HOUR, labels={}, status="TERMINATED")
    seed(fake, "travis-job-other-owner", age=10 * HOUR, labels={"created-by": "someone"})
    seed(fake, "build-cache", age=10 * HOUR, labels=OURS, status="TERMINATED")
    seed(fake, "travis-worker-abcd", age=10 * HOUR, labels={"role": "travis-worker"})
    return {
        "travis-job-stale",
        "travis-job-terminated",
        "travis-job-stopped",
        "travis-job-suspended",
    }


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels or None) or 0.0


async def one_pass(config: CleanupConfig) -> PassReport:
    limiter = LocalRateLimiter(config.rate_limit_max_calls, config.rate_limit_duration)
    compute = await connect(config, limiter)
    try:
        return await Reaper(config, compute, limiter).run_pass()
    finally:
        await compute.close()


async def test_deletes_only_old_or_stopped_labelled_job_vms(compute_fake: ComputeFake) -> None:
    orphans = seed_mixed_project(compute_fake)
    stale_before = sample("travis_worker_cleanup_instances_deleted_total", reason="stale")

    code = await run_cleanup(reaper_config(compute_fake))

    assert code == 0
    assert deleted_names(compute_fake) == orphans
    assert sample("travis_worker_cleanup_instances_deleted_total", reason="stale") == (
        stale_before + 1
    )
    assert sample("travis_worker_cleanup_orphans", reason="terminated") == 1
    assert sample("travis_worker_cleanup_job_vms", status="RUNNING") == 2
    # travis-job-* VMs carry travis-worker=travis-worker-abcd, which exists.
    assert sample("travis_worker_cleanup_ownerless_job_vms") == 0


async def test_a_vm_deadline_beats_the_max_age(compute_fake: ComputeFake) -> None:
    seed(compute_fake, "travis-job-long-job", age=4 * HOUR, max_run=5 * HOUR)
    seed(compute_fake, "travis-job-expired", age=2 * HOUR, max_run=HOUR)

    await run_cleanup(reaper_config(compute_fake))

    assert deleted_names(compute_fake) == {"travis-job-expired"}


async def test_reports_vms_whose_worker_host_is_gone(compute_fake: ComputeFake) -> None:
    seed(compute_fake, "travis-job-1", age=timedelta(minutes=5))
    seed(
        compute_fake,
        "travis-job-2",
        age=timedelta(minutes=5),
        labels={**OURS, "travis-worker": "gone"},
    )

    report = await one_pass(reaper_config(compute_fake))

    assert (report.ownerless, sum(report.orphans.values())) == (2, 0)
    assert compute_fake.count("instances.delete") == 0


async def test_dry_run_deletes_nothing_and_counts_what_it_would(compute_fake: ComputeFake) -> None:
    orphans = seed_mixed_project(compute_fake)
    config = reaper_config(compute_fake, dry_run=True)
    reasons = ("stale", "terminated", "stopped", "suspended")
    before = {
        reason: sample("travis_worker_cleanup_instances_would_delete_total", reason=reason)
        for reason in reasons
    }

    code = await run_cleanup(config)

    assert code == 0
    assert compute_fake.count("instances.delete") == 0
    assert all(compute_fake.instance(name) for name in orphans)
    for reason in reasons:
        assert sample("travis_worker_cleanup_instances_would_delete_total", reason=reason) == (
            before[reason] + 1
        )


async def test_transient_api_errors_are_retried(compute_fake: ComputeFake) -> None:
    seed(compute_fake, "travis-job-stale", age=4 * HOUR)
    compute_fake.fail("instances.aggregatedList", 503, times=2)
    compute_fake.fail("instances.delete", 429, times=2)

    code = await run_cleanup(reaper_config(compute_fake))

    assert code == 0
    assert compute_fake.count("instances.aggregatedList") == 3
    assert compute_fake.count("instances.delete") == 3
    assert deleted_names(compute_fake) == {"travis-job-stale"}


async def test_a_failing_delete_is_given_up_and_the_pass_goes_on(
    compute_fake: ComputeFake,
) -> None:
    seed(compute_fake, "travis-job-a", age=4 * HOUR)
    seed(compute_fake, "travis-job-b", age=4 * HOUR)
    compute_fake.fail("instances.delete", 403)  # not transient: no retry
    errors_before = sample("travis_worker_cleanup_delete_errors_total")

    report = await one_pass(reaper_config(compute_fake))

    assert (report.errors, sum(report.deleted.values())) == (1, 1)
    assert compute_fake.count("instances.delete") == 2
    assert sample("travis_worker_cleanup_delete_errors_total") == errors_before + 1


async def test_a_delete_failing_past_the_retry_limit_counts_as_an_error(
    compute_fake: ComputeFake,
) -> None:
    seed(compute_fake, "travis-job-a", age=4 * HOUR)
    compute_fake.fail("instances.delete", 503, times=1000)
    config = reaper_config(compute_fake, api_retry_max=timedelta(seconds=0.3))

    report = await one_pass(config)

    assert report.errors == 1
    assert compute_fake.count("instances.delete") > 1  # retried, then given up
    assert compute_fake.instance("travis-job-a")


async def test_a_vm_deleted_meanwhile_counts_as_gone_not_as_error(
    compute_fake: ComputeFake,
) -> None:
    seed(compute_fake, "travis-job-stale", age=4 * HOUR)
    compute_fake.fail("instances.delete", 404)

    report = await one_pass(reaper_config(compute_fake))

    assert (report.already_gone, report.errors, compute_fake.count("instances.delete")) == (1, 0, 1)


async def test_once_fails_when_the_vms_cannot_be_listed(compute_fake: ComputeFake) -> None:
    seed(compute_fake, "travis-job-stale", age=4 * HOUR)
    compute_fake.fail("instances.aggregatedList", 503, times=1000)
    config = reaper_config(compute_fake, api_retry_max=timedelta(seconds=0.3))

    code = await run_cleanup(config)

    assert code == 1
    assert compute_fake.count("instances.aggregatedList") > 1
    assert compute_fake.count("instances.delete") == 0


async def test_deletes_keep_to_the_rate_limit(compute_fake: ComputeFake) -> None:
    for n in range(5):
        seed(compute_fake, f"travis-job-{n}", age=4 * HOUR)
    # 2 calls per 0.5 s (the list counts too): the 6 calls need three windows.
    config = reaper_config(
        compute_fake, rate_limit_max_calls=2, rate_limit_duration=timedelta(seconds=0.5)
    )
    started = time.monotonic()

    code = await run_cleanup(config)

    assert code == 0
    assert len(deleted_names(compute_fake)) == 5
    assert time.monotonic() - started >= 1.0
    times = sorted(
        call.at
        for call in compute_fake.calls
        if call.method in ("instances.delete", "instances.aggregatedList")
    )
    # Arrival times at the fake: allow for the thread hop between permit and request.
    gaps = [later - earlier for earlier, later in zip(times, times[2:], strict=False)]
    assert min(gaps) >= 0.45, gaps
