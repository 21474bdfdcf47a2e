"""OpenTelemetry tracing: where job spans go and how many jobs are traced.

travis-ci/worker exported OpenCensus spans to Stackdriver when `opencensus-tracing-enabled`
was set, sampling 1 job in `opencensus-sampling-rate`. The same settings work here, with
OpenTelemetry and the Cloud Trace exporter; `otel-tracing-enabled` is the same switch under
its new name, and `otel-traces-exporter` adds OTLP (any collector) or the console.

The pipeline creates its spans through the global tracer provider, so nothing is traced
(and nothing costs) until `configure_tracing` installs one.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from travis_worker.buildinfo import build_info
from travis_worker.config import Settings, read_json_setting
from travis_worker.errors import ConfigError

logger = logging.getLogger(__name__)

TRACE_APPEND_SCOPE = "https://www.googleapis.com/auth/trace.append"
EXPORTERS = ("gcp_trace", "otlp", "console", "none")
# Spans still queued at shutdown get this long to leave; the process must not hang on a
# collector that is down.
SHUTDOWN_SECONDS = 10.0


@dataclass
class TracingSetup:
    provider: TracerProvider
    exporters: list[SpanExporter] = field(default_factory=list)

    async def shutdown(self) -> None:
        """Export what is queued and stop, without blocking the loop."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self.provider.shutdown), SHUTDOWN_SECONDS)
        except TimeoutError:
            logger.warning("trace export did not finish at shutdown")


def tracing_enabled(settings: Settings) -> bool:
    return settings.opencensus_tracing_enabled or settings.otel_tracing_enabled


def exporter_names(settings: Settings) -> list[str]:
    names = [name.strip() for name in settings.otel_traces_exporter.split(",") if name.strip()]
    for name in names:
        if name not in EXPORTERS:
            raise ConfigError(
                f"unknown trace exporter {name!r} in otel-traces-exporter "
                f"(known: {', '.join(EXPORTERS)})"
            )
    return [name for name in names if name != "none"]


def build_tracing(settings: Settings) -> TracingSetup | None:
    """A tracer provider with the configured exporters, or None when tracing is off."""
    if not tracing_enabled(settings):
        return None
    sampler = ParentBased(TraceIdRatioBased(1.0 / settings.opencensus_sampling_rate))
    resource = Resource.create(
        {
            "service.name": "travis-worker",
            "service.version": build_info().version,
            "host.name": settings.hostname,
        }
    )
    provider = TracerProvider(sampler=sampler, resource=resource)
    exporters = [_exporter(name, settings) for name in exporter_names(settings)]
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return TracingSetup(provider, exporters)


def configure_tracing(settings: Settings) -> TracingSetup | None:
    """Install the tracer provider process-wide (once per process, as OpenTelemetry allows)."""
    setup = build_tracing(settings)
    if setup is None:
        return None
    trace.set_tracer_provider(setup.provider)
    logger.info(
        "tracing enabled",
        extra={
            "fields": {
                "exporters": ",".join(exporter_names(settings)) or "none",
                "sampling_rate": settings.opencensus_sampling_rate,
            }
        },
    )
    return setup


def _exporter(name: str, settings: Settings) -> SpanExporter:
    if name == "gcp_trace":
        return cloud_trace_exporter(settings)
    if name == "otlp":
        return _otlp_exporter(settings)
    return ConsoleSpanExporter()


def cloud_trace_exporter(settings: Settings) -> SpanExporter:
    """Cloud Trace, with the credentials travis-ci/worker would use: the account JSON
    (inline or a file) scoped to trace.append, else the default credentials."""
    import google.auth.exceptions
    from google.cloud.trace_v2 import TraceServiceClient
    from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

    credentials, account_project = trace_credentials(settings.stackdriver_trace_account_json)
    project_id = settings.stackdriver_project_id or account_project or None
    try:
        # The exporter warns that it is deprecated in favour of OTLP to Google; it is the
        # one that speaks Cloud Trace's own API, which is what this setting promises.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = None if credentials is None else TraceServiceClient(credentials=credentials)
            exporter: SpanExporter = CloudTraceSpanExporter(  # type: ignore[no-untyped-call]
                project_id=project_id, client=client
            )
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            "Cloud Trace export needs credentials: set stackdriver-trace-account-json or "
            f"provide default credentials ({exc})"
        ) from exc
    return exporter


def trace_credentials(account_json: str) -> tuple[Any, str | None]:
    """(credentials, project id) from inline JSON or a file path; (None, None) if unset.

    Only service-account keys and user credentials are accepted: other credential types
    (external accounts) make google-auth fetch URLs named in the file."""
    info = read_json_setting(account_json, "TRAVIS_WORKER_STACKDRIVER_TRACE_ACCOUNT_JSON")
    if info is None:
        return None, None
    from google.auth import exceptions as auth_errors
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    kind = info.get("type")
    try:
        if kind == "service_account":
            credentials: Any = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[TRACE_APPEND_SCOPE]
            )
            return credentials, info.get("project_id")
        if kind == "authorized_user":
            credentials = user_credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
                info, scopes=[TRACE_APPEND_SCOPE]
            )
            return credentials, info.get("quota_project_id")
    except (ValueError, KeyError, auth_errors.GoogleAuthError) as exc:
        raise ConfigError(f"invalid stackdriver-trace-account-json: {exc}") from exc
    raise ConfigError(
        f"invalid stackdriver-trace-account-json: unsupported credential type {kind!r} "
        "(use a service_account key)"
    )


def _otlp_exporter(settings: Settings) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigError(
            "otlp trace export needs the package opentelemetry-exporter-otlp-proto-http"
        ) from exc
    endpoint = settings.otel_exporter_otlp_traces_endpoint or None
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint)
    return exporter
