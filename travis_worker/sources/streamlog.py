"""A job log written straight to a byte stream (a file, a terminal), without log parts."""

from __future__ import annotations

from typing import BinaryIO

from travis_worker.errors import LogClosedError
from travis_worker.job import LogMeta


class StreamLogWriter:
    def __init__(self, stream: BinaryIO, *, owns_stream: bool) -> None:
        self._stream = stream
        self._owns_stream = owns_stream
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise LogClosedError("attempted write to closed log")
        self._stream.write(data)
        self._stream.flush()

    async def write_and_close(self, data: bytes) -> None:
        if self._closed:
            raise LogClosedError("log already closed")
        await self.write(data)
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_stream:
            self._stream.close()

    def mark_started(self, meta: LogMeta) -> None:
        """A stream has no parts to attach the meta to."""
