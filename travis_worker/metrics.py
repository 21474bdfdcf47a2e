"""Prometheus metrics. Defined once here, recorded where things happen, served by the
control endpoint at `/metrics`. The names of travis-ci/worker's go-metrics counterparts are
listed in the README."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

from travis_worker.buildinfo import build_info

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
    "Failed cloud API calls, by method, code and zone (`global` for calls about no one zone)",
    ["method", "code", "zone"],
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
# A gauge scraped every 15 s misses short stalls; the histogram keeps every check.
EVENT_LOOP_DELAY = Histogram(
    "travis_worker_event_loop_delay_seconds",
    "Event-loop lag of every check (0.5 s apart)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CLOUD_API_DURATION = Histogram(
    "travis_worker_cloud_api_call_duration_seconds",
    "Duration of cloud API HTTP calls, by method",
    ["method"],
    buckets=(*_SHORT_BUCKETS, 30, 60),
)
POOL_EXPECTED_SIZE = Gauge(
    "travis_worker_pool_expected_size", "Processors the pool is meant to have (0 when paused)"
)
WORKER_READY = Gauge("travis_worker_ready", "1 while consuming jobs (what /ready reports)")
BUILD_INFO = Info("travis_worker_build", "The running build: version, git revision, build date")
AMQP_RECONNECTS = Counter(
    "travis_worker_amqp_reconnects",
    "Broker connections restored after the broker closed or lost them, by connection (jobs, logs)",
    ["connection"],
)
JOB_QUEUE_READY = Gauge(
    "travis_worker_job_queue_ready_messages",
    "Jobs waiting in the job queue (ready, not yet delivered), checked every 30 s",
    ["queue"],
)
HEARTBEAT_CHECKS = Counter(
    "travis_worker_heartbeat_checks",
    "Heartbeat URL checks, by result (up, down, error)",
    ["result"],
)

# --- Riding out faults: the outbox of unconfirmed messages, backpressure ------------------
OUTBOX_MESSAGES = Gauge(
    "travis_worker_outbox_messages",
    "State updates and log parts not yet confirmed by the broker, by where they are held "
    "(memory, spool)",
    ["held"],
)
OUTBOX_BYTES = Gauge(
    "travis_worker_outbox_bytes",
    "Bytes of state updates and log parts not yet confirmed, by where they are held",
    ["held"],
)
SPOOL_REPLAYED = Counter(
    "travis_worker_spool_replayed_messages",
    "Messages an earlier worker process left in the spool, published at start-up",
)
CONSUMPTION_PAUSED = Gauge(
    "travis_worker_consumption_paused",
    "1 while the processors take no jobs because the cloud has no capacity (quota, rate limit)",
)
REQUEUE_DELAY = Histogram(
    "travis_worker_requeue_delay_seconds",
    "Pause before resetting a job this worker already reset for the same reason",
    buckets=(0, 1, 2, 5, 10, 30, 60, 120, 300),
)

# --- Orphan-VM reaper (`travis-worker cleanup`, travis_worker/cleanup/) ------------------
# Served by the reaper's own listener (--listen-addr), not by the worker's.
_PASS_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

CLEANUP_DELETED = Counter(
    "travis_worker_cleanup_instances_deleted", "Orphaned job VMs deleted, by reason", ["reason"]
)
CLEANUP_WOULD_DELETE = Counter(
    "travis_worker_cleanup_instances_would_delete",
    "Orphaned job VMs a dry run would have deleted, by reason",
    ["reason"],
)
CLEANUP_DELETE_ERRORS = Counter(
    "travis_worker_cleanup_delete_errors", "Job VM deletes that failed after their retries"
)
CLEANUP_ORPHANS = Gauge(
    "travis_worker_cleanup_orphans",
    "Orphaned job VMs found by the last pass, by reason",
    ["reason"],
)
CLEANUP_JOB_VMS = Gauge(
    "travis_worker_cleanup_job_vms", "Job VMs seen by the last pass, by status", ["status"]
)
CLEANUP_OWNERLESS = Gauge(
    "travis_worker_cleanup_ownerless_job_vms",
    "Job VMs whose worker host (label travis-worker) no longer exists in the project",
)
CLEANUP_PASSES = Counter("travis_worker_cleanup_passes", "Reaper passes, by result", ["result"])
CLEANUP_LAST_SUCCESS = Gauge(
    "travis_worker_cleanup_last_success_timestamp_seconds", "When the last pass succeeded"
)
CLEANUP_PASS_DURATION = Histogram(
    "travis_worker_cleanup_pass_duration_seconds",
    "Duration of successful passes",
    buckets=_PASS_BUCKETS,
)


def expose_build_info() -> None:
    """`travis_worker_build_info{version,revision,generated} 1`, for dashboards to join on."""
    build = build_info()
    BUILD_INFO.info(
        {"version": build.version, "revision": build.revision, "generated": build.generated}
    )
