"""The job's state updates: `received`, `started`, and the final one (a finish state or
`reset`), which acknowledges the delivery (travis-ci/worker `step_send_received.go`,
`step_update_state.go`).

`received` and `started` are best effort: a job whose `started` could not be sent still
runs. The final state is reported last, once the log is complete; the run then waits for
its instance's deletion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from travis_worker import metrics
from travis_worker.backends.base import Instance
from travis_worker.errors import AckError
from travis_worker.job import FinishState, LogMeta
from travis_worker.processor.backpressure import pause_unless
from travis_worker.processor.env import REQUEUE
from travis_worker.processor.joblog import JobLog
from travis_worker.processor.run import JobRun
from travis_worker.processor.steps.log import close_log

logger = logging.getLogger(__name__)


@asynccontextmanager
async def state_reported(run: JobRun) -> AsyncIterator[None]:
    """The block is the job's run; on every way out its state is reported. An error of
    the run is taken in here: it decided the verdict, and the run is over."""
    try:
        yield
    except Exception as exc:
        run.conclude(exc)
    finally:
        await run.cleanup(_settle(run))


async def report_received(run: JobRun) -> None:
    metrics.JOBS_RECEIVED.inc()
    queued_at = run.job.payload.job.queued_at
    if queued_at is not None:
        metrics.JOB_QUEUE_TIME.observe(max(0.0, time.time() - queued_at.timestamp()))
    try:
        await run.job.received()
    except Exception:
        logger.exception("couldn't send received state update")


async def report_started(run: JobRun, log: JobLog, instance: Instance) -> None:
    payload = run.job.payload
    run.job.instance_id = instance.id
    log.mark_started(
        LogMeta(payload.job.queued_at, payload.repository.slug, payload.queue, run.config.infra)
    )
    metrics.JOBS_STARTED.inc()
    try:
        await run.job.started()
    except Exception:
        logger.exception("couldn't send started state update")


async def _settle(run: JobRun) -> None:
    if run.log is None and run.last_text:
        # The run failed before its log was opened: the user still reads why.
        await close_log(run)
    await _report_final_state(run)
    if run.deletion is not None:
        await run.deletion


async def _report_final_state(run: JobRun) -> None:
    verdict = run.outcome.verdict
    duration = time.monotonic() - run.received_at
    try:
        if verdict == REQUEUE:
            await _pace_reset(run)
            metrics.JOBS_REQUEUED.labels(reason=run.outcome.requeue_reason).inc()
            metrics.JOB_DURATION.labels(state="reset").observe(duration)
            await run.job.requeue()
        else:
            run.env.resets.finished(run.job.payload.job.id)
            state = FinishState(verdict)
            metrics.JOBS_FINISHED.labels(state=state.value).inc()
            metrics.JOB_DURATION.labels(state=state.value).observe(duration)
            await run.job.finish(state)
    except AckError as exc:
        logger.warning(
            "job state reported, acknowledgement failed", extra={"fields": {"err": str(exc)}}
        )
    except Exception:
        logger.exception("couldn't report the job's final state")


async def _pace_reset(run: JobRun) -> None:
    """Hold a job this worker keeps resetting for the same reason (backpressure.py); a
    worker shutting down resets at once."""
    reason = run.outcome.requeue_reason
    if run.env.abort.is_set():
        return
    pause = run.env.resets.pause_before_reset(run.job.payload.job.id, reason)
    if pause:
        metrics.REQUEUE_DELAY.observe(pause)
        logger.info("pausing before reset", extra={"fields": {"reason": reason, "pause_s": pause}})
        await pause_unless(run.env.abort, pause)
