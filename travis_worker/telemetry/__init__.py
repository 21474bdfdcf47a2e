"""Traces and metrics leaving the process: OpenTelemetry export (Cloud Trace, OTLP), spans
and counters for every HTTP call a cloud client makes, and the `log-metrics` lines."""

from __future__ import annotations

from travis_worker.telemetry.http_spans import compute_method, install_requests_tracing
from travis_worker.telemetry.metrics_log import log_metrics, log_metrics_periodically
from travis_worker.telemetry.tracing import TracingSetup, build_tracing, configure_tracing

__all__ = [
    "TracingSetup",
    "build_tracing",
    "compute_method",
    "configure_tracing",
    "install_requests_tracing",
    "log_metrics",
    "log_metrics_periodically",
]
