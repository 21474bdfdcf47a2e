"""`travis-worker cleanup`: the orphan-VM reaper.

Deletes job VMs that no worker will delete any more (policy.py says which), and nothing
else: only VMs named like job VMs AND labelled `created-by=travis-worker` are considered.
It is travis-ci/gcloud-cleanup's instance cleaner, plus the VM's own max run duration, a
dry run, retries with backoff, Prometheus metrics and a health endpoint.

    travis-worker cleanup [--once] [--dry-run] [--instance-max-age 3h] ...

Settings: config.py (flags, TRAVIS_WORKER_CLEANUP_*, gcloud-cleanup's GCLOUD_CLEANUP_*).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

from travis_worker import metrics
from travis_worker.backends.google.ratelimit import (
    RateLimiter,
    RateLimitSettings,
    build_rate_limiter,
)
from travis_worker.buildinfo import build_info
from travis_worker.cleanup.compute import Compute, connect
from travis_worker.cleanup.config import CleanupConfig, load_cleanup_config
from travis_worker.cleanup.reaper import Reaper
from travis_worker.cleanup.server import start_server
from travis_worker.errors import ConfigError
from travis_worker.logs import fields, setup_logging

__all__ = ["CleanupConfig", "cleanup_main", "run_cleanup"]
logger = logging.getLogger(__name__)


def _limiter(config: CleanupConfig) -> RateLimiter:
    # The reaper counts in the same Redis keys as the workers: one quota per project.
    return build_rate_limiter(
        RateLimitSettings(
            max_calls=config.rate_limit_max_calls,
            window=config.rate_limit_duration,
            redis_url=config.rate_limit_redis_url,
            prefix=config.rate_limit_prefix,
        )
    )


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


async def run_cleanup(config: CleanupConfig, compute: Compute | None = None) -> int:
    """Run the reaper until SIGINT/SIGTERM (or one pass with `once`); the exit code.

    `compute` defaults to a `ComputeApi` for the configured project and credentials.
    """
    limiter = _limiter(config)
    owned = None
    if compute is None:
        owned = compute = await connect(config, limiter)
    reaper = Reaper(config, compute, limiter)
    loop = asyncio.get_running_loop()
    # The handlers only record the request; the loop finishes the delete in flight first.
    # Signals reach the main thread only; elsewhere (embedded, tests) the caller stops it.
    signals = (signal.SIGINT, signal.SIGTERM) if _in_main_thread() else ()
    for signum in signals:
        loop.add_signal_handler(signum, reaper.stopping.set)
    metrics.expose_build_info()
    runner = await start_server(config.listen_addr, reaper.healthy) if config.listen_addr else None
    logger.info(
        "cleanup starting",
        extra=fields(
            version=build_info().version,
            revision=build_info().revision,
            dry_run=config.dry_run,
            instance_max_age=str(config.instance_max_age),
            name_pattern=config.name_pattern,
            loop_sleep=str(config.loop_sleep),
        ),
    )
    try:
        return await reaper.run()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        if runner is not None:
            await runner.cleanup()
        if owned is not None:
            await owned.close()  # also closes the limiter it was given
        else:
            await limiter.close()


def cleanup_main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """Entry point of `travis-worker cleanup ARGS...`; returns the process exit code."""
    environ = os.environ if environ is None else environ
    try:
        config, _ = load_cleanup_config(argv, environ)
    except ConfigError as exc:
        print(f"travis-worker cleanup: {exc}", file=sys.stderr)
        return 2
    setup_logging(debug=config.debug)
    try:
        return asyncio.run(run_cleanup(config))
    except ConfigError as exc:
        logger.error("cannot start cleanup", extra=fields(err=str(exc)))
        return 2
