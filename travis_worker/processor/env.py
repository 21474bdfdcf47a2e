"""What the pipeline needs from the world, handed over once per processor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal

from travis_worker.backends.base import Provider
from travis_worker.contracts import ScriptGenerator
from travis_worker.job import FinishState
from travis_worker.processor.backpressure import CapacityGate, ResetPacer
from travis_worker.sources.cancellation import CancellationBroadcaster


@dataclass(frozen=True)
class PipelineConfig:
    """The settings the pipeline reads ; the rest of Settings stays out."""

    hard_timeout: timedelta = timedelta(minutes=50)
    log_timeout: timedelta = timedelta(minutes=10)
    initial_sleep: timedelta = timedelta(seconds=1)
    startup_timeout: timedelta = timedelta(minutes=4)
    script_upload_timeout: timedelta = timedelta(minutes=3, seconds=30)
    max_log_length: int = 4_500_000
    progress_type: str = ""
    payload_filter_executable: str = ""
    skip_shutdown_on_log_timeout: bool = False
    infra: str = ""
    travis_site: str = ""


@dataclass
class JobEnv:
    """One processor's collaborators. `abort` is set by an immediate shutdown; `capacity`
    and `resets` are shared by every processor of the pool."""

    config: PipelineConfig
    provider: Provider
    provider_name: str
    scripts: ScriptGenerator
    broadcaster: CancellationBroadcaster
    processor_id: str
    capacity: CapacityGate
    resets: ResetPacer
    abort: asyncio.Event = field(default_factory=asyncio.Event)


REQUEUE: Final = "reset"
Verdict = FinishState | Literal["reset"]
"""How a job ends: a finish state, or `reset` (the hub queues it again)."""
