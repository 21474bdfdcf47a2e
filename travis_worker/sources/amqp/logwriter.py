"""A job log as a stream of AMQP log parts (travis-ci/worker `amqp_log_writer.go`).

Output is buffered and flushed every 500 ms in parts of at most 1653 bytes, numbered from 0,
ending with one empty `final` part. Unlike travis-ci/worker, a part never splits a multi-byte
UTF-8 character (a character cut at a buffer edge waits for its remaining bytes), and
invalid bytes become U+FFFD instead of producing invalid JSON strings.

Parts are posted to the logs outbox (outbox.py), which publishes them in order and holds
them (in memory, then on disk) while the broker does not take them: a broker outage delays
the log but loses none of it. `close()` returns once the broker confirmed every part.
"""

from __future__ import annotations

import asyncio
import codecs
from typing import Any, Protocol

from travis_worker import metrics
from travis_worker.compat import gojson
from travis_worker.errors import LogClosedError
from travis_worker.job import LogMeta

# travis-logs forwards a part to Pusher, which takes 10 kB; with Go's six-byte escape of `<`
# and ~82 bytes of envelope, 1653 bytes of content is the most that always fits.
LOG_CHUNK_SIZE = 1653
FLUSH_INTERVAL = 0.5
LOG_PART_TYPE = "job:test:log"
# A writer holding this much unflushed text flushes at once instead of waiting for the tick,
# which bounds memory for a job that prints faster than the tick drains.
EAGER_FLUSH_BYTES = 256 * 1024


class PartOutbox(Protocol):
    async def post(self, job_id: int, event_type: str, body: bytes, *, may_wait: bool) -> int: ...

    async def wait_confirmed(self, seq: int) -> None: ...


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

    def __init__(self, outbox: PartOutbox, job_id: int, uuid: str) -> None:
        self._outbox = outbox
        self._job_id = job_id
        self._uuid = uuid
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []
        self._pending_size = 0
        self._last_posted = 0
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
            # Cancelled only while we hold the lock, so never in the middle of posting parts.
            self._ticker.cancel()
            await self._post_pending()
            await self._post(self._part("", final=True))
        await self._outbox.wait_confirmed(self._last_posted)

    async def _flush_regularly(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            await self._post_pending()

    async def _post_pending(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode()
        self._pending.clear()
        self._pending_size = 0
        for piece in split_utf8(data, LOG_CHUNK_SIZE):
            await self._post(self._part(piece.decode(), final=False))
        metrics.LOG_BYTES.inc(len(data))

    async def _post(self, part: bytes) -> None:
        self._last_posted = await self._outbox.post(
            self._job_id, LOG_PART_TYPE, part, may_wait=True
        )

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
