"""The composition root: builds every part from Settings, runs the pool, handles signals.

Start-up order follows travis-ci/worker (`cli.go` Setup/Run): provider, its setup, job sources and
the cancellation consumer, the pool; then the start hook, signal handling and the pool's
run; at the end the sources, connections and provider are closed and the stop hook runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from typing import Any

from travis_worker import GENERATED, REVISION, __version__
from travis_worker.amqp.connection import BrokerConfig
from travis_worker.amqp.setup import AmqpSetup, open_amqp_source
from travis_worker.amqp.source import AmqpSourceConfig
from travis_worker.backends import create_provider
from travis_worker.backends.base import Provider, ProviderContext
from travis_worker.buildscript import BuildApiClient, BuildApiConfig, ScriptGenerator
from travis_worker.cancellation import CancellationBroadcaster
from travis_worker.config import Settings, provider_config
from travis_worker.errors import ConfigError
from travis_worker.filequeue import FileJobSource
from travis_worker.hooks import run_hook
from travis_worker.job import JobSource, StartDefaults
from travis_worker.multisource import MultiSource
from travis_worker.processor.env import JobEnv, PipelineConfig
from travis_worker.processor.pool import ProcessorPool

logger = logging.getLogger(__name__)


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        hard_timeout=settings.hard_timeout,
        log_timeout=settings.log_timeout,
        initial_sleep=settings.initial_sleep,
        startup_timeout=settings.startup_timeout,
        script_upload_timeout=settings.script_upload_timeout,
        max_log_length=settings.max_log_length,
        progress_type=settings.progress_type,
        payload_filter_executable=settings.payload_filter_executable,
        skip_shutdown_on_log_timeout=settings.skip_shutdown_on_log_timeout,
        infra=settings.infra,
        travis_site=settings.travis_site,
    )


def start_defaults(settings: Settings) -> StartDefaults:
    return StartDefaults(
        language=settings.default_language,
        dist=settings.default_dist,
        arch=settings.default_arch,
        group=settings.default_group,
        os=settings.default_os,
    )


def build_api_config(settings: Settings) -> BuildApiConfig:
    if not settings.build_api_uri:
        raise ConfigError("build-api-uri is not set (TRAVIS_WORKER_BUILD_API_URI)")
    return BuildApiConfig(
        uri=settings.build_api_uri,
        insecure_skip_verify=settings.build_api_insecure_skip_verify,
        apt_cache=settings.build_apt_cache,
        npm_cache=settings.build_npm_cache,
        paranoid=settings.build_paranoid,
        fix_resolv_conf=settings.build_fix_resolv_conf,
        fix_etc_hosts=settings.build_fix_etc_hosts,
        cache_type=settings.build_cache_type,
        cache_fetch_timeout=settings.build_cache_fetch_timeout,
        cache_push_timeout=settings.build_cache_push_timeout,
        cache_s3_scheme=settings.build_cache_s3_scheme,
        cache_s3_region=settings.build_cache_s3_region,
        cache_s3_bucket=settings.build_cache_s3_bucket,
        cache_s3_access_key_id=settings.build_cache_s3_access_key_id,
        cache_s3_secret_access_key=settings.build_cache_s3_secret_access_key,
    )


def amqp_setup(settings: Settings) -> AmqpSetup:
    if not settings.queue_name:
        raise ConfigError("queue-name is not set (TRAVIS_WORKER_QUEUE_NAME)")

    def broker(uri: str, tls_cert: str, tls_cert_path: str) -> BrokerConfig:
        return BrokerConfig(
            uri, settings.amqp_heartbeat, tls_cert, tls_cert_path, settings.amqp_insecure
        )

    logs_broker = None
    if settings.logs_amqp_uri:
        logs_broker = broker(
            settings.logs_amqp_uri, settings.logs_amqp_tls_cert, settings.logs_amqp_tls_cert_path
        )
    return AmqpSetup(
        jobs_broker=broker(settings.amqp_uri, settings.amqp_tls_cert, settings.amqp_tls_cert_path),
        logs_broker=logs_broker,
        source=AmqpSourceConfig(
            queue_name=settings.queue_name,
            consumer_priority=settings.amqp_consumer_priority,
            start_defaults=start_defaults(settings),
        ),
        sharded_logs=settings.rabbitmq_sharding,
        state_update_pool_size=settings.state_update_pool_size,
    )


def build_provider(settings: Settings, environ: Mapping[str, str]) -> Provider:
    keys = provider_config(settings.provider_name, environ)
    if settings.travis_site:
        keys["TRAVIS_SITE"] = settings.travis_site
    return create_provider(settings.provider_name, ProviderContext(settings.hostname, keys))


class WorkerApp:
    """One worker process. `run()` returns the process exit status."""

    def __init__(
        self,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
        scripts: ScriptGenerator | None = None,
    ) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.broadcaster = CancellationBroadcaster()
        self.started_at = time.time()
        self.pool: ProcessorPool | None = None
        self._scripts = scripts
        self._signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
        self._services: list[Callable[[WorkerApp], Coroutine[Any, Any, None]]] = []

    @property
    def ready(self) -> bool:
        """Consuming jobs (not draining, not paused): what `/ready` reports."""
        pool = self.pool
        return pool is not None and pool.started and not pool.draining and not pool.paused

    def add_service(self, service: Callable[[WorkerApp], Coroutine[Any, Any, None]]) -> None:
        """Run `service(app)` alongside the pool (control endpoint, heartbeat); it is
        cancelled when the pool has stopped."""
        self._services.append(service)

    async def run(self) -> int:
        settings = self.settings
        async with AsyncExitStack() as stack:
            provider = build_provider(settings, self.environ)
            stack.push_async_callback(provider.close)
            await provider.setup()
            scripts = self._scripts or BuildApiClient(build_api_config(settings))
            if isinstance(scripts, BuildApiClient):
                stack.push_async_callback(scripts.close)
            source = await self._open_sources(stack)
            self.pool = ProcessorPool(
                source, self._env_factory(provider, scripts), settings.hostname
            )
            await run_hook("start", settings.start_hook)
            self._install_signal_handlers()
            services = [asyncio.create_task(service(self)) for service in self._services]
            signal_loop = asyncio.create_task(self._act_on_signals())
            try:
                await self.pool.run(settings.pool_size)
            finally:
                for task in (*services, signal_loop):
                    task.cancel()
                await asyncio.gather(*services, signal_loop, return_exceptions=True)
                self._remove_signal_handlers()
                self.log_pool_info("worker finished")
        await run_hook("stop", settings.stop_hook)
        return 0

    def _env_factory(self, provider: Provider, scripts: ScriptGenerator) -> Callable[[str], JobEnv]:
        config = pipeline_config(self.settings)

        def make_env(processor_id: str) -> JobEnv:
            return JobEnv(
                config=config,
                provider=provider,
                provider_name=self.settings.provider_name,
                scripts=scripts,
                broadcaster=self.broadcaster,
                processor_id=processor_id,
            )

        return make_env

    async def _open_sources(self, stack: AsyncExitStack) -> JobSource:
        sources: list[JobSource] = []
        for queue_type in self.settings.queue_types:
            if queue_type == "amqp":
                setup = amqp_setup(self.settings)
                sources.append(await open_amqp_source(setup, self.broadcaster, stack))
            elif queue_type == "file":
                sources.append(
                    FileJobSource(
                        self.settings.base_dir,
                        self.settings.queue_name,
                        self.settings.file_polling_interval,
                        start_defaults(self.settings),
                    )
                )
            else:
                raise ConfigError(f"unknown queue type {queue_type!r}")
        if not sources:
            raise ConfigError("queue-type names no job source")
        return sources[0] if len(sources) == 1 else MultiSource(sources)

    # -- control ------------------------------------------------------------------------

    def graceful_shutdown(self) -> None:
        if self.pool is not None:
            self.pool.graceful_shutdown()

    def immediate_shutdown(self) -> None:
        if self.pool is not None:
            self.pool.immediate_shutdown()

    def log_pool_info(self, message: str) -> None:
        pool = self.pool
        if pool is None:
            return
        logger.info(
            message,
            extra={
                "fields": {
                    "version": __version__,
                    "revision": REVISION,
                    "generated": GENERATED,
                    "boot_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
                    "uptime_min": round((time.time() - self.started_at) / 60, 2),
                    "pool_size": pool.size,
                    "total_processed": pool.total_processed,
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

    # -- signals: handlers only record; the loop below acts (uvicorn's habit) -------------

    _HANDLED = (
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGTTIN,
        signal.SIGTTOU,
        signal.SIGUSR1,
        signal.SIGUSR2,
    )

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._HANDLED:
            loop.add_signal_handler(sig, self._signals.put_nowait, sig)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._HANDLED:
            loop.remove_signal_handler(sig)

    async def _act_on_signals(self) -> None:
        while True:
            self.handle_signal(await self._signals.get())

    def handle_signal(self, sig: signal.Signals) -> None:
        pool = self.pool
        if pool is None:
            return
        if sig == signal.SIGINT:
            if pool.draining:
                logger.info("SIGINT received again, shutting down immediately")
                pool.immediate_shutdown()
            else:
                logger.info("SIGINT received, starting graceful shutdown")
                pool.graceful_shutdown()
        elif sig == signal.SIGTERM:
            logger.info("SIGTERM received, shutting down immediately")
            pool.immediate_shutdown()
        elif sig == signal.SIGTTIN:
            logger.info("SIGTTIN received, adding processor to pool")
            pool.increment()
        elif sig == signal.SIGTTOU:
            logger.info("SIGTTOU received, removing processor from pool")
            pool.decrement()
        elif sig == signal.SIGUSR1:
            self.log_pool_info("received SIGUSR1")
        elif sig == signal.SIGUSR2:
            logger.info("SIGUSR2 received, toggling graceful shutdown and pause")
            pool.toggle_pause()
