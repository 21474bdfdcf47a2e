"""A job taken from RabbitMQ: reports its state to `reporting.jobs.builds` and owns the
acknowledgement of its delivery (travis-ci/worker `amqp_job.go`).

State updates go through the state outbox, in order. `received` and `started` do not wait
for the broker (a job runs on through an outage); the final state does: the delivery is
acknowledged only once the broker confirmed it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from travis_worker.compat import gojson
from travis_worker.contracts import LogWriter
from travis_worker.errors import AckError, WorkerError
from travis_worker.job import FinishState, JobData, JobPayload, StartAttributes
from travis_worker.sources.amqp.logwriter import AmqpLogWriter
from travis_worker.sources.amqp.outbox import Outbox
from travis_worker.sources.amqp.redelivery import DeliveryKey

logger = logging.getLogger(__name__)


class AmqpJob(JobData):
    """One delivery. Exactly one of finish() or requeue() acknowledges it."""

    source_name = "amqp"

    def __init__(
        self,
        message: AbstractIncomingMessage,
        payload: JobPayload,
        raw_payload: dict[str, Any],
        start_attributes: StartAttributes,
        *,
        states: Outbox,
        logs: Outbox,
        on_settled: Callable[..., None] = lambda job_id, **_: None,
    ) -> None:
        super().__init__(payload, raw_payload, start_attributes)
        self._message = message
        self._states = states
        self._logs = logs
        self._on_settled = on_settled
        self._state_count = payload.meta.state_update_count
        self._received_at: datetime | None = None
        self._started_at: datetime | None = None
        self._finished_at: datetime | None = None
        self._settled = False

    @property
    def settled(self) -> bool:
        """True once finish() or requeue() published and acknowledged."""
        return self._settled

    async def received(self) -> None:
        self._received_at = datetime.now(UTC)
        await self._send_state("received", "job:test:receive")

    async def started(self) -> None:
        self._started_at = datetime.now(UTC)
        await self._send_state("started", "job:test:start")

    async def finish(self, state: FinishState) -> None:
        self._finished_at = datetime.now(UTC)
        # An early error reports all three times equal, as travis-ci/worker does.
        self._received_at = self._received_at or self._finished_at
        self._started_at = self._started_at or self._finished_at
        await self._settle(state.value, "job:test:finish")

    async def requeue(self) -> None:
        await self._settle("reset", "job:test:reset")

    async def release(self) -> None:
        """Give the delivery back to the broker untouched: a stream closing before the job
        was taken, or a run that ended without reporting a state."""
        self._settled = True
        try:
            await self._message.nack(requeue=True)
        finally:
            self._on_settled(self.delivery_key, state_published=False, acked=False)

    async def open_log(self) -> LogWriter:
        return AmqpLogWriter(self._logs, self._payload.job.id, self.uuid)

    @property
    def redelivered(self) -> bool:
        return bool(self._message.redelivered)

    @property
    def delivery_key(self) -> DeliveryKey:
        """Which delivery this is: a restarted job has the same id but a higher count."""
        return (self._payload.job.id, self._payload.meta.state_update_count)

    async def _settle(self, state: str, event_type: str) -> None:
        if self._settled:
            raise WorkerError(f"job {self._payload.job.id} already settled")
        published = acked = False
        try:
            await self._states.wait_confirmed(await self._send_state(state, event_type))
            published = self._settled = True
            await self._message.ack()
            acked = True
        except Exception as exc:  # aio-pika raises several types for a dead channel
            if not published:
                # Not even queued for the broker (the spool could not be written): unacked,
                # the delivery would stall this consumer (prefetch 1) on a live channel;
                # give it back so the job runs again.
                await self._give_back()
                raise
            # The broker redelivers it; the source drops that redelivery (redelivery.py).
            raise AckError(f"ack of job {self._payload.job.id} failed: {exc!r}") from exc
        finally:
            self._on_settled(self.delivery_key, state_published=published, acked=acked)

    async def _give_back(self) -> None:
        self._settled = True
        try:
            await self._message.nack(requeue=True)
        except Exception:
            logger.warning("couldn't hand the job back; the broker redelivers it on reconnect")

    async def drop(self) -> None:
        """Acknowledge without reporting: a redelivery of a job that already finished."""
        self._settled = True
        await self._message.ack()

    def state_body(self, state: str) -> dict[str, Any]:
        """The state update body for `state` at the current counter."""
        meta: dict[str, Any] = {"state_update_count": self._state_count}
        if self.instance_id:
            meta["instance_id"] = self.instance_id
        if self.uuid:
            meta["uuid"] = self.uuid
        body: dict[str, Any] = {"id": self._payload.job.id, "state": state, "meta": meta}
        if self._start_attributes.vm_size:
            body["vm_size"] = self._start_attributes.vm_size
        for key, moment in (
            ("queued_at", self._payload.job.queued_at),
            ("received_at", self._received_at),
            ("started_at", self._started_at),
            ("finished_at", self._finished_at),
        ):
            if moment is not None:
                body[key] = gojson.rfc3339(moment)
        if self._payload.trace:
            body["trace"] = True
        return body

    async def _send_state(self, state: str, event_type: str) -> int:
        """Queue the update for `state`; returns its outbox sequence number."""
        # Go marshals this body from a map, hence sorted keys.
        body = gojson.dumps(self.state_body(state), sort_keys=True)
        self._state_count += 1
        return await self._states.post(self._payload.job.id, event_type, body, may_wait=False)
