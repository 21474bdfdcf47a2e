"""The worker's life-cycle lines, beyond travis-ci/worker's: what an operator reads first
in a fresh log (what was started, against what) and last (how many jobs ended how).

    msg=starting version=0.1.0 revision=… provider=gce queue_type=amqp queue=builds.gce
        pool_size=30 build_api=https://build.example.com/script amqp=amqp://rabbit:5672/travis
    msg="connected to AMQP" connection=jobs broker=amqp://rabbit:5672/travis
    msg="worker started" pool_size=30
    msg=consuming queue=builds.gce priority=0
    …
    msg="pool shutting down" graceful=true pool_size=30 running_jobs=4
    msg="worker finished" … pool_size=30 jobs_passed=812 jobs_failed=97 … jobs_requeued=3

Only the URLs' scheme, host, port and path are shown: never credentials or query strings.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from travis_worker.buildinfo import build_info
from travis_worker.config import Settings
from travis_worker.job import FinishState
from travis_worker.processor.env import REQUEUE
from travis_worker.util.redact import url_location

logger = logging.getLogger(__name__)


def build_fields() -> dict[str, str]:
    build = build_info()
    return {"version": build.version, "revision": build.revision, "generated": build.generated}


def log_starting(settings: Settings) -> None:
    fields: dict[str, Any] = {
        **build_fields(),
        "provider": settings.provider_name,
        "queue_type": settings.queue_type,
        "queue": settings.queue_name,
        "pool_size": settings.pool_size,
        "hostname": settings.hostname,
        "build_api": url_location(settings.build_api_uri),
    }
    if "amqp" in settings.queue_types:
        fields["amqp"] = url_location(settings.amqp_uri)
        if settings.logs_amqp_uri:
            fields["logs_amqp"] = url_location(settings.logs_amqp_uri)
    if "file" in settings.queue_types:
        fields["base_dir"] = settings.base_dir
    logger.info("starting", extra={"fields": fields})


def finish_counts(outcomes: Counter[str]) -> dict[str, int]:
    """`jobs_<state>` for every finish state, and `jobs_requeued`, zeros included."""
    counts = {f"jobs_{state.value}": outcomes[state.value] for state in FinishState}
    counts["jobs_requeued"] = outcomes[REQUEUE]
    return counts
