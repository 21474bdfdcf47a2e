"""The job log (travis-ci/worker `step_open_log_writer.go`): open for the job's run, then
closed on every way out with the text that says why the job ended, and its final part."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from travis_worker.processor.joblog import JobLog
from travis_worker.processor.run import JobRun

logger = logging.getLogger(__name__)

# Closing has its own time, outside any step's: a broker that is slow to take the last
# parts must not cut the log short.
LOG_CLOSE_SECONDS = 150.0


@asynccontextmanager
async def job_log(run: JobRun) -> AsyncIterator[JobLog]:
    log = await run.open_log()
    try:
        yield log
    except Exception as exc:
        run.conclude(exc)
        raise
    finally:
        await run.cleanup(close_log(run))


async def close_log(run: JobRun) -> None:
    """Write the last text (opening the log if the run never did) and the final part."""
    try:
        log = run.log or await run.open_log()
        if run.last_text and not log.closed:
            await asyncio.wait_for(log.write_and_close(run.last_text), LOG_CLOSE_SECONDS)
        await asyncio.wait_for(log.close(), LOG_CLOSE_SECONDS)
    except Exception:
        logger.exception("couldn't close job log")
