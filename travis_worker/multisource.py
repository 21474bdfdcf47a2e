"""Several job sources at once (`queue-type=amqp,file`): each processor takes the next job
from whichever of its streams has one first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from travis_worker.job import Job, JobSource, JobStream


class MultiSource:
    def __init__(self, sources: Sequence[JobSource]) -> None:
        self._sources = list(sources)

    @property
    def name(self) -> str:
        return ",".join(source.name for source in self._sources)

    async def open_stream(self) -> MultiStream:
        return MultiStream([await source.open_stream() for source in self._sources])

    async def close(self) -> None:
        for source in self._sources:
            await source.close()


class MultiStream:
    def __init__(self, streams: list[JobStream]) -> None:
        self._streams = streams
        self._waiting: dict[asyncio.Future[Job | None], JobStream] = {}

    async def next_job(self) -> Job | None:
        # A stream's pending wait survives between calls, so no job it produced is lost.
        for stream in self._streams:
            if stream not in self._waiting.values():
                self._waiting[asyncio.ensure_future(stream.next_job())] = stream
        while self._waiting:
            done, _ = await asyncio.wait(self._waiting, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                stream = self._waiting.pop(future)
                job = future.result()
                if job is not None:
                    return job
                self._streams.remove(stream)
        return None

    async def close(self) -> None:
        for future in self._waiting:
            future.cancel()
        await asyncio.gather(*self._waiting, return_exceptions=True)
        for stream in self._streams:
            await stream.close()
