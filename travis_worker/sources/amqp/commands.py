"""The `worker.commands` fanout (travis-ci/worker `amqp_canceller.go`): `cancel_job`
commands from the hub reach the pipeline running that job through the in-process
broadcaster."""

from __future__ import annotations

import json
import logging

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustConnection,
    ExchangeType,
)

from travis_worker.sources.amqp.connection import COMMANDS_EXCHANGE
from travis_worker.sources.cancellation import CancellationBroadcaster

logger = logging.getLogger(__name__)


class CommandConsumer:
    """Consumes worker commands on a private, exclusive, server-named queue."""

    def __init__(
        self, connection: AbstractRobustConnection, broadcaster: CancellationBroadcaster
    ) -> None:
        self._connection = connection
        self._broadcaster = broadcaster
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        channel = await self._connection.channel()
        self._channel = channel
        await channel.set_qos(prefetch_count=1)
        exchange = await channel.declare_exchange(
            COMMANDS_EXCHANGE, ExchangeType.FANOUT, durable=False, auto_delete=False
        )
        queue = await channel.declare_queue("", durable=True, auto_delete=False, exclusive=True)
        await queue.bind(exchange, routing_key="")
        await queue.consume(self._handle, consumer_tag="commands", exclusive=True)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            self.process(message.body)
        finally:
            # Acked whatever happened: a command that cannot be read will never improve.
            await message.ack()

    def process(self, body: bytes) -> None:
        try:
            command = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            logger.error("unreadable worker command", extra={"fields": {"err": str(exc)}})
            return
        if not isinstance(command, dict) or command.get("type") != "cancel_job":
            logger.warning(
                "unknown worker command",
                extra={"fields": {"command": body.decode(errors="replace")}},
            )
            return
        job_id = command.get("job_id")
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            logger.error("cancel_job without a job id", extra={"fields": {"command": command}})
            return
        reason = command.get("reason")
        reason = reason if isinstance(reason, str) else ""
        delivered = self._broadcaster.broadcast(job_id, reason)
        logger.info(
            "cancel_job received",
            extra={"fields": {"job_id": job_id, "subscribers": delivered, "reason": reason}},
        )

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
