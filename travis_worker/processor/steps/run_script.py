"""The worker-info fold, then the script itself (travis-ci/worker
`step_write_worker_info.go`, `step_run_script.go`).

While the script runs, the log's two limits join the run's interrupts: a log over
`max-log-length` or silent for `log-timeout` stops the script, as does the hard timeout.
"""

from __future__ import annotations

from travis_worker.backends.base import Instance
from travis_worker.buildinfo import build_info
from travis_worker.compat import texts
from travis_worker.compat.durations import format_go_duration
from travis_worker.job import FinishState
from travis_worker.processor.env import Verdict
from travis_worker.processor.joblog import JobLog, ScriptOutput
from travis_worker.processor.run import JobRun


def worker_info(run: JobRun, instance: Instance) -> str:
    build = build_info()
    lines = [
        f"{texts.ANSI_YELLOW}Worker information{texts.ANSI_RESET}",
        f"hostname: {run.env.processor_id}",
        f"version: {build.version_string} {build.revision_url}",
        f"instance: {instance.id} {instance.image_name} (via {run.job.source_name})",
        f"startup: {format_go_duration(instance.startup_duration)}",
    ]
    return texts.fold("worker_info", "\n".join(lines))


async def run_script(run: JobRun, log: JobLog, instance: Instance) -> Verdict:
    run.interrupts = {**run.interrupts, "max_length": log.max_length_reached, "silence": log.silent}
    log.start_silence_watch()
    output = ScriptOutput(log, run.env.provider_name, instance.zone)
    limit = run.hard_timeout.total_seconds()
    exit_code = await run.step("run_script", instance.run_script(output), limit)
    if log.max_length_reached.is_set():
        return run.errored(texts.MAX_LOG_LENGTH)
    return FinishState.from_exit_code(exit_code)
