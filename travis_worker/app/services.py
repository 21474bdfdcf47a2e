"""What runs beside the pool, planned from Settings:

    loop-lag monitor always: travis_worker_event_loop_lag_seconds, /debug/loop
    control endpoint when remote-controller-addr or pprof-port is set
    heartbeat        when heartbeat-url is set
    log-metrics      when log-metrics is set

`WorkerApp` plans them when it is built (so a test can look at the plan) and runs them once
the pool exists; they are cancelled when the pool has stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from travis_worker.config import Settings
from travis_worker.profiling import HeapProfiler, LoopLagMonitor
from travis_worker.remote import ControlServer, listen_addresses
from travis_worker.remote.api import ControlledWorker
from travis_worker.remote.debug import DebugTools
from travis_worker.remote.heartbeat import HeartbeatConfig, read_token, run_heartbeat
from travis_worker.telemetry import log_metrics_periodically

Runner = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Services:
    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    heap: HeapProfiler = field(default_factory=HeapProfiler)
    control: ControlServer | None = None
    heartbeat: HeartbeatConfig | None = None
    log_metrics: bool = False

    def runners(self, worker: ControlledWorker) -> dict[str, Runner]:
        """Each service's coroutine function, by name."""
        runners: dict[str, Runner] = {"loop-lag": self.loop_lag.run}
        if self.control is not None:
            runners["control"] = self.control.serve
        heartbeat = self.heartbeat
        if heartbeat is not None:
            runners["heartbeat"] = lambda: run_heartbeat(heartbeat, worker.graceful_shutdown)
        if self.log_metrics:
            runners["log-metrics"] = log_metrics_periodically
        return runners

    @asynccontextmanager
    async def running(self, worker: ControlledWorker) -> AsyncIterator[None]:
        """The services run while the block does."""
        tasks = [
            asyncio.create_task(run(), name=name) for name, run in self.runners(worker).items()
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def plan_services(settings: Settings, worker: ControlledWorker) -> Services:
    services = Services(log_metrics=settings.log_metrics)
    addresses = listen_addresses(settings.remote_controller_addr, settings.pprof_port)
    if addresses:
        services.control = ControlServer(
            worker,
            addresses=addresses,
            auth=settings.remote_controller_auth,
            tools=DebugTools(services.loop_lag, services.heap),
        )
    if settings.heartbeat_url:
        token = read_token(settings.heartbeat_url_auth_token)
        services.heartbeat = HeartbeatConfig(settings.heartbeat_url, token)
    return services
