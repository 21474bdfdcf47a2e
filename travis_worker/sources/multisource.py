"""Several job sources at once (`queue-type=amqp,file`): a processor takes the next job
from whichever of its streams has one first.

Only one job is taken per call: the other streams' waits are cancelled as soon as one
stream delivers (both stream kinds give a job back when cancelled), and a job that arrived
at the same moment is kept for the next call, or handed back when the stream closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from travis_worker.contracts import Job, JobSource, JobStream


class MultiSource:
    def __init__(self, sources: Sequence[JobSource]) -> None:
        self._sources = list(sources)

    @property
    def name(self) -> str:
        return ",".join(source.name for source in self._sources)

    async def open_stream(self) -> MultiStream:
        return MultiStream([await source.open_stream() for source in self._sources])


class MultiStream:
    def __init__(self, streams: list[JobStream]) -> None:
        self._streams = streams
        self._ready: list[Job] = []

    async def next_job(self) -> Job | None:
        while not self._ready and self._streams:
            await self._wait_for_jobs()
        return self._ready.pop(0) if self._ready else None

    async def _wait_for_jobs(self) -> None:
        waits = {asyncio.ensure_future(stream.next_job()): stream for stream in self._streams}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.wait(waits)
        for wait, stream in waits.items():
            if wait.cancelled():
                continue
            job = wait.result()
            if job is None:
                self._streams.remove(stream)  # that source has closed for good
            else:
                self._ready.append(job)

    async def close(self) -> None:
        for job in self._ready:
            await job.release()
        self._ready.clear()
        for stream in self._streams:
            await stream.close()
