"""One worker process, started and stopped in one place.

`WorkerApp.run` reads top to bottom as the order the parts start (travis-ci/worker `cli.go`
Setup/Run: provider, job sources and the cancellation consumer, the pool, the start hook,
signals); the exit stack stops them in the reverse order once the pool has shut down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

from travis_worker import metrics
from travis_worker.app.hooks import run_hook
from travis_worker.app.lifecycle import build_fields, finish_counts, log_starting
from travis_worker.app.parts import build_api_config, build_provider, open_sources, pipeline_config
from travis_worker.app.services import plan_services
from travis_worker.app.signals import signals_handled, steer_pool
from travis_worker.backends.base import Provider
from travis_worker.buildscript.api import BuildApiClient
from travis_worker.config import Settings
from travis_worker.contracts import ScriptGenerator
from travis_worker.processor.backpressure import CapacityGate, ResetPacer
from travis_worker.processor.env import JobEnv
from travis_worker.processor.pool import ProcessorPool
from travis_worker.sources.cancellation import CancellationBroadcaster
from travis_worker.telemetry import configure_tracing, install_requests_tracing
from travis_worker.util.process import steady_collector

logger = logging.getLogger(__name__)

CLOSING_SECONDS = 3.0


def _exit_now() -> None:
    """The watchdog of an immediate shutdown: the deadline passed and the process is still
    here (a stuck loop, or threads waiting on a slow cloud API)."""
    logger.error("shutdown timeout reached, exiting")
    logging.shutdown()
    os._exit(1)


class WorkerApp:
    """One worker process. `run()` returns the process exit status.

    `tracing=False` leaves the process-wide tracer provider alone (tests install their own).
    `hard_deadline=True` (the command, not tests) ends the process at `shutdown-timeout`
    after an immediate shutdown began, even if the event loop is stuck.
    """

    def __init__(
        self,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
        scripts: ScriptGenerator | None = None,
        *,
        tracing: bool = True,
        hard_deadline: bool = False,
    ) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.broadcaster = CancellationBroadcaster()
        self.started_at = time.time()
        self.pool: ProcessorPool | None = None
        self.capacity: CapacityGate | None = None
        self.services = plan_services(settings, self)
        self._scripts = scripts
        self._tracing = tracing
        self._hard_deadline = hard_deadline
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def ready(self) -> bool:
        """Consuming jobs (not draining, not paused by an operator or for want of cloud
        capacity): what `/ready` reports."""
        pool = self.pool
        consuming = pool is not None and pool.started and not pool.draining and not pool.paused
        return consuming and self.capacity is not None and self.capacity.is_open

    async def run(self) -> int:
        settings = self.settings
        metrics.expose_build_info()
        log_starting(settings)
        async with AsyncExitStack() as stack:
            # What the process reports about itself: spans, HTTP spans, pool gauges.
            tracing = configure_tracing(settings) if self._tracing else None
            if tracing is not None:
                stack.push_async_callback(tracing.shutdown)
            install_requests_tracing()
            self._expose_pool_gauges()
            # The parts a job passes through: backend, build API, job sources, pool.
            provider = build_provider(settings, self.environ)
            stack.push_async_callback(provider.close)
            await provider.setup()
            scripts = self._scripts or await self._build_api(stack)
            source = await open_sources(settings, self.broadcaster, stack)
            self.capacity = CapacityGate(
                provider.has_capacity,
                first_probe=settings.capacity_probe_interval.total_seconds(),
            )
            stack.push_async_callback(self.capacity.close)
            make_env = self._env_factory(provider, scripts, self.capacity)
            self.pool = ProcessorPool(source, make_env, settings.hostname)
            await run_hook("start", settings.start_hook)
            stack.push_async_callback(run_hook, "stop", settings.stop_hook)
            # What runs beside the pool, and who may steer it.
            await stack.enter_async_context(self.services.running(self))
            stack.enter_context(signals_handled(self.handle_signal))
            stack.callback(self.log_finished)
            stack.callback(self._cancel_deadline)
            logger.info("worker started", extra={"fields": {"pool_size": settings.pool_size}})
            stack.enter_context(steady_collector())
            await self.pool.run(settings.pool_size)
        return 0

    async def _build_api(self, stack: AsyncExitStack) -> BuildApiClient:
        client = BuildApiClient(build_api_config(self.settings))
        stack.push_async_callback(client.close)
        return client

    def _env_factory(
        self, provider: Provider, scripts: ScriptGenerator, capacity: CapacityGate
    ) -> Callable[[str], JobEnv]:
        config = pipeline_config(self.settings)
        resets = ResetPacer()

        def make_env(processor_id: str) -> JobEnv:
            return JobEnv(
                config=config,
                provider=provider,
                provider_name=self.settings.provider_name,
                scripts=scripts,
                broadcaster=self.broadcaster,
                processor_id=processor_id,
                capacity=capacity,
                resets=resets,
            )

        return make_env

    def _expose_pool_gauges(self) -> None:
        """Read at scrape time, so they can never drift from the pool."""

        def expected_size() -> float:
            return float(self.pool.expected_size) if self.pool is not None else 0.0

        metrics.POOL_EXPECTED_SIZE.set_function(expected_size)
        metrics.WORKER_READY.set_function(lambda: 1.0 if self.ready else 0.0)

    # -- control ------------------------------------------------------------------------

    def graceful_shutdown(self) -> None:
        if self.pool is not None:
            self.pool.graceful_shutdown()

    def immediate_shutdown(self) -> None:
        """Stop every job now (each is reset, its log closed, its VM deleted) and leave
        within `shutdown-timeout`, whatever is still unfinished by then."""
        pool = self.pool
        if pool is None:
            return
        pool.immediate_shutdown()
        if self._deadline is not None:
            return
        timeout = self.settings.shutdown_timeout.total_seconds()
        # The closing of the broker connections and the spool gets the last seconds.
        self._deadline = asyncio.get_running_loop().call_later(
            max(timeout - CLOSING_SECONDS, 0.0), self._give_up_waiting, pool
        )
        if self._hard_deadline:
            watchdog = threading.Timer(timeout, _exit_now)
            watchdog.daemon = True
            watchdog.start()

    def _give_up_waiting(self, pool: ProcessorPool) -> None:
        if pool.size:
            logger.error(
                "shutdown timeout reached, leaving jobs still cleaning up",
                extra={"fields": {"jobs": pool.size}},
            )
            pool.abandon()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()

    @property
    def stopped_immediately(self) -> bool:
        return self._deadline is not None

    def handle_signal(self, sig: signal.Signals) -> None:
        if self.pool is not None:
            steer_pool(
                sig,
                self.pool,
                shutdown_now=self.immediate_shutdown,
                log_pool_info=self.log_pool_info,
            )

    def log_finished(self) -> None:
        """The pool has stopped: its size before the shutdown, and how the jobs ended."""
        if self.pool is not None:
            outcomes = finish_counts(self.pool.outcomes())
            self.log_pool_info("worker finished", pool_size=self.pool.size_at_shutdown, **outcomes)

    def log_pool_info(self, message: str, **more: Any) -> None:
        pool = self.pool
        if pool is None:
            return
        logger.info(
            message,
            extra={
                "fields": {
                    **build_fields(),
                    "boot_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
                    "uptime_min": round((time.time() - self.started_at) / 60, 2),
                    "pool_size": pool.size,
                    "total_processed": pool.total_processed,
                    **more,
                }
            },
        )
        for number, info in enumerate(pool.processors()):
            logger.info(
                "processor info",
                extra={
                    "fields": {
                        "n": number,
                        "id": info.id,
                        "processed": info.processed,
                        "status": info.status.value,
                        "last_job_id": info.last_job_id,
                    }
                },
            )
