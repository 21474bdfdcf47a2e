"""The life of one job, top to bottom (travis-ci/worker `processor.go` and its steps).

Each resource the run holds is an `async with`, so its cleanup runs on every way out
(success, error, cancel command, time limit, immediate shutdown) in the reverse order:
the instance's deletion starts, the log gets its last text and final part, then the job's
state is reported (finish or reset, which acknowledges the delivery), and the run waits
for the deletion. travis-ci/worker reports the finish before the log's final part; here the
log is complete before the hub hears that the job is done.

The long steps run under `JobRun.step`, so a cancel command, a time limit or an immediate
shutdown interrupts only that step, never the cleanups.
"""

from __future__ import annotations

import asyncio

from opentelemetry import trace

from travis_worker.contracts import Job
from travis_worker.processor.env import JobEnv
from travis_worker.processor.run import JobRun, Outcome
from travis_worker.processor.steps.instance import started_instance, upload_script
from travis_worker.processor.steps.log import job_log
from travis_worker.processor.steps.run_script import run_script, worker_info
from travis_worker.processor.steps.script import fetch_script
from travis_worker.processor.steps.state import report_received, report_started, state_reported

tracer = trace.get_tracer("travis_worker.processor")

__all__ = ["Outcome", "run_job"]


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
        run = JobRun(job, env, cancel)
        async with state_reported(run):
            script = await fetch_script(run)
            await report_received(run)
            await run.step("sleep", asyncio.sleep(env.config.initial_sleep.total_seconds()))
            async with job_log(run) as log, started_instance(run, log) as instance:
                await upload_script(run, log, instance, script)
                await report_started(run, log, instance)
                await log.write_text(worker_info(run, instance))
                run.finished(await run_script(run, log, instance))
    return run.outcome
