"""Everything that runs beside the pool, wired from Settings in one place.

    tracing          when opencensus-tracing-enabled / otel-tracing-enabled
    HTTP spans       always: Compute API calls counted, and traced inside a job's span
    loop-lag monitor always: travis_worker_event_loop_lag_seconds, /debug/loop
    control endpoint when remote-controller-addr or pprof-port is set
    heartbeat        when heartbeat-url is set
    log-metrics      when log-metrics is set

`configure_services(app)` is called once, before `app.run()`; the services start when the
pool does and are cancelled when it has stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from travis_worker import metrics
from travis_worker.app import WorkerApp
from travis_worker.heartbeat import HeartbeatConfig, read_token, run_heartbeat
from travis_worker.profiling import HeapProfiler, LoopLagMonitor
from travis_worker.remote import ControlServer, listen_addresses
from travis_worker.remote.debug import DebugTools
from travis_worker.telemetry import (
    TracingSetup,
    configure_tracing,
    install_requests_tracing,
    log_metrics_periodically,
)

ServiceFn = Callable[[WorkerApp], Coroutine[Any, Any, None]]


@dataclass
class Services:
    """What `configure_services` set up, for tests and for a look from a debugger."""

    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    heap: HeapProfiler = field(default_factory=HeapProfiler)
    control: ControlServer | None = None
    heartbeat: HeartbeatConfig | None = None
    tracing: TracingSetup | None = None


def configure_services(app: WorkerApp, *, tracing: bool = True) -> Services:
    """Add the services `app.settings` asks for. `tracing=False` leaves the process-wide
    tracer provider alone (tests install their own)."""
    settings = app.settings
    services = Services()
    install_requests_tracing()
    if tracing:
        services.tracing = configure_tracing(settings)
        if services.tracing is not None:
            app.add_service(_flush_traces(services.tracing))
    _expose_pool_gauges(app)
    loop_lag = services.loop_lag
    app.add_service(lambda _app: loop_lag.run())
    addresses = listen_addresses(settings.remote_controller_addr, settings.pprof_port)
    if addresses:
        services.control = ControlServer(
            app,
            addresses=addresses,
            auth=settings.remote_controller_auth,
            tools=DebugTools(services.loop_lag, services.heap),
        )
        app.add_service(services.control.serve)
    if settings.heartbeat_url:
        heartbeat = HeartbeatConfig(
            settings.heartbeat_url, read_token(settings.heartbeat_url_auth_token)
        )
        services.heartbeat = heartbeat
        app.add_service(lambda app: run_heartbeat(heartbeat, app.graceful_shutdown))
    if settings.log_metrics:
        app.add_service(lambda _app: log_metrics_periodically())
    return services


def _flush_traces(setup: TracingSetup) -> ServiceFn:
    async def flush_at_exit(_app: WorkerApp) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await setup.shutdown()

    return flush_at_exit


def _expose_pool_gauges(app: WorkerApp) -> None:
    """Read at scrape time, so they can never drift from the pool."""

    def expected_size() -> float:
        return float(app.pool.expected_size) if app.pool is not None else 0.0

    metrics.POOL_EXPECTED_SIZE.set_function(expected_size)
    metrics.WORKER_READY.set_function(lambda: 1.0 if app.ready else 0.0)
