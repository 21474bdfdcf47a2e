"""`travis-worker run-job PAYLOAD.json`: one job through the real pipeline, on a terminal.

The job log streams to stdout as the script prints it; state changes go to stderr; the exit
status follows the finish state (0 passed, 1 failed, 2 anything else). This is the
embedded demo and an operator's smoke test of a backend and a build API.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO

from travis_worker import texts
from travis_worker.buildscript import BuildApiClient, ScriptGenerator, StaticScript
from travis_worker.cancellation import CancellationBroadcaster
from travis_worker.config import Settings
from travis_worker.errors import ConfigError, PayloadError
from travis_worker.job import (
    FinishState,
    JobData,
    JobPayload,
    StartAttributes,
    error_job,
    parse_job_body,
)
from travis_worker.processor.env import JobEnv
from travis_worker.processor.pipeline import run_job
from travis_worker.processor.processor import new_processor_id
from travis_worker.streamlog import StreamLogWriter


class TerminalJob(JobData):
    """A job read from a file whose state updates are printed instead of published."""

    source_name = "file"

    def __init__(
        self, payload: JobPayload, raw: dict[str, Any], attrs: StartAttributes, out: BinaryIO
    ) -> None:
        super().__init__(payload, raw, attrs)
        self._out = out
        self.states: list[str] = []

    def _report(self, state: str) -> None:
        self.states.append(state)
        print(f"travis-worker: job {self._payload.job.id} {state}", file=sys.stderr, flush=True)

    async def received(self) -> None:
        self._report("received")

    async def started(self) -> None:
        self._report("started")

    async def finish(self, state: FinishState) -> None:
        self._report(state.value)

    async def requeue(self) -> None:
        self._report("reset")

    async def release(self) -> None:
        """A job read from a file has nowhere to go back to."""

    async def open_log(self) -> StreamLogWriter:
        return StreamLogWriter(self._out, owns_stream=False)

    @property
    def exit_status(self) -> int:
        final = self.states[-1] if self.states else "reset"
        return {"passed": 0, "failed": 1}.get(final, 2)


def read_input(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path!r}: {exc.strerror}") from exc


async def run_job_file(settings: Settings, payload: bytes, script: bytes | None) -> int:
    """Run the job `payload` with the configured backend; the exit status follows its state.

    With `script` the build API is not asked (the embedded demo does this)."""
    from travis_worker.app import build_api_config, build_provider, pipeline_config, start_defaults

    try:
        parsed = parse_job_body(payload)
    except PayloadError as exc:
        raise ConfigError(f"unusable job payload: {exc}") from exc
    scripts: ScriptGenerator
    if script is not None:
        scripts = StaticScript(script)
    else:
        scripts = BuildApiClient(build_api_config(settings))
    out = sys.stdout.buffer
    try:
        attrs = StartAttributes.from_payload(parsed.payload, start_defaults(settings))
    except PayloadError:
        job = TerminalJob(parsed.payload, parsed.raw, StartAttributes(), out)
        await error_job(job, texts.JOB_CONFIG_UNPARSABLE)
        return job.exit_status
    job = TerminalJob(parsed.payload, parsed.raw, attrs, out)
    provider = build_provider(settings, os.environ)
    env = JobEnv(
        config=pipeline_config(settings),
        provider=provider,
        provider_name=settings.provider_name,
        scripts=scripts,
        broadcaster=CancellationBroadcaster(),
        processor_id=new_processor_id(settings.hostname),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Ctrl-C interrupts the job; its cleanup (instance deletion) still runs.
        loop.add_signal_handler(sig, env.abort.set)
    try:
        await provider.setup()
        await run_job(job, env)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await provider.close()
        if isinstance(scripts, BuildApiClient):
            await scripts.close()
    return job.exit_status
