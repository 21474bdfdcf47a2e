"""The life of one job, top to bottom (travis-ci/worker `processor.go` and its steps).

    payload filter → build script → received → initial sleep → open log → start instance
    → upload script → started → worker info → run script

and then, on every path: the deletion of the instance starts, and in this order the last
text and the final log part, then the job's state (finish or reset, which acknowledges the
delivery).

travis-ci/worker reports the finish before the log's final part; here the log is complete
before the hub hears that the job is done. The long steps (build script, sleep, instance
start, upload, script) run under `run_step`, so a cancel command, a time limit or an
immediate shutdown interrupts only that step, and the cleanup always runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from opentelemetry import trace

from travis_worker import REVISION_URL, __version__, metrics, texts
from travis_worker.backends.base import Instance, ProgressEntry, ProgressState, no_progress
from travis_worker.cancellation import CancelSubscription
from travis_worker.durations import format_go_duration
from travis_worker.errors import (
    AckError,
    BackendError,
    BuildScriptError,
    JobAbortError,
    StaleVMError,
)
from travis_worker.job import FinishState, Job, LogMeta
from travis_worker.logs import bind
from travis_worker.processor.env import REQUEUE, JobEnv, Verdict
from travis_worker.processor.joblog import JobLog, ScriptOutput
from travis_worker.processor.payload_filter import filter_payload
from travis_worker.processor.steps import StepInterrupted, run_step

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("travis_worker.processor")
T = TypeVar("T")

# Cleanup has its own time, outside any step's: a VM deletion must not be cut short.
LOG_CLOSE_SECONDS = 150.0
INSTANCE_STOP_SECONDS = 300.0
# Cleanup tasks that outlive a cancelled pipeline are kept here until they finish.
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


async def run_job(job: Job, env: JobEnv) -> Outcome:
    """Run `job` until its state is settled. Never raises for anything a job can do."""
    attributes: dict[str, str | int] = {
        "app": "worker",
        "job_id": job.payload.job.id,
        "repo": job.payload.repository.slug,
        "infra": env.provider_name,
        "site": env.config.travis_site,
    }
    with (
        tracer.start_as_current_span("ProcessorRun", attributes=attributes),
        env.broadcaster.subscribe(job.payload.job.id) as cancel,
    ):
        return await JobRun(job, env, cancel).execute()


class JobRun:
    """One run of the pipeline; each step is a method below `_run`."""

    def __init__(self, job: Job, env: JobEnv, cancel: CancelSubscription) -> None:
        self.job = job
        self.env = env
        self.config = env.config
        self.cancel = cancel
        self.outcome = Outcome()
        self.interrupts = {"cancel": cancel.event, "abort": env.abort}
        self.log: JobLog | None = None
        self.instance: Instance | None = None
        self.last_text = ""
        self.keep_instance = False
        payload_timeouts = job.payload.timeouts
        self.hard_timeout = self.config.hard_timeout
        if payload_timeouts.hard_limit:
            self.hard_timeout = timedelta(seconds=payload_timeouts.hard_limit)
        self.log_timeout = self.config.log_timeout
        if payload_timeouts.log_silence:
            self.log_timeout = timedelta(seconds=payload_timeouts.log_silence)
        self.received_at = time.monotonic()

    async def execute(self) -> Outcome:
        try:
            self.outcome.verdict = await self._run()
        except Exception as exc:
            self.outcome.verdict = self._verdict_for(exc)
            self.outcome.error = str(exc) or type(exc).__name__
        finally:
            # Also reached when this task itself is cancelled: the verdict then stays the
            # default requeue, and the cleanup finishes even if we cannot wait for it.
            cleanup = asyncio.ensure_future(self._cleanup())
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                _orphaned_cleanups.add(cleanup)
                cleanup.add_done_callback(_orphaned_cleanups.discard)
                raise
        return self.outcome

    async def _run(self) -> Verdict:
        job = self.job
        job.raw_payload = await filter_payload(
            self.config.payload_filter_executable, job.raw_payload
        )
        script = await self._step(
            "generate_script", self.env.scripts.generate(job.raw_payload, job.payload.job.id)
        )
        await self._report_received()
        await self._step("sleep", asyncio.sleep(self.config.initial_sleep.total_seconds()))
        self.log = await self._open_log()
        self.instance = await self._start_instance()
        await self._upload_script(script)
        await self._report_started()
        await self.log.write_text(self._worker_info())
        return await self._run_script()

    async def _step(self, name: str, step: Awaitable[T], limit: float | None = None) -> T:
        return await run_step(
            name, step, interrupts=self.interrupts, limit=limit, timings=self.outcome.timings
        )

    async def _report_received(self) -> None:
        metrics.JOBS_RECEIVED.inc()
        queued_at = self.job.payload.job.queued_at
        if queued_at is not None:
            metrics.JOB_QUEUE_TIME.observe(max(0.0, time.time() - queued_at.timestamp()))
        try:
            await self.job.received()
        except Exception:
            logger.exception("couldn't send received state update")

    async def _open_log(self) -> JobLog:
        writer = await self.job.open_log()
        return JobLog(
            writer, max_length=self.config.max_log_length, silence_timeout=self.log_timeout
        )

    def _progress_shown(self, supports_progress: bool) -> bool:
        if not supports_progress or not self.config.progress_type:
            return False
        if self.config.progress_type != "text":
            logger.warning(
                "unknown progress type",
                extra={"fields": {"progress_type": self.config.progress_type}},
            )
            return False
        return True

    async def _progress(self, entry: ProgressEntry) -> None:
        if self.log is not None and not self.log.closed:
            await self.log.write_text(entry.render())

    async def _start_instance(self) -> Instance:
        assert self.log is not None
        attrs = self.job.start_attributes
        attrs.hard_timeout = self.hard_timeout
        attrs.progress_type = self.config.progress_type
        shown = self._progress_shown(self.env.provider.supports_progress)
        if shown:
            await self.log.write_text(texts.fold_start("step_start_instance", "Starting instance"))
        try:
            start = self.env.provider.start(attrs, self._progress if shown else no_progress)
            instance = await self._step(
                "start_instance", start, self.config.startup_timeout.total_seconds()
            )
        except StepInterrupted as exc:
            if shown and exc.reason == "timeout":
                await self._progress(
                    ProgressEntry(
                        "timeout waiting for instance to be ready",
                        ProgressState.FAILURE,
                        interrupts=True,
                    )
                )
            raise
        finally:
            if shown:
                await self.log.write_text(texts.fold_end("step_start_instance"))
        self.outcome.instance_id = instance.id
        self.outcome.image_name = instance.image_name
        bind(instance_id=instance.id)
        return instance

    async def _upload_script(self, script: bytes) -> None:
        assert self.log is not None and self.instance is not None
        shown = self._progress_shown(self.instance.supports_progress)
        if shown:
            await self.log.write_text(texts.fold_start("step_upload_script", "Uploading script"))
        try:
            upload = self.instance.upload_script(script, self._progress if shown else no_progress)
            await self._step(
                "upload_script", upload, self.config.script_upload_timeout.total_seconds()
            )
        finally:
            if shown:
                await self.log.write_text(texts.fold_end("step_upload_script"))

    async def _report_started(self) -> None:
        assert self.log is not None and self.instance is not None
        payload = self.job.payload
        self.job.instance_id = self.instance.id
        self.log.mark_started(
            LogMeta(
                payload.job.queued_at, payload.repository.slug, payload.queue, self.config.infra
            )
        )
        metrics.JOBS_STARTED.inc()
        try:
            await self.job.started()
        except Exception:
            logger.exception("couldn't send started state update")

    def _worker_info(self) -> str:
        assert self.instance is not None
        lines = [
            f"{texts.ANSI_YELLOW}Worker information{texts.ANSI_RESET}",
            f"hostname: {self.env.processor_id}",
            f"version: v{__version__} {REVISION_URL}",
            f"instance: {self.instance.id} {self.instance.image_name} (via {self.job.source_name})",
            f"startup: {format_go_duration(self.instance.startup_duration)}",
        ]
        return texts.fold("worker_info", "\n".join(lines))

    async def _run_script(self) -> Verdict:
        assert self.log is not None and self.instance is not None
        self.interrupts = {
            **self.interrupts,
            "max_length": self.log.max_length_reached,
            "silence": self.log.silent,
        }
        self.log.start_silence_watch()
        output = ScriptOutput(self.log, self.env.provider_name, self.instance.zone)
        run = self.instance.run_script(output)
        exit_code = await self._step("run_script", run, self.hard_timeout.total_seconds())
        if self.log.max_length_reached.is_set():
            return self._errored(texts.MAX_LOG_LENGTH)
        return FinishState.from_exit_code(exit_code)

    def _errored(self, text: str) -> Verdict:
        self.last_text = text
        return FinishState.ERRORED

    def _verdict_for(self, exc: Exception) -> Verdict:
        """The error type decides the fate of the job (ARCHITECTURE habit 3)."""
        if isinstance(exc, StepInterrupted):
            return self._verdict_for_interrupt(exc)
        if isinstance(exc, JobAbortError):
            return self._errored(exc.user_message)
        if isinstance(exc, BuildScriptError):
            logger.error("couldn't generate build script", extra={"fields": {"err": str(exc)}})
            return self._errored(texts.SCRIPT_GENERATION_FAILED)
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
            return self._errored(texts.MAX_LOG_LENGTH)
        if exc.reason == "silence":
            self.keep_instance = self.config.skip_shutdown_on_log_timeout
            return self._errored(texts.log_silence(self.log_timeout))
        if exc.reason == "timeout" and exc.step == "run_script":
            return self._errored(texts.HARD_TIMEOUT)
        return self._requeue(f"{exc.step}_{exc.reason}", exc)

    def _requeue(self, reason: str, exc: Exception) -> Verdict:
        self.outcome.requeue_reason = reason
        logger.warning("requeueing job", extra={"fields": {"reason": reason, "err": str(exc)}})
        return REQUEUE

    async def _cleanup(self) -> None:
        # The instance's deletion starts first and runs alongside: a broker that takes its
        # time with the last log part or the state must not keep a VM running (and billed)
        # past a shutdown's deadline.
        stopping = asyncio.ensure_future(self._stop_instance())
        await self._close_log()
        await self._settle()
        await stopping

    async def _close_log(self) -> None:
        try:
            if self.log is None and self.last_text:
                self.log = await self._open_log()
            if self.log is None:
                return
            if self.last_text and not self.log.closed:
                await asyncio.wait_for(self.log.write_and_close(self.last_text), LOG_CLOSE_SECONDS)
            await asyncio.wait_for(self.log.close(), LOG_CLOSE_SECONDS)
        except Exception:
            logger.exception("couldn't close job log")

    async def _settle(self) -> None:
        verdict = self.outcome.verdict
        duration = time.monotonic() - self.received_at
        try:
            if verdict == REQUEUE:
                metrics.JOBS_REQUEUED.labels(reason=self.outcome.requeue_reason).inc()
                metrics.JOB_DURATION.labels(state="reset").observe(duration)
                await self.job.requeue()
            else:
                state = FinishState(verdict)
                metrics.JOBS_FINISHED.labels(state=state.value).inc()
                metrics.JOB_DURATION.labels(state=state.value).observe(duration)
                await self.job.finish(state)
        except AckError as exc:
            logger.warning(
                "job state reported, acknowledgement failed", extra={"fields": {"err": str(exc)}}
            )
        except Exception:
            logger.exception("couldn't report the job's final state")

    async def _stop_instance(self) -> None:
        if self.instance is None:
            return
        if self.keep_instance:
            logger.info("skipping shutdown, VM will be left running")
            return
        try:
            await asyncio.wait_for(self.instance.stop(), INSTANCE_STOP_SECONDS)
        except Exception:
            logger.exception("couldn't stop instance")
