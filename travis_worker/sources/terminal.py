"""A single job read from a file and run on a terminal (`travis-worker run-job`): its log
goes to a byte stream and its state changes are printed, not published."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

from travis_worker.job import FinishState, JobData, JobPayload, StartAttributes
from travis_worker.sources.streamlog import StreamLogWriter


class TerminalJob(JobData):
    """A job read from a file whose state updates are printed instead of published."""

    source_name = "file"

    def __init__(
        self, payload: JobPayload, raw: dict[str, Any], attrs: StartAttributes, out: BinaryIO
    ) -> None:
        super().__init__(payload, raw, attrs)
        self._out = out
        self.states: list[str] = []

    def _report(self, state: str) -> None:
        self.states.append(state)
        print(f"travis-worker: job {self._payload.job.id} {state}", file=sys.stderr, flush=True)

    async def received(self) -> None:
        self._report("received")

    async def started(self) -> None:
        self._report("started")

    async def finish(self, state: FinishState) -> None:
        self._report(state.value)

    async def requeue(self) -> None:
        self._report("reset")

    async def release(self) -> None:
        """A job read from a file has nowhere to go back to."""

    async def open_log(self) -> StreamLogWriter:
        return StreamLogWriter(self._out, owns_stream=False)

    @property
    def exit_status(self) -> int:
        final = self.states[-1] if self.states else "reset"
        return {"passed": 0, "failed": 1}.get(final, 2)
