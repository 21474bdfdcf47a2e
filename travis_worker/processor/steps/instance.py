"""The job's instance (travis-ci/worker `step_start_instance.go`, `step_upload_script.go`):
started for the job's run and deleted on every way out, then the script uploaded to it.

With `--progress-type text` the boot and the upload are shown in the job log, each in its
own fold. The deletion starts as soon as the run is over and runs beside the log's closing
and the state report: a slow broker must not keep a VM running (and billed) past a
shutdown's deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from travis_worker.backends.base import (
    Instance,
    Progress,
    ProgressEntry,
    ProgressState,
    no_progress,
)
from travis_worker.compat import texts
from travis_worker.logs import bind
from travis_worker.processor.interrupt import StepInterrupted
from travis_worker.processor.joblog import JobLog
from travis_worker.processor.run import JobRun

logger = logging.getLogger(__name__)

# A VM deletion must not be cut short, whatever step was running.
INSTANCE_STOP_SECONDS = 300.0


@asynccontextmanager
async def started_instance(run: JobRun, log: JobLog) -> AsyncIterator[Instance]:
    instance = await _start(run, log)
    try:
        yield instance
    except Exception as exc:
        run.conclude(exc)
        raise
    finally:
        if run.keep_instance:
            logger.info("skipping shutdown, VM will be left running")
        else:
            run.deletion = asyncio.ensure_future(_stop(instance))


async def upload_script(run: JobRun, log: JobLog, instance: Instance, script: bytes) -> None:
    shown = _progress_shown(run, instance.supports_progress)
    async with _fold(log, shown, "step_upload_script", "Uploading script") as progress:
        upload = instance.upload_script(script, progress)
        await run.step("upload_script", upload, run.config.script_upload_timeout.total_seconds())


async def _start(run: JobRun, log: JobLog) -> Instance:
    provider = run.env.provider
    attrs = run.job.start_attributes
    attrs.hard_timeout = run.hard_timeout
    attrs.progress_type = run.config.progress_type
    shown = _progress_shown(run, provider.supports_progress)
    async with _fold(log, shown, "step_start_instance", "Starting instance") as progress:
        try:
            start = provider.start(attrs, progress)
            limit = run.config.startup_timeout.total_seconds()
            instance = await run.step("start_instance", start, limit)
        except StepInterrupted as exc:
            if exc.reason == "timeout":
                message = "timeout waiting for instance to be ready"
                await progress(ProgressEntry(message, ProgressState.FAILURE, interrupts=True))
            raise
    run.outcome.instance_id = instance.id
    run.outcome.image_name = instance.image_name
    bind(instance_id=instance.id)
    return instance


@asynccontextmanager
async def _fold(log: JobLog, shown: bool, name: str, title: str) -> AsyncIterator[Progress]:
    """A fold in the job log holding the step's progress, when progress is shown."""
    if not shown:
        yield no_progress
        return

    async def progress(entry: ProgressEntry) -> None:
        if not log.closed:
            await log.write_text(entry.render())

    await log.write_text(texts.fold_start(name, title))
    try:
        yield progress
    finally:
        await log.write_text(texts.fold_end(name))


def _progress_shown(run: JobRun, supported: bool) -> bool:
    progress_type = run.config.progress_type
    if not supported or not progress_type:
        return False
    if progress_type != "text":
        logger.warning("unknown progress type", extra={"fields": {"progress_type": progress_type}})
        return False
    return True


async def _stop(instance: Instance) -> None:
    try:
        await asyncio.wait_for(instance.stop(), INSTANCE_STOP_SECONDS)
    except Exception:
        logger.exception("couldn't stop instance")
