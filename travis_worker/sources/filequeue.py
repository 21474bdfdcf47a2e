"""The file job queue (travis-ci/worker `file_job_queue.go`): job payloads as JSON files
moving through directories.

    <base-dir>/<queue>/10-created.d/<name>.json   waiting
                      30-received.d               taken by a processor
                      50-started.d                script running
                      70-finished.d               done; <name>.state holds the state
                      log/<name>.log              the job log

A processor claims a file by renaming it into 30-received.d (atomic), so two processors
never take the same job. Unparsable files are left where they are and reported once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from travis_worker.contracts import Job, LogWriter
from travis_worker.errors import ConfigError, PayloadError
from travis_worker.job import (
    FinishState,
    JobData,
    JobPayload,
    StartAttributes,
    StartDefaults,
    parse_job_body,
)
from travis_worker.sources.streamlog import StreamLogWriter

logger = logging.getLogger(__name__)

CREATED, RECEIVED, STARTED, FINISHED, LOG = (
    "10-created.d",
    "30-received.d",
    "50-started.d",
    "70-finished.d",
    "log",
)


class FileJob(JobData):
    source_name = "file"

    def __init__(
        self,
        queue_dir: Path,
        name: str,
        payload: JobPayload,
        raw: dict[str, Any],
        attrs: StartAttributes,
    ) -> None:
        super().__init__(payload, raw, attrs)
        self._queue_dir = queue_dir
        self._name = name
        self._where = RECEIVED

    def _move(self, stage: str) -> None:
        source = self._queue_dir / self._where / f"{self._name}.json"
        source.rename(self._queue_dir / stage / f"{self._name}.json")
        self._where = stage

    async def received(self) -> None:
        """Already in 30-received.d: claiming the file moved it there."""

    async def started(self) -> None:
        self._move(STARTED)

    async def finish(self, state: FinishState) -> None:
        self._move(FINISHED)
        (self._queue_dir / FINISHED / f"{self._name}.state").write_text(state.value)

    async def requeue(self) -> None:
        self._move(CREATED)

    async def release(self) -> None:
        self._move(CREATED)

    async def open_log(self) -> LogWriter:
        path = self._queue_dir / LOG / f"{self._name}.log"
        return StreamLogWriter(path.open("ab"), owns_stream=True)


class FileJobSource:
    name = "file"

    def __init__(
        self, base_dir: str, queue_name: str, polling_interval: timedelta, defaults: StartDefaults
    ) -> None:
        if not queue_name:
            raise ConfigError("the file queue needs --queue-name (a directory name)")
        base = Path(base_dir)
        if not base.is_dir():
            raise ConfigError(f"file queue base dir {base_dir!r} does not exist")
        probe = base / ".write-test"
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"file queue base dir {base_dir!r} is not writable: {exc}") from exc
        self.queue_dir = base / queue_name
        for stage in (CREATED, RECEIVED, STARTED, FINISHED, LOG):
            (self.queue_dir / stage).mkdir(parents=True, exist_ok=True)
        self.polling_interval = polling_interval.total_seconds()
        self._defaults = defaults
        self._reported_bad: set[str] = set()
        self._consuming = False

    async def open_stream(self) -> FileJobStream:
        if not self._consuming:  # one line per queue, not one per processor
            self._consuming = True
            logger.info("consuming", extra={"fields": {"queue_dir": str(self.queue_dir)}})
        return FileJobStream(self)

    def claim_next(self) -> Job | None:
        for path in sorted((self.queue_dir / CREATED).glob("*.json")):
            job = self._claim(path)
            if job is not None:
                return job
        return None

    def _claim(self, path: Path) -> Job | None:
        try:
            parsed = parse_job_body(path.read_bytes())
            if parsed.problems:
                raise PayloadError("; ".join(map(str, parsed.problems)))
            attrs = StartAttributes.from_payload(parsed.payload, self._defaults)
        except (OSError, PayloadError) as exc:
            if path.name not in self._reported_bad:
                self._reported_bad.add(path.name)
                logger.error(
                    "skipping unusable job file",
                    extra={"fields": {"file": str(path), "err": str(exc)}},
                )
            return None
        try:
            path.rename(self.queue_dir / RECEIVED / path.name)
        except OSError:
            return None  # another processor claimed it first
        return FileJob(self.queue_dir, path.stem, parsed.payload, parsed.raw, attrs)


class FileJobStream:
    def __init__(self, source: FileJobSource) -> None:
        self._source = source

    async def next_job(self) -> Job | None:
        while True:
            job = self._source.claim_next()
            if job is not None:
                return job
            await asyncio.sleep(self._source.polling_interval)

    async def close(self) -> None:
        """Claimed jobs are always handed out at once; nothing to give back."""
