"""The `fake` backend (travis-ci/worker `backend/fake.go`): no machine at all, for tests and demos.

Keys: `LOG_OUTPUT` (written verbatim as the job's output), `RUN_SLEEP` and
`STARTUP_DURATION` (Go durations), `ERROR` (exactly `true`: every run fails, so the job is
requeued; useful to rehearse requeue storms), `EXIT_CODE` (the exit code every run reports).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from travis_worker.backends.base import Output, Progress, ProviderContext
from travis_worker.config import parse_duration_setting
from travis_worker.errors import ConfigError, InstanceLostError
from travis_worker.job import StartAttributes


@dataclass(frozen=True)
class FakeConfig:
    log_output: str = ""
    run_sleep: timedelta = timedelta(0)
    startup_duration: timedelta = timedelta(0)
    error: bool = False
    exit_code: int = 0


def parse_config(keys: dict[str, str]) -> FakeConfig:
    exit_code = keys.get("EXIT_CODE", "0")
    if not exit_code.lstrip("-").isdigit():
        raise ConfigError(f"invalid value {exit_code!r} for TRAVIS_WORKER_FAKE_EXIT_CODE")
    return FakeConfig(
        log_output=keys.get("LOG_OUTPUT", ""),
        run_sleep=parse_duration_setting(
            "TRAVIS_WORKER_FAKE_RUN_SLEEP", keys.get("RUN_SLEEP", "0")
        ),
        startup_duration=parse_duration_setting(
            "TRAVIS_WORKER_FAKE_STARTUP_DURATION", keys.get("STARTUP_DURATION", "0")
        ),
        error=keys.get("ERROR") == "true",
        exit_code=int(exit_code),
    )


class FakeInstance:
    id = "fake"
    image_name = "fake"
    zone = ""
    supports_progress = False

    def __init__(self, config: FakeConfig) -> None:
        self._config = config
        self.startup_duration = config.startup_duration
        self.stopped = False

    async def upload_script(self, script: bytes, progress: Progress) -> None:
        """Nothing to upload to."""

    async def run_script(self, output: Output) -> int:
        if self._config.error:
            raise InstanceLostError("fake backend configured to error")
        await asyncio.sleep(self._config.run_sleep.total_seconds())
        if self._config.log_output:
            await output.write(self._config.log_output.encode())
        return self._config.exit_code

    async def stop(self) -> None:
        self.stopped = True


class FakeProvider:
    supports_progress = False

    def __init__(self, config: FakeConfig) -> None:
        self._config = config

    async def setup(self) -> None:
        """Nothing to set up."""

    async def has_capacity(self) -> bool:
        """No machine, no quota."""
        return True

    async def start(self, attrs: StartAttributes, progress: Progress) -> FakeInstance:
        await asyncio.sleep(self._config.startup_duration.total_seconds())
        return FakeInstance(self._config)

    async def close(self) -> None:
        """Nothing to release."""


def create_provider(context: ProviderContext) -> FakeProvider:
    return FakeProvider(parse_config(dict(context.config)))
