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

from travis_worker.app.parts import (
    build_api_config,
    build_provider,
    pipeline_config,
    start_defaults,
)
from travis_worker.buildscript.api import BuildApiClient
from travis_worker.buildscript.static import StaticScript
from travis_worker.compat import texts
from travis_worker.config import Settings
from travis_worker.contracts import ScriptGenerator, error_job
from travis_worker.errors import ConfigError, PayloadError
from travis_worker.job import StartAttributes, parse_job_body
from travis_worker.processor.backpressure import CapacityGate, ResetPacer
from travis_worker.processor.env import JobEnv
from travis_worker.processor.pipeline import run_job
from travis_worker.processor.processor import new_processor_id
from travis_worker.sources.cancellation import CancellationBroadcaster
from travis_worker.sources.terminal import TerminalJob


def read_input(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path!r}: {exc.strerror}") from exc


async def run_job_file(settings: Settings, payload: bytes, script: bytes | None) -> int:
    """Run the job `payload` with the configured backend; the exit status follows its state.

    With `script` the build API is not asked (the embedded demo does this)."""
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
    if parsed.problems:
        job = TerminalJob(parsed.payload, parsed.raw, attrs, out)
        await error_job(job, texts.payload_unusable(parsed.problems))
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
        capacity=CapacityGate(provider.has_capacity),
        resets=ResetPacer(),
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
