"""A job log as a stream of AMQP log parts (travis-ci/worker `amqp_log_writer.go`).

Output is buffered and flushed every 500 ms in parts of at most 1653 bytes, numbered from 0,
ending with one empty `final` part. Unlike travis-ci/worker, a part never splits a multi-byte
UTF-8 character (a character cut at a buffer edge waits for its remaining bytes), and
invalid bytes become U+FFFD instead of producing invalid JSON strings.

Parts go to an outbox before they are published, in windows of several parts awaiting
their confirms together. A part the broker did not take stays in the outbox and is sent
again on the next tick (possibly after later parts: every part carries its number), so a
broker outage delays the log but loses none of it. A part is sent again only when its
connection failed, never merely because the broker was slow to confirm it.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import logging
from collections import deque
from typing import Any, Protocol

from travis_worker import metrics
from travis_worker.compat import gojson
from travis_worker.errors import LogClosedError
from travis_worker.job import LogMeta
from travis_worker.sources.amqp.publishers import PublishError

logger = logging.getLogger(__name__)

# travis-logs forwards a part to Pusher, which takes 10 kB; with Go's six-byte escape of `<`
# and ~82 bytes of envelope, 1653 bytes of content is the most that always fits.
LOG_CHUNK_SIZE = 1653
FLUSH_INTERVAL = 0.5
# A writer holding this much unflushed text flushes at once instead of waiting for the tick,
# which bounds memory for a job that prints faster than the tick drains.
EAGER_FLUSH_BYTES = 256 * 1024
# Parts in flight at once per job (each waits for its publisher confirm).
PUBLISH_WINDOW = 64
# How long close() keeps retrying a broker that does not take the log's last parts.
CLOSE_RETRY_SECONDS = 120.0


class PartPublisher(Protocol):
    async def publish(self, body: bytes, job_id: int) -> None: ...


def split_utf8(data: bytes, limit: int) -> list[bytes]:
    """Split valid UTF-8 into pieces of at most `limit` bytes, only at character starts."""
    pieces = []
    start = 0
    while len(data) - start > limit:
        end = start + limit
        while data[end] & 0xC0 == 0x80:  # a continuation byte: the cut is mid-character
            end -= 1
        pieces.append(data[start:end])
        start = end
    pieces.append(data[start:])
    return pieces


class AmqpLogWriter:
    """One job's log. Not reusable: once closed, writes raise LogClosedError."""

    def __init__(self, publisher: PartPublisher, job_id: int, uuid: str) -> None:
        self._publisher = publisher
        self._job_id = job_id
        self._uuid = uuid
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []
        self._pending_size = 0
        self._outbox: deque[bytes] = deque()
        self._next_number = 0
        self._meta: LogMeta | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self._ticker = asyncio.create_task(self._flush_regularly(), name=f"log-flush-{job_id}")

    @property
    def closed(self) -> bool:
        return self._closed

    def mark_started(self, meta: LogMeta) -> None:
        self._meta = meta

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise LogClosedError("attempted write to closed log")
        self._append(self._decoder.decode(data))
        if self._pending_size >= EAGER_FLUSH_BYTES:
            await self._flush()

    async def write_and_close(self, data: bytes) -> None:
        if self._closed:
            raise LogClosedError("log already closed")
        self._append(self._decoder.decode(data))
        await self._finish()

    async def close(self) -> None:
        if self._closed:
            return
        await self._finish()

    def _append(self, text: str) -> None:
        if text:
            self._pending.append(text)
            self._pending_size += len(text)

    async def _finish(self) -> None:
        self._closed = True
        self._append(self._decoder.decode(b"", final=True))
        async with self._lock:
            # Cancelled only while we hold the lock, so never in the middle of a publish
            # (a part sent but not yet confirmed would otherwise be sent twice).
            self._ticker.cancel()
            self._chunk_pending()
            self._outbox.append(self._part("", final=True))
            await self._drain_outbox(deadline=CLOSE_RETRY_SECONDS)

    async def _flush_regularly(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            self._chunk_pending()
            await self._drain_outbox(deadline=0)

    def _chunk_pending(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode()
        self._pending.clear()
        self._pending_size = 0
        for piece in split_utf8(data, LOG_CHUNK_SIZE):
            self._outbox.append(self._part(piece.decode(), final=False))
        metrics.LOG_BYTES.inc(len(data))

    def _part(self, content: str, *, final: bool) -> bytes:
        part: dict[str, Any] = {
            "id": self._job_id,
            "log": content,
            "number": self._next_number,
            "uuid": self._uuid,
            "final": final,
        }
        if self._meta is not None:
            part["meta"] = {
                "queued_at": gojson.rfc3339_nano(self._meta.queued_at)
                if self._meta.queued_at
                else None,
                "repo": self._meta.repo,
                "queue": self._meta.queue,
                "infra": self._meta.infra,
            }
            self._meta = None
        self._next_number += 1
        return gojson.dumps(part)

    async def _drain_outbox(self, *, deadline: float) -> None:
        """Publish queued parts. With `deadline` > 0, keep retrying that long."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + deadline
        delay = 0.25
        while self._outbox:
            failure = await self._publish_batch()
            if failure is None:
                continue
            if loop.time() >= give_up_at:
                logger.error(
                    "couldn't publish log part",
                    extra={"fields": {"err": str(failure), "held_parts": len(self._outbox)}},
                )
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _publish_batch(self) -> PublishError | None:
        """Publish up to PUBLISH_WINDOW parts at once and wait for all their confirms.

        Waiting for each confirm before sending the next part would cap a job at one part
        per broker round trip. Parts are started in order on one channel; the ones the
        broker did not confirm stay in the outbox, in order, for the next attempt.
        """
        batch = list(itertools.islice(self._outbox, PUBLISH_WINDOW))
        results = await asyncio.gather(
            *(self._publisher.publish(part, self._job_id) for part in batch),
            return_exceptions=True,
        )
        failure: PublishError | None = None
        kept: list[bytes] = []
        for part, result in zip(batch, results, strict=True):
            if isinstance(result, PublishError):
                failure = failure or result
                kept.append(part)
            elif isinstance(result, BaseException):
                raise result
        for _ in batch:
            self._outbox.popleft()
        self._outbox.extendleft(reversed(kept))
        return failure
