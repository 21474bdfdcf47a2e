"""Each part of the worker built from Settings: the small config it needs, and nothing else
(ARCHITECTURE habit 7).

A part's config is a dataclass whose fields are named as the settings they come from,
less a prefix (`build_apt_cache` → BuildApiConfig.apt_cache); `config_from` copies them,
so a new setting is one field in one place.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from travis_worker.backends import create_provider
from travis_worker.backends.base import Provider, ProviderContext
from travis_worker.buildscript.api import BuildApiConfig
from travis_worker.config import Settings, provider_config
from travis_worker.contracts import JobSource
from travis_worker.errors import ConfigError
from travis_worker.job import StartDefaults
from travis_worker.processor.env import PipelineConfig
from travis_worker.sources.amqp.connection import BrokerConfig
from travis_worker.sources.amqp.outbox import OutboxLimits
from travis_worker.sources.amqp.setup import AmqpSetup, open_amqp_source
from travis_worker.sources.amqp.source import AmqpSourceConfig
from travis_worker.sources.cancellation import CancellationBroadcaster
from travis_worker.sources.filequeue import FileJobSource
from travis_worker.sources.multisource import MultiSource

C = TypeVar("C")


def config_from(config_type: type[C], settings: Settings, prefix: str = "", **renamed: str) -> C:
    """A `config_type` dataclass filled from the settings named `prefix` + field name (or as
    `renamed` says); fields with no such setting keep their defaults."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(config_type):  # type: ignore[arg-type]
        name = renamed.get(field.name, prefix + field.name)
        if name in Settings.model_fields:
            values[field.name] = getattr(settings, name)
    return config_type(**values)


def pipeline_config(settings: Settings) -> PipelineConfig:
    return config_from(PipelineConfig, settings)


def start_defaults(settings: Settings) -> StartDefaults:
    return config_from(StartDefaults, settings, "default_")


def build_api_config(settings: Settings) -> BuildApiConfig:
    if not settings.build_api_uri:
        raise ConfigError("build-api-uri is not set (TRAVIS_WORKER_BUILD_API_URI)")
    return config_from(
        BuildApiConfig,
        settings,
        "build_",
        uri="build_api_uri",
        insecure_skip_verify="build_api_insecure_skip_verify",
    )


def build_provider(settings: Settings, environ: Mapping[str, str]) -> Provider:
    keys = provider_config(settings.provider_name, environ)
    if settings.travis_site:
        keys["TRAVIS_SITE"] = settings.travis_site
    return create_provider(settings.provider_name, ProviderContext(settings.hostname, keys))


def amqp_setup(settings: Settings) -> AmqpSetup:
    if not settings.queue_name:
        raise ConfigError("queue-name is not set (TRAVIS_WORKER_QUEUE_NAME)")

    def broker(prefix: str) -> BrokerConfig:
        return BrokerConfig(
            getattr(settings, f"{prefix}amqp_uri"),
            settings.amqp_heartbeat,
            getattr(settings, f"{prefix}amqp_tls_cert"),
            getattr(settings, f"{prefix}amqp_tls_cert_path"),
            settings.amqp_insecure,
        )

    return AmqpSetup(
        jobs_broker=broker(""),
        logs_broker=broker("logs_") if settings.logs_amqp_uri else None,
        source=AmqpSourceConfig(
            queue_name=settings.queue_name,
            consumer_priority=settings.amqp_consumer_priority,
            start_defaults=start_defaults(settings),
        ),
        spool_root=spool_root(settings),
        outbox_limits=OutboxLimits(settings.outbox_memory_size, settings.spool_max_size),
        sharded_logs=settings.rabbitmq_sharding,
        state_update_pool_size=settings.state_update_pool_size,
    )


def spool_root(settings: Settings) -> Path:
    if settings.spool_dir:
        return Path(settings.spool_dir)
    return Path(tempfile.gettempdir()) / "travis-worker-spool"


async def open_sources(
    settings: Settings, broadcaster: CancellationBroadcaster, stack: AsyncExitStack
) -> JobSource:
    """The job sources `queue-type` names, opened; `stack` closes what they hold."""
    sources: list[JobSource] = []
    for queue_type in settings.queue_types:
        if queue_type == "amqp":
            sources.append(await open_amqp_source(amqp_setup(settings), broadcaster, stack))
        elif queue_type == "file":
            sources.append(
                FileJobSource(
                    settings.base_dir,
                    settings.queue_name,
                    settings.file_polling_interval,
                    start_defaults(settings),
                )
            )
        else:
            raise ConfigError(f"unknown queue type {queue_type!r}")
    if not sources:
        raise ConfigError("queue-type names no job source")
    return sources[0] if len(sources) == 1 else MultiSource(sources)
