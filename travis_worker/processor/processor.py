"""A processor: takes one job at a time from its own stream and runs it through the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from travis_worker import metrics
from travis_worker.contracts import Job, JobSource, JobStream
from travis_worker.logs import log_context
from travis_worker.processor.env import REQUEUE, JobEnv
from travis_worker.processor.pipeline import Outcome, run_job

logger = logging.getLogger(__name__)
T = TypeVar("T")

# A processor whose stream cannot be opened (broker down) retries at this pace.
OPEN_RETRY_SECONDS = (0.5, 1, 2, 5, 10)


class ProcessorStatus(StrEnum):
    NEW = "new"
    WAITING = "waiting"
    PROCESSING = "processing"
    DONE = "done"


def new_processor_id(hostname: str) -> str:
    """`<uuid>@<pid>.<hostname>`, as travis-ci/worker names processors."""
    return f"{uuid.uuid4()}@{os.getpid()}.{hostname}"


class Processor:
    def __init__(
        self, processor_id: str, source: JobSource, make_env: Callable[[str], JobEnv]
    ) -> None:
        self.id = processor_id
        self.source = source
        self.env = make_env(processor_id)
        self.status = ProcessorStatus.NEW
        self.processed = 0
        self.last_job_id = 0
        self.outcomes: Counter[str] = Counter()
        """Jobs run, by how they ended: a finish state, or `reset`."""
        self._stopping = asyncio.Event()
        metrics.PROCESSORS.labels(status=self.status.value).inc()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop_gracefully(self) -> None:
        """Finish the current job, take no other."""
        self._stopping.set()

    def abort(self) -> None:
        """Interrupt the current job (it is reset) and stop."""
        self._stopping.set()
        self.env.abort.set()

    async def run(self) -> None:
        stream: JobStream | None = None
        capacity = self.env.capacity
        try:
            while not self.stopping:
                self._set_status(ProcessorStatus.WAITING)
                if not capacity.is_open:
                    # Give back the delivery this consumer holds, and take none meanwhile.
                    if stream is not None:
                        await asyncio.shield(self._close(stream))
                        stream = None
                    await self._until_stopping_or(capacity.wait_open())
                    continue
                stream = stream or await self._open_stream()
                if stream is None:
                    break  # asked to stop while the source could not be reached
                job = await self._next_job(stream)
                if job is not None:
                    await self._process(job)
                elif not self.stopping and capacity.is_open:
                    break  # the source closed for good
        finally:
            if stream is not None:
                await asyncio.shield(self._close(stream))
            # A finished processor leaves the gauge instead of piling up under "done".
            metrics.PROCESSORS.labels(status=self.status.value).dec()
            self.status = ProcessorStatus.DONE

    async def _open_stream(self) -> JobStream | None:
        attempt = 0
        while not self.stopping:
            try:
                return await self.source.open_stream()
            except Exception as exc:
                delay = OPEN_RETRY_SECONDS[min(attempt, len(OPEN_RETRY_SECONDS) - 1)]
                attempt += 1
                logger.error(
                    "couldn't subscribe to the job queue, retrying",
                    extra={"fields": {"processor": self.id, "err": str(exc), "retry_in": delay}},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        return None

    async def _next_job(self, stream: JobStream) -> Job | None:
        """The next job, or None once stopping was asked for (or consumption paused) while
        waiting."""
        return await self._until_stopping_or(
            stream.next_job(), also=self.env.capacity.closed.wait()
        )

    async def _until_stopping_or(
        self, wanted: Awaitable[T], also: Awaitable[object] | None = None
    ) -> T | None:
        """`wanted`'s result, or None if the processor is asked to stop (or `also` happens)
        first; `wanted` is then cancelled and waited for."""
        result = asyncio.ensure_future(wanted)
        others: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stopping.wait())]
        if also is not None:
            others.append(asyncio.ensure_future(also))
        try:
            await asyncio.wait({result, *others}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for other in others:
                other.cancel()
            if not result.done():
                result.cancel()
                await asyncio.wait({result})
        # A job that arrived together with the stop request is run, never dropped.
        if result.done() and not result.cancelled():
            return result.result()
        return None

    async def _process(self, job: Job) -> None:
        payload = job.payload
        self.last_job_id = payload.job.id
        self._set_status(ProcessorStatus.PROCESSING)
        with log_context(
            processor=self.id,
            job_id=payload.job.id,
            repository=payload.repository.slug,
            uuid=job.uuid,
            job_path=f"{payload.repository.slug}/jobs/{payload.job.id}",
        ):
            logger.info("starting job")
            outcome = await run_job(job, self.env)
            self.processed += 1
            self.outcomes[outcome.verdict] += 1
            self._log_finished(outcome)

    def _log_finished(self, outcome: Outcome) -> None:
        fields: dict[str, object] = {
            f"{name}_ms": round(seconds * 1000) for name, seconds in outcome.timings.items()
        }
        fields.update(instance_id=outcome.instance_id, image_name=outcome.image_name)
        if outcome.verdict == REQUEUE:
            fields.update(requeued=1, reason=outcome.requeue_reason)
        else:
            fields["state"] = outcome.verdict
        if outcome.error:
            fields["err"] = outcome.error
        logger.info("finished job", extra={"fields": fields})

    async def _close(self, stream: JobStream) -> None:
        try:
            await stream.close()
        except Exception:
            logger.exception("couldn't close job stream", extra={"fields": {"processor": self.id}})

    def _set_status(self, status: ProcessorStatus) -> None:
        metrics.PROCESSORS.labels(status=self.status.value).dec()
        metrics.PROCESSORS.labels(status=status.value).inc()
        self.status = status
