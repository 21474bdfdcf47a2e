"""The contracts between the rooms: what the pipeline needs from a job, its log and its
source, and where a running script's output goes. Each method says what it promises.

Job sources (`sources/`) implement Job, LogWriter, JobStream and JobSource; the pipeline
(`processor/`) and backends (`backends/`) depend on these Protocols only.
"""

from __future__ import annotations

from typing import Any, Protocol

from travis_worker.job import FinishState, JobPayload, LogMeta, StartAttributes


class Output(Protocol):
    """Where a running script's output goes (the job log)."""

    async def write(self, data: bytes) -> None: ...


class LogWriter(Protocol):
    """A job's log stream. Bytes in; parts out, in order, ending with one final part."""

    @property
    def closed(self) -> bool:
        """True once close() or write_and_close() ran."""
        ...

    async def write(self, data: bytes) -> None:
        """Append output. Raises LogClosedError after close."""
        ...

    async def write_and_close(self, data: bytes) -> None:
        """Append a last message, flush, and send the final part, with no write in between.

        Raises LogClosedError if the log was already closed.
        """
        ...

    async def close(self) -> None:
        """Flush and send the final part. A second close does nothing."""
        ...

    def mark_started(self, meta: LogMeta) -> None:
        """Attach `meta` to the next part published."""
        ...


class Job(Protocol):
    """One job taken from a source. Owns its delivery: it acks exactly once, after the
    finishing state update (finish or requeue) was published."""

    @property
    def payload(self) -> JobPayload: ...

    @property
    def start_attributes(self) -> StartAttributes: ...

    @property
    def source_name(self) -> str:
        """Where the job came from (`amqp`, `file`), shown in the worker-info fold."""
        ...

    raw_payload: dict[str, Any]
    """The payload as received, forwarded to the build API; the payload filter replaces it."""

    instance_id: str | None
    """Set once the instance exists; later state updates carry it as `meta.instance_id`."""

    uuid: str
    """The request UUID: the payload's, or a fresh v4 UUID."""

    async def received(self) -> None:
        """Report `received`."""
        ...

    async def started(self) -> None:
        """Report `started`."""
        ...

    async def finish(self, state: FinishState) -> None:
        """Report a terminal state, then acknowledge the delivery."""
        ...

    async def requeue(self) -> None:
        """Report `reset` (the hub queues the job again), then acknowledge the delivery."""
        ...

    async def open_log(self) -> LogWriter:
        """Open this job's log stream."""
        ...

    async def release(self) -> None:
        """Give the job back to its source untouched: it was taken but will not run here."""
        ...


class ScriptGenerator(Protocol):
    """Where a job's bash script comes from (travis-build's script API, or a fixed file)."""

    async def generate(self, raw_payload: dict[str, Any], job_id: int) -> bytes:
        """Return the job's bash script or raise BuildScriptError."""
        ...


class JobStream(Protocol):
    """One processor's subscription to a source; yields one job at a time."""

    async def next_job(self) -> Job | None:
        """Wait for the next job; None when the source closed for good."""
        ...

    async def close(self) -> None:
        """Stop taking jobs; jobs received but not handed out go back to the source."""
        ...


class JobSource(Protocol):
    """A queue of jobs (AMQP, file). Each processor opens its own stream."""

    @property
    def name(self) -> str: ...

    async def open_stream(self) -> JobStream: ...


async def error_job(job: Job, message: str) -> None:
    """Write `message` into a fresh log of `job` and finish it `errored`."""
    log = await job.open_log()
    try:
        await log.write_and_close(message.encode())
    finally:
        await log.close()
    await job.finish(FinishState.ERRORED)
