"""`log-metrics`: the Prometheus metrics written to the process log every minute.

travis-ci/worker printed its go-metrics registry this way for hosts without a metrics
system; here each counter, gauge and histogram sum/count becomes one logfmt line
(`msg=metric metric=travis_worker_jobs_finished_total state=passed value=3`), which
honeytail turns into events like any other line.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import REGISTRY, CollectorRegistry

logger = logging.getLogger(__name__)

LOG_INTERVAL_SECONDS = 60.0
# Buckets would print a dozen lines per histogram; sum and count carry the useful part.
_SKIPPED_SUFFIXES = ("_bucket", "_created")


def log_metrics(registry: CollectorRegistry = REGISTRY) -> int:
    """Log every sample once; returns how many lines were written."""
    lines = 0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith(_SKIPPED_SUFFIXES):
                continue
            fields: dict[str, object] = {"metric": sample.name, **sample.labels}
            fields["value"] = sample.value
            logger.info("metric", extra={"fields": fields})
            lines += 1
    return lines


async def log_metrics_periodically(
    interval: float = LOG_INTERVAL_SECONDS, registry: CollectorRegistry = REGISTRY
) -> None:
    while True:
        await asyncio.sleep(interval)
        log_metrics(registry)
