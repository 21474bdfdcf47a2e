"""The pipeline's view of a job log: the transport's LogWriter plus the two limits that stop
a job, maximum log length and log silence.

travis-ci/worker builds both limits into every log writer; here they live once, above any
transport. The silence clock starts when the script starts (travis-ci/worker arms it at one
hour from opening the log and re-arms on each write), and the length limit counts every
byte written, fold markers and worker info included, as there. Unlike there, it counts the
bytes the log will hold: an invalid byte becomes U+FFFD, three bytes of UTF-8, so a job
printing binary garbage cannot publish three times the limit.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from travis_worker import metrics
from travis_worker.contracts import LogWriter
from travis_worker.job import LogMeta


def logged_size(data: bytes) -> int:
    """How many bytes `data` takes in the log, once invalid UTF-8 is U+FFFD. (A character
    cut between two writes counts as replaced: a few bytes too many, never too few.)"""
    try:
        data.decode()
    except UnicodeDecodeError:
        return len(data.decode(errors="replace").encode())
    return len(data)


class JobLog:
    def __init__(self, writer: LogWriter, *, max_length: int, silence_timeout: timedelta):
        self.writer = writer
        self.max_length = max_length
        self.silence_timeout = silence_timeout
        self.bytes_written = 0
        self.max_length_reached = asyncio.Event()
        self.silent = asyncio.Event()
        self._last_write = asyncio.get_running_loop().time()
        self._silence_watch: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self.writer.closed

    async def write(self, data: bytes) -> None:
        """Append output; over the length limit the bytes are dropped and the limit fires."""
        if self.max_length_reached.is_set():
            return
        self._last_write = asyncio.get_running_loop().time()
        self.bytes_written += logged_size(data)
        if self.bytes_written > self.max_length:
            self.max_length_reached.set()
            return
        await self.writer.write(data)

    async def write_text(self, text: str) -> None:
        await self.write(text.encode())

    async def write_and_close(self, text: str) -> None:
        """A last message (timeouts, cancellation), ignoring the length limit as Go does."""
        self.stop_silence_watch()
        await self.writer.write_and_close(text.encode())

    async def close(self) -> None:
        self.stop_silence_watch()
        await self.writer.close()

    def mark_started(self, meta: LogMeta) -> None:
        self.writer.mark_started(meta)

    def start_silence_watch(self) -> None:
        self._last_write = asyncio.get_running_loop().time()
        self._silence_watch = asyncio.create_task(self._watch_silence(), name="log-silence")

    def stop_silence_watch(self) -> None:
        if self._silence_watch is not None:
            self._silence_watch.cancel()
            self._silence_watch = None

    async def _watch_silence(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.silence_timeout.total_seconds()
        while True:
            remaining = self._last_write + timeout - loop.time()
            if remaining <= 0:
                self.silent.set()
                return
            await asyncio.sleep(remaining)


class ScriptOutput:
    """What a backend writes script output into: the job log, noting the first byte."""

    def __init__(self, log: JobLog, backend: str, zone: str) -> None:
        self._log = log
        self._backend = backend
        self._zone = zone
        self._started = asyncio.get_running_loop().time()
        self._first = True

    async def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            elapsed = asyncio.get_running_loop().time() - self._started
            metrics.BOOT_PHASE.labels("first_log_byte", self._backend, self._zone).observe(elapsed)
        await self._log.write(data)
