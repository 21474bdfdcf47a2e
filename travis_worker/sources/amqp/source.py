"""Job consumption from the job queue (travis-ci/worker `amqp_job_queue.go`): one channel
per processor, prefetch 1, consumer tag `build-job-consumer` with `x-priority`.

Unlike travis-ci/worker, an unusable delivery never stalls a processor, and a job is never
dropped without a state: a body that is not JSON or holds no usable job id is rejected
without requeue, so a dead-letter exchange configured on the queue keeps it for
inspection; a job whose `config` is unusable is errored with the user-facing "job config"
text, and one with another value its run needs but cannot use (`timeouts`, `vm_*`) is
errored with a line naming the field. A wrong value that only decorates the job
(`repository.slug`, `queue`, …) is logged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from travis_worker import metrics
from travis_worker.compat import texts
from travis_worker.contracts import Job, error_job
from travis_worker.errors import PayloadError
from travis_worker.job import ParsedDelivery, StartAttributes, StartDefaults, parse_job_body
from travis_worker.sources.amqp.job import AmqpJob
from travis_worker.sources.amqp.outbox import Outbox
from travis_worker.sources.amqp.redelivery import RunningJobs

logger = logging.getLogger(__name__)

CONSUMER_TAG = "build-job-consumer"
# How long closing a stream waits for a delivery that is being rejected or errored.
CLOSE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class AmqpSourceConfig:
    queue_name: str
    consumer_priority: int = 0
    start_defaults: StartDefaults = field(default_factory=StartDefaults)


class AmqpJobSource:
    """The AMQP job queue. Each processor opens its own stream (its own channel)."""

    name = "amqp"

    def __init__(
        self,
        connection: AbstractRobustConnection,
        config: AmqpSourceConfig,
        states: Outbox,
        logs: Outbox,
    ) -> None:
        self._connection = connection
        self._config = config
        self._states = states
        self._logs = logs
        self.running = RunningJobs()
        self._consuming = False

    async def open_stream(self) -> AmqpJobStream:
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1)
        stream = AmqpJobStream(self, channel, self._config)
        try:
            await stream.start()
        except BaseException:
            await channel.close()
            raise
        if not self._consuming:  # one line per queue, not one per processor
            self._consuming = True
            fields = {"queue": self._config.queue_name, "priority": self._config.consumer_priority}
            logger.info("consuming", extra={"fields": fields})
        return stream

    async def to_job(self, message: AbstractIncomingMessage) -> AmqpJob | None:
        """Turn a delivery into a job, or settle it here and return None."""
        try:
            parsed = parse_job_body(message.body)
        except PayloadError as exc:
            metrics.JOBS_REJECTED.labels(reason="payload").inc()
            logger.error(
                "rejecting unusable job delivery",
                extra={"fields": {"err": str(exc), "delivery_tag": message.delivery_tag}},
            )
            await message.reject(requeue=False)
            return None
        job_id = parsed.payload.job.id
        if parsed.ignored:
            ignored = "; ".join(map(str, parsed.ignored))
            logger.warning(
                "ignoring unusable payload fields",
                extra={"fields": {"job_id": job_id, "err": ignored}},
            )
        attrs, unusable = self._start_attributes(parsed)
        job = AmqpJob(
            message,
            parsed.payload,
            parsed.raw,
            attrs,
            states=self._states,
            logs=self._logs,
            on_settled=self.running.settled,
        )
        if unusable is None:
            return job
        reason, err, text = unusable
        metrics.JOBS_REJECTED.labels(reason=reason).inc()
        logger.error(
            "erroring job with unusable payload",
            extra={"fields": {"job_id": job_id, "reason": reason, "err": err}},
        )
        try:
            await error_job(job, text)
        except Exception:
            # Unacked, so the broker redelivers it when this channel closes.
            logger.exception("couldn't error job", extra={"fields": {"job_id": job_id}})
        return None

    def _start_attributes(
        self, parsed: ParsedDelivery
    ) -> tuple[StartAttributes, tuple[str, str, str] | None]:
        """The job's start attributes and, if the job cannot run, why: (metric reason, log
        detail, the text for the job's log)."""
        config_error: tuple[str, str, str] | None = None
        try:
            attrs = StartAttributes.from_payload(parsed.payload, self._config.start_defaults)
        except PayloadError as exc:
            config_error = ("config", str(exc), texts.JOB_CONFIG_UNPARSABLE)
            attrs = StartAttributes(job_id=parsed.payload.job.id)
        if parsed.problems:
            detail = "; ".join(map(str, parsed.problems))
            return attrs, ("payload_field", detail, texts.payload_unusable(parsed.problems))
        return attrs, config_error


class AmqpJobStream:
    """One consumer on its own channel.

    Deliveries are turned into jobs in the consumer callback, not in next_job(): a processor
    that stops waiting (drain, pool shrink) cancels next_job(), and that must never cut an
    unusable delivery's reject or error report in half.
    """

    def __init__(
        self, source: AmqpJobSource, channel: AbstractChannel, config: AmqpSourceConfig
    ) -> None:
        self._source = source
        self._channel = channel
        self._config = config
        self._jobs: asyncio.Queue[AmqpJob] = asyncio.Queue()
        self._handling = asyncio.Lock()
        self._consumer_tag: str | None = None
        self._queue: AbstractQueue | None = None
        self._taken: AmqpJob | None = None

    async def start(self) -> None:
        config = self._config
        self._queue = await self._channel.declare_queue(
            config.queue_name, durable=True, auto_delete=False
        )
        self._consumer_tag = await self._queue.consume(
            self._on_delivery,
            consumer_tag=CONSUMER_TAG,
            arguments={"x-priority": config.consumer_priority},
        )

    async def _on_delivery(self, message: AbstractIncomingMessage) -> None:
        async with self._handling:
            job = await self._source.to_job(message)
            if job is not None:
                self._jobs.put_nowait(job)

    async def next_job(self) -> Job | None:
        await self._return_unsettled()
        while True:
            job = await self._jobs.get()
            try:
                admitted = await self._source.running.admit(
                    job.delivery_key, redelivered=job.redelivered
                )
            except asyncio.CancelledError:
                self._jobs.put_nowait(job)  # not taken: close() gives it back to the broker
                raise
            if admitted:
                self._taken = job
                return job
            logger.info(
                "dropping redelivery of a job that already finished here",
                extra={"fields": {"job_id": job.payload.job.id}},
            )
            await job.drop()

    async def _return_unsettled(self) -> None:
        """The job handed out last came back without a state (its run was cut short): give
        its delivery back rather than leave it unacked, which would stall this consumer."""
        job, self._taken = self._taken, None
        if job is not None and not job.settled:
            logger.error(
                "job ended without a state, handing it back",
                extra={"fields": {"job_id": job.payload.job.id}},
            )
            await job.release()

    async def close(self) -> None:
        """Cancel the consumer and hand back any delivery not yet taken."""
        try:
            if self._consumer_tag is not None and self._queue and not self._channel.is_closed:
                await self._queue.cancel(self._consumer_tag)
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                async with self._handling:  # let a delivery being handled finish
                    pass
            while not self._jobs.empty():
                await self._jobs.get_nowait().release()
            await self._return_unsettled()
        finally:
            if not self._channel.is_closed:
                await self._channel.close()
