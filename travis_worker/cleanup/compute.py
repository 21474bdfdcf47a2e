"""The reaper's view of Compute Engine, through the GCE backend's `ComputeApi`.

`ComputeApi` (backends/google/api.py) already owns what the reaper needs at the boundary:
credentials, retries of 429/5xx/transport errors with backoff, translation to
`ComputeApiError`, per-call metrics. The reaper makes two of its calls; their IAM
permissions are listed here, next to them, and deploy/terraform/permissions.tf grants the
reaper's service account exactly these (tests/deploy/test_permissions.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from travis_worker.backends.google.api import ComputeApi, RetryPolicy
from travis_worker.backends.google.api_types import InstanceInfo
from travis_worker.backends.google.auth import probe_metadata
from travis_worker.backends.google.config import read_account_json
from travis_worker.backends.google.ratelimit import RateLimiter
from travis_worker.cleanup.config import CleanupConfig, env_name
from travis_worker.cleanup.policy import JobVm
from travis_worker.errors import ConfigError

PERMISSIONS: dict[str, tuple[str, ...]] = {
    # ComputeApi method → the permissions its API call needs.
    "list_instances": ("compute.instances.list",),  # instances.aggregatedList
    "delete_instance": ("compute.instances.delete",),  # instances.delete
}


class Compute(Protocol):
    """The two `ComputeApi` calls the reaper makes (so tests can hand in a ComputeApi built
    against the Compute fake, and nothing else is reachable from the reaper)."""

    async def list_instances(self, filter_text: str = "") -> list[InstanceInfo]: ...

    async def delete_instance(self, zone: str, name: str) -> str | None: ...


def _parse_timestamp(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def job_vm(info: InstanceInfo) -> JobVm:
    """An instance as the policy sees it."""
    return JobVm(
        name=info.name,
        zone=info.zone,
        status=info.status,
        created=_parse_timestamp(info.creation_timestamp),
        labels=dict(info.labels),
        max_run_duration=info.max_run_duration,
    )


async def connect(config: CleanupConfig, limiter: RateLimiter) -> ComputeApi:
    """A ComputeApi for the configured project (the metadata server's project on GCE)."""
    account = read_account_json(config.account_json, env_name("account_json"))
    project = config.project_id or str((account or {}).get("project_id", ""))
    if not project and not config.api_endpoint:
        found = await asyncio.to_thread(probe_metadata)
        project = found[0] if found else ""
    if not project:
        raise ConfigError("no project: set TRAVIS_WORKER_CLEANUP_PROJECT_ID (or run on GCE)")
    retry = RetryPolicy(
        initial=config.api_backoff.total_seconds(),
        max_elapsed=config.api_retry_max.total_seconds(),
    )
    return await ComputeApi.create(
        project,
        endpoint=config.api_endpoint,
        account_info=account,
        limiter=limiter,
        retry=retry,
    )
