"""Prometheus metrics. Defined once here, recorded where things happen, served by the
control endpoint at `/metrics`. The names of travis-ci/worker's go-metrics counterparts are
listed in the README."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Boot phases run from ~0.1 s (fake/local) to minutes (GCE under stockout).
_BOOT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
_JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3000, 3600, 7200, 10800)
_SHORT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

JOBS_RECEIVED = Counter("travis_worker_jobs_received", "Jobs taken from a job source")
JOBS_STARTED = Counter("travis_worker_jobs_started", "Jobs whose script started running")
JOBS_FINISHED = Counter("travis_worker_jobs_finished", "Jobs finished, by state", ["state"])
JOBS_REQUEUED = Counter(
    "travis_worker_jobs_requeued", "Jobs sent back (reset), by reason", ["reason"]
)
JOBS_REJECTED = Counter(
    "travis_worker_jobs_rejected", "Deliveries rejected as unusable, by reason", ["reason"]
)
JOB_DURATION = Histogram(
    "travis_worker_job_duration_seconds",
    "From job received to its finish or requeue",
    ["state"],
    buckets=_JOB_BUCKETS,
)
JOB_QUEUE_TIME = Histogram(
    "travis_worker_job_queue_time_seconds",
    "From job.queued_at to the worker receiving it",
    buckets=_JOB_BUCKETS,
)
BOOT_PHASE = Histogram(
    "travis_worker_boot_phase_seconds",
    "Duration of each instance boot phase (image_select, insert, operation_done, ssh_ready, "
    "upload, first_log_byte)",
    ["phase", "backend", "zone"],
    buckets=_BOOT_BUCKETS,
)
CLOUD_API_CALLS = Counter(
    "travis_worker_cloud_api_calls", "Cloud API calls, by method and HTTP code", ["method", "code"]
)
CLOUD_API_ERRORS = Counter(
    "travis_worker_cloud_api_errors",
    "Failed cloud API calls, by method and code",
    ["method", "code"],
)
RATE_LIMIT_WAIT = Histogram(
    "travis_worker_rate_limit_wait_seconds",
    "Time spent waiting for the cloud API rate limiter",
    buckets=_SHORT_BUCKETS,
)
LOG_BYTES = Counter("travis_worker_log_bytes", "Job log bytes published")
LOG_PARTS = Counter("travis_worker_log_parts", "Job log parts published")
PROCESSORS = Gauge("travis_worker_processors", "Processors in the pool, by status", ["status"])
EVENT_LOOP_LAG = Gauge("travis_worker_event_loop_lag_seconds", "Latest measured event-loop lag")
