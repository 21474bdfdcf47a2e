"""One run of the pipeline: what its steps share, and how it ends.

The verdict is decided once: by the script's exit code, or by the first error that reaches
a cleanup (ARCHITECTURE habit 3: the error type decides the job's fate). Each cleanup of
the run is shielded from cancellation and waits for the one before it, so a cancelled
pipeline still closes the log before it reports the state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from travis_worker.compat import texts
from travis_worker.contracts import Job
from travis_worker.errors import (
    BackendError,
    BuildScriptError,
    CapacityError,
    JobAbortError,
    StaleVMError,
)
from travis_worker.job import FinishState
from travis_worker.processor.env import REQUEUE, JobEnv, Verdict
from travis_worker.processor.interrupt import StepInterrupted, run_step
from travis_worker.processor.joblog import JobLog
from travis_worker.sources.cancellation import CancelSubscription

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Cleanups that outlive a cancelled pipeline are kept here until they finish.
_orphaned_cleanups: set[asyncio.Task[None]] = set()


@dataclass
class Outcome:
    """How a job ended, for the `finished job` log line, metrics and tests."""

    verdict: Verdict = REQUEUE
    requeue_reason: str = "interrupted"
    instance_id: str = ""
    image_name: str = ""
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)


class JobRun:
    def __init__(self, job: Job, env: JobEnv, cancel: CancelSubscription) -> None:
        self.job = job
        self.env = env
        self.config = env.config
        self.cancel = cancel
        self.outcome = Outcome()
        self.interrupts = {"cancel": cancel.event, "abort": env.abort}
        self.log: JobLog | None = None
        self.deletion: asyncio.Future[None] | None = None
        """The instance's deletion, started by the first cleanup and awaited by the last."""
        self.last_text = ""
        """Written into the log before its final part: why the job ended, for the user."""
        self.keep_instance = False
        timeouts = job.payload.timeouts
        self.hard_timeout = self.config.hard_timeout
        if timeouts.hard_limit:
            self.hard_timeout = timedelta(seconds=timeouts.hard_limit)
        self.log_timeout = self.config.log_timeout
        if timeouts.log_silence:
            self.log_timeout = timedelta(seconds=timeouts.log_silence)
        self.received_at = time.monotonic()
        self._concluded = False
        self._last_cleanup: asyncio.Future[None] | None = None

    async def step(self, name: str, step: Awaitable[T], limit: float | None = None) -> T:
        """`step`, interrupted by a cancel, an immediate shutdown or `limit` seconds."""
        return await run_step(
            name, step, interrupts=self.interrupts, limit=limit, timings=self.outcome.timings
        )

    async def open_log(self) -> JobLog:
        writer = await self.job.open_log()
        self.log = JobLog(
            writer, max_length=self.config.max_log_length, silence_timeout=self.log_timeout
        )
        return self.log

    async def cleanup(self, cleanup: Coroutine[Any, Any, None]) -> None:
        """Run `cleanup` after the cleanups before it, to its end even if this task is
        cancelled meanwhile (the task then stops waiting; the cleanup goes on)."""
        before = self._last_cleanup

        async def in_turn() -> None:
            if before is not None:
                await asyncio.wait({before})
            await cleanup

        task = asyncio.ensure_future(in_turn())
        self._last_cleanup = task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            _orphaned_cleanups.add(task)
            task.add_done_callback(_orphaned_cleanups.discard)
            raise

    # -- how the run ends ---------------------------------------------------------------

    def finished(self, verdict: Verdict) -> None:
        """The script ran to its end."""
        self._concluded = True
        self.outcome.verdict = verdict

    def conclude(self, exc: BaseException) -> None:
        """Decide the verdict from the first error to reach a cleanup. A cancelled pipeline
        (not an Exception) keeps the default: requeue."""
        if self._concluded or not isinstance(exc, Exception):
            return
        self._concluded = True
        self.outcome.verdict = self._verdict_for(exc)
        self.outcome.error = str(exc) or type(exc).__name__
        if isinstance(exc, CapacityError):
            self.env.capacity.trip(exc)

    def errored(self, text: str) -> Verdict:
        self.last_text = text
        return FinishState.ERRORED

    def _verdict_for(self, exc: Exception) -> Verdict:
        if isinstance(exc, StepInterrupted):
            return self._verdict_for_interrupt(exc)
        if isinstance(exc, JobAbortError):
            return self.errored(exc.user_message)
        if isinstance(exc, BuildScriptError):
            logger.error("couldn't generate build script", extra={"fields": {"err": str(exc)}})
            return self.errored(texts.SCRIPT_GENERATION_FAILED)
        if isinstance(exc, StaleVMError):
            return self._requeue("stale_vm", exc)
        if isinstance(exc, BackendError):
            return self._requeue(type(exc).__name__, exc)
        logger.error("job pipeline failed", exc_info=exc)
        return self._requeue("internal_error", exc)

    def _verdict_for_interrupt(self, exc: StepInterrupted) -> Verdict:
        if exc.reason == "cancel":
            if self.log is not None:
                self.last_text = texts.cancelled(self.cancel.reason)
            return FinishState.CANCELLED
        if exc.reason == "max_length":
            return self.errored(texts.MAX_LOG_LENGTH)
        if exc.reason == "silence":
            self.keep_instance = self.config.skip_shutdown_on_log_timeout
            return self.errored(texts.log_silence(self.log_timeout))
        if exc.reason == "timeout" and exc.step == "run_script":
            return self.errored(texts.HARD_TIMEOUT)
        return self._requeue(f"{exc.step}_{exc.reason}", exc)

    def _requeue(self, reason: str, exc: Exception) -> Verdict:
        self.outcome.requeue_reason = reason
        logger.warning("requeueing job", extra={"fields": {"reason": reason, "err": str(exc)}})
        return REQUEUE
