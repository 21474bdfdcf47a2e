"""Helpers for the reaper tests: fast settings and seeded instances."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.compute_api import ComputeFake
from travis_worker.cleanup.config import CleanupConfig

OURS = {"created-by": "travis-worker", "travis-worker": "travis-worker-abcd", "job-id": "42"}
ZONE = "us-central1-a"


def reaper_config(fake: ComputeFake, **overrides: Any) -> CleanupConfig:
    """Fast settings: no rate limit and millisecond backoff unless a test says otherwise."""
    base = CleanupConfig(
        project_id=fake.project,
        api_endpoint=fake.endpoint,
        rate_limit_max_calls=0,
        api_backoff=timedelta(milliseconds=10),
        api_retry_max=timedelta(seconds=5),
        once=True,
    )
    return replace(base, **overrides)


def seed(
    fake: ComputeFake,
    name: str,
    *,
    age: timedelta,
    labels: dict[str, str] | None = None,
    status: str = "RUNNING",
    max_run: timedelta | None = None,
    zone: str = ZONE,
) -> None:
    """An instance created `age` ago; with `max_run` it carries the worker's deadline."""
    created = (datetime.now(UTC) - age).isoformat(timespec="milliseconds")
    instance = fake.seed_instance(
        name,
        zone,
        labels=OURS if labels is None else labels,
        status=status,
        creation_timestamp=created,
    )
    if max_run is not None:
        instance.body["scheduling"] = {
            "maxRunDuration": {"seconds": str(int(max_run.total_seconds()))},
            "instanceTerminationAction": "DELETE",
        }


def deleted_names(fake: ComputeFake) -> set[str]:
    return {record.name for record in fake.deletes}
