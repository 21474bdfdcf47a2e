"""`log-metrics`: every counter, gauge and histogram sum/count as one logfmt line."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter, Histogram

from tests.telemetry.test_job_log_fields import LineCapture, parse_logfmt
from travis_worker.telemetry import log_metrics, log_metrics_periodically


def registry_with_samples() -> CollectorRegistry:
    registry = CollectorRegistry()
    finished = Counter("jobs_finished", "Jobs finished", ["state"], registry=registry)
    finished.labels(state="passed").inc(3)
    duration = Histogram("job_seconds", "Job duration", buckets=(1, 10), registry=registry)
    duration.observe(4)
    return registry


async def test_metrics_become_log_lines():
    capture = LineCapture()
    logger = logging.getLogger("travis_worker.telemetry.metrics_log")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        assert log_metrics(registry_with_samples()) == 3
        periodic = asyncio.create_task(log_metrics_periodically(0.01, registry_with_samples()))
        await asyncio.sleep(0.05)
        periodic.cancel()
    finally:
        logger.removeHandler(capture)
        logger.setLevel(logging.NOTSET)
    lines = [parse_logfmt(line) for line in capture.lines]
    assert all(line["msg"] == "metric" for line in lines)
    first = {line["metric"]: line for line in lines[:3]}
    assert set(first) == {"jobs_finished_total", "job_seconds_count", "job_seconds_sum"}
    assert first["jobs_finished_total"]["state"] == "passed"
    assert first["jobs_finished_total"]["value"] == "3.0"
    assert first["job_seconds_sum"]["value"] == "4.0"
    assert len(lines) >= 6  # the periodic task logged at least once more
