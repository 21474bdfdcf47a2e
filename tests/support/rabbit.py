"""RabbitMQ plumbing for tests: a private vhost per test session, and a reader of the
`reporting.jobs.builds` / `reporting.jobs.logs` queues the worker publishes to."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

# The states that end a delivery (a finish state, or reset: the hub queues the job again).
TERMINAL_STATES = frozenset({"passed", "failed", "errored", "cancelled", "reset"})


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def have_rabbitmqctl() -> bool:
    return shutil.which("rabbitmqctl") is not None


def create_vhost() -> str:
    name = f"travis-worker-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


@contextmanager
def temporary_user(vhost: str) -> Iterator[tuple[str, str]]:
    """A broker user of its own (name, password) with rights on `vhost` only, for the
    block: a password no other string in a test contains, so a leak of it can be seen."""
    name = f"travis-worker-test-{uuid.uuid4().hex[:8]}"
    password = f"amqp-secret-{uuid.uuid4().hex}"
    rabbitmqctl("add_user", name, password)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")
        yield name, password
    finally:
        rabbitmqctl("delete_user", name)


@dataclass
class Received:
    body: dict[str, Any]
    raw: bytes
    type: str | None
    content_type: str | None
    delivery_mode: int | None
    timestamp: Any
    routing_key: str | None
    exchange: str | None
    arrived_at: float = field(default_factory=time.time)
    """Wall-clock time it reached the reader (log latency: benchmarks/scale.py)."""


@dataclass
class Reporting:
    """Everything the worker reported, grouped by job id."""

    connection: AbstractRobustConnection
    states: dict[int, list[Received]] = field(default_factory=dict)
    parts: dict[int, list[Received]] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, *, logs_queue: str = "reporting.jobs.logs") -> Reporting:
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(
            "reporting", aio_pika.ExchangeType.TOPIC, durable=True
        )
        builds = await channel.declare_queue("reporting.jobs.builds", durable=True)
        logs = await channel.declare_queue(logs_queue, durable=True)
        await logs.bind(exchange, routing_key="reporting.jobs.logs")
        await builds.consume(self._on_state)
        await logs.consume(self._on_part)
        return self

    async def _on_state(self, message: AbstractIncomingMessage) -> None:
        await self._on(message, self.states)

    async def _on_part(self, message: AbstractIncomingMessage) -> None:
        await self._on(message, self.parts)

    async def _on(self, message: AbstractIncomingMessage, into: dict[int, list[Received]]) -> None:
        body = json.loads(message.body)
        received = Received(
            body,
            message.body,
            message.type,
            message.content_type,
            message.delivery_mode.value if message.delivery_mode else None,
            message.timestamp,
            message.routing_key,
            message.exchange,
        )
        into.setdefault(int(body["id"]), []).append(received)
        await message.ack()
        self._changed.set()

    def state_names(self, job_id: int) -> list[str]:
        return [r.body["state"] for r in self.states.get(job_id, [])]

    def log_text(self, job_id: int) -> str:
        parts = sorted(self.parts.get(job_id, []), key=lambda r: r.body["number"])
        return "".join(p.body["log"] for p in parts)

    def assert_log_whole(self, job_id: int) -> None:
        """Parts numbered 0..n without a gap or a duplicate, exactly one of them final."""
        parts = self.parts.get(job_id, [])
        numbers = sorted(part.body["number"] for part in parts)
        assert numbers == list(range(len(numbers))), f"job {job_id}: parts {numbers}"
        assert sum(1 for part in parts if part.body["final"]) == 1, f"job {job_id}: finals"

    def log_closed(self, job_id: int) -> bool:
        return any(p.body["final"] for p in self.parts.get(job_id, []))

    def faults(self, job_id: int) -> list[str]:
        """What is wrong with the job's reports, by what the hub and travis-logs expect:
        exactly one finishing state (the last), and a sound log (`log_faults`)."""
        names = self.state_names(job_id)
        finishing = [n for n in names if n in TERMINAL_STATES]
        if len(finishing) != 1 or names[-1:] != finishing:
            return [f"states {names}: want exactly one finishing state, last"]
        return self.log_faults(job_id)

    def log_faults(self, job_id: int) -> list[str]:
        """What is wrong with the job's log: parts numbered 0..n without gaps or repeats,
        exactly one `final` part (the last), no part content over 1653 bytes."""
        faults: list[str] = []
        parts = sorted((p.body for p in self.parts.get(job_id, [])), key=lambda b: b["number"])
        numbers = [part["number"] for part in parts]
        if numbers != list(range(len(parts))):
            faults.append(f"part numbers {numbers}: want 0..{len(parts) - 1}")
        finals = [part["number"] for part in parts if part["final"]]
        if not parts or finals != numbers[-1:]:
            faults.append(f"final parts {finals}: want exactly one, the last")
        oversized = [part["number"] for part in parts if len(part["log"].encode()) > 1653]
        if oversized:
            faults.append(f"parts {oversized} hold more than 1653 bytes")
        return faults

    async def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    def finished(self, job_id: int, with_log: bool = True) -> bool:
        """The job has a terminal state (or reset) and, `with_log`, its final log part."""
        names = self.state_names(job_id)
        finished = bool(names) and names[-1] in TERMINAL_STATES
        return finished and (self.log_closed(job_id) or not with_log)

    async def wait_finished(
        self, job_id: int, timeout: float = 20.0, with_log: bool = True
    ) -> None:
        """Until the job has a terminal state (or reset) and, `with_log`, its final log part."""
        await self.wait_for(lambda: self.finished(job_id, with_log), timeout)
