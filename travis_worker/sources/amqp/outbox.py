"""Where every state update and log part waits for its publisher confirm.

Messages are posted in order and published in that order, a window at a time, by one
sender task; a message counts as sent only once the broker confirmed it (`wait_confirmed`).
While the broker takes them, they are held in memory. When a publish fails (the broker is
down or restarting) or the unconfirmed messages pass the memory bound (a blocked or slow
broker), the outbox starts spooling: what it holds goes to disk, new messages follow it
there, and the sender works through the spool until it is empty. So a broker outage
delays messages and loses none, memory stays bounded, and a worker killed mid-outage
leaves its spool for the next worker on the host to replay (`replay.py`).

Only a connection failure makes a message go out again; a broker that is slow to confirm
is waited for (see publishers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from travis_worker import metrics
from travis_worker.sources.amqp.spool import Message, Spool

logger = logging.getLogger(__name__)

PUBLISH_WINDOW = 64
"""Messages in flight at once, each awaiting its confirm: waiting for every confirm before
the next publish would cap the worker at one message per broker round trip."""
RETRY_INITIAL_SECONDS = 0.25
# A spool that fills and drains by turns is reported once a minute, not at every turn.
FULL_REPORT_SECONDS = 60.0
CLOSE_DRAIN_SECONDS = 1.0
"""At close, what was just posted (a job's last parts at a shutdown) gets this long to go
out before it is left to the spool."""
RETRY_MAX_SECONDS = 5.0

Publish = Callable[[Message], Awaitable[None]]
"""Publishes one message and returns once the broker confirmed it; raises on failure."""


@dataclass(frozen=True)
class OutboxLimits:
    memory_bytes: int = 32 * 1024 * 1024
    """Unconfirmed bytes held in memory before the outbox spools to disk."""
    spool_bytes: int = 1024 * 1024 * 1024
    """Unconfirmed bytes the spool holds; past it, log output waits (state updates do not)."""


async def publish_window(publish: Publish, window: list[Message]) -> list[BaseException | None]:
    """Publish `window` at once; each result is None (confirmed) or the failure."""
    results = await asyncio.gather(
        *(publish(message) for message in window), return_exceptions=True
    )
    return [result if isinstance(result, BaseException) else None for result in results]


class Outbox:
    def __init__(self, name: str, publish: Publish, spool: Spool, limits: OutboxLimits) -> None:
        self.name = name
        self._publish = publish
        self._spool = spool
        self._limits = limits
        self._seq = itertools.count(1)
        self._last_posted = 0
        self._queue: deque[Message] = deque()
        """Messages held in memory, oldest first; empty while spooling."""
        self._memory_bytes = 0
        """Bytes of the messages in memory, including those in flight."""
        self._spooling = not spool.empty
        self._confirmed_through = 0
        self._confirmed_above: set[int] = set()
        self._changed = asyncio.Condition()
        self._work = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._in_flight: list[Message] = []
        """The memory messages of the window being published."""
        self._reported_full_at = -FULL_REPORT_SECONDS
        self._gauges()

    @property
    def pending(self) -> int:
        """Messages posted and not yet confirmed."""
        return self._last_posted - self._confirmed_through

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_forever(), name=f"outbox-{self.name}")

    async def post(self, job_id: int, event_type: str, body: bytes, *, may_wait: bool) -> int:
        """Queue a message and return its sequence number. With `may_wait`, wait while the
        spool is full (log output: the script's output then waits too); state updates pass."""
        if may_wait and self._spool_full(len(body)):
            await self._wait_for_spool_room(len(body))
        message = Message(next(self._seq), job_id, event_type, body)
        self._last_posted = message.seq
        if not self._spooling and self._memory_bytes + message.size > self._limits.memory_bytes:
            self._start_spooling("memory bound reached")
        if self._spooling:
            self._spool.append(message)
        else:
            self._queue.append(message)
            self._memory_bytes += message.size
        self._work.set()
        self._gauges()
        return message.seq

    async def wait_confirmed(self, seq: int) -> None:
        """Until the broker confirmed every message up to `seq`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._confirmed_through >= seq)

    async def close(self, drain_seconds: float = CLOSE_DRAIN_SECONDS) -> None:
        """Give what is unconfirmed `drain_seconds` to go out, then stop sending; the rest
        stays in the spool for the next worker."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_confirmed(self._last_posted), drain_seconds)
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        # A window cut short: its memory messages may or may not have reached the broker.
        self._queue.extendleft(reversed(self._in_flight))
        self._in_flight = []
        if self._queue:
            self._start_spooling("worker stopping")
        if self.pending:
            logger.warning(
                "leaving unconfirmed messages in the spool",
                extra={"fields": {"outbox": self.name, "messages": self.pending}},
            )
        self._spool.close()
        self._gauges()

    # -- sending ----------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        pause = RETRY_INITIAL_SECONDS
        while True:
            self._work.clear()  # before looking, so that a post meanwhile is not missed
            window, from_memory = self._next_window()
            if not window:
                await self._settle()
                await self._work.wait()
                continue
            self._in_flight = window[:from_memory]
            results = await publish_window(self._publish, window)
            self._in_flight = []
            failed_in_memory: list[Message] = []
            first_error: BaseException | None = None
            for position, (message, error) in enumerate(zip(window, results, strict=True)):
                in_memory = position < from_memory
                if error is None:
                    self._memory_bytes -= message.size if in_memory else 0
                    self._advance(message.seq)
                    continue
                first_error = first_error or error
                if in_memory:
                    failed_in_memory.append(message)
            if first_error is None:
                pause = RETRY_INITIAL_SECONDS
                await self._settle()
                continue
            logger.warning(
                "broker did not take messages, retrying",
                extra={"fields": {"outbox": self.name, "err": str(first_error), "retry_in": pause}},
            )
            # Record what was confirmed before the spool forgets what it handed out; failed
            # spool messages are then handed out again, failed memory ones go to the spool.
            self._spool.confirm_through(self._confirmed_through)
            self._spool.rewind()
            self._queue.extendleft(reversed(failed_in_memory))
            self._start_spooling("publish failed")
            await self._settle()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)

    def _next_window(self) -> tuple[list[Message], int]:
        """The next messages to publish, oldest first, and how many of them (at the front)
        come from memory rather than from the spool."""
        window: list[Message] = []
        while self._queue and len(window) < PUBLISH_WINDOW:
            window.append(self._queue.popleft())
        from_memory = len(window)
        while self._spooling and len(window) < PUBLISH_WINDOW:
            loaded = self._spool.load(PUBLISH_WINDOW - len(window))
            if not loaded:
                break
            for message in loaded:
                if self._is_confirmed(message.seq):
                    # Confirmed in a window that failed elsewhere: not sent twice.
                    self._advance(message.seq)
                else:
                    window.append(message)
        return window, from_memory

    def _is_confirmed(self, seq: int) -> bool:
        return seq <= self._confirmed_through or seq in self._confirmed_above

    def _advance(self, seq: int) -> None:
        if seq > self._confirmed_through:
            self._confirmed_above.add(seq)
        while self._confirmed_through + 1 in self._confirmed_above:
            self._confirmed_through += 1
            self._confirmed_above.discard(self._confirmed_through)

    async def _settle(self) -> None:
        self._spool.confirm_through(self._confirmed_through)
        if self._spooling and self._spool.empty and not self._queue:
            self._spooling = False
            logger.info("outbox caught up, spool empty", extra={"fields": {"outbox": self.name}})
        self._gauges()
        async with self._changed:
            self._changed.notify_all()

    # -- spooling ---------------------------------------------------------------------------

    def _start_spooling(self, reason: str) -> None:
        """Move what memory holds to the front of the spool; new messages follow it."""
        if not self._spooling:
            logger.warning(
                "spooling unconfirmed messages to disk",
                extra={"fields": {"outbox": self.name, "reason": reason}},
            )
        self._spooling = True
        held = list(self._queue)
        self._queue.clear()
        self._spool.prepend(held)
        self._memory_bytes -= sum(message.size for message in held)

    def _spool_full(self, size: int) -> bool:
        return self._spooling and self._spool.bytes_pending + size > self._limits.spool_bytes

    async def _wait_for_spool_room(self, size: int) -> None:
        now = time.monotonic()
        if now - self._reported_full_at >= FULL_REPORT_SECONDS:
            self._reported_full_at = now
            logger.error(
                "spool is full: job log output waits until the broker takes messages",
                extra={
                    "fields": {
                        "outbox": self.name,
                        "spool_dir": str(self._spool.directory),
                        "limit_bytes": self._limits.spool_bytes,
                    }
                },
            )
        async with self._changed:
            await self._changed.wait_for(lambda: not self._spool_full(size))

    def _gauges(self) -> None:
        metrics.OUTBOX_MESSAGES.labels(held="memory").set(len(self._queue))
        metrics.OUTBOX_MESSAGES.labels(held="spool").set(self._spool.messages)
        metrics.OUTBOX_BYTES.labels(held="memory").set(self._memory_bytes)
        metrics.OUTBOX_BYTES.labels(held="spool").set(self._spool.bytes_pending)
