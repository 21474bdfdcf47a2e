"""Getting the job's script: the optional payload filter, then the build API
(travis-ci/worker `step_transform_build_json.go`, `step_generate_script.go`)."""

from __future__ import annotations

from travis_worker.processor.run import JobRun
from travis_worker.processor.steps.payload_filter import filter_payload


async def fetch_script(run: JobRun) -> bytes:
    job = run.job
    job.raw_payload = await filter_payload(run.config.payload_filter_executable, job.raw_payload)
    generate = run.env.scripts.generate(job.raw_payload, job.payload.job.id)
    return await run.step("generate_script", generate)
