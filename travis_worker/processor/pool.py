"""The pool of processors (travis-ci/worker `processor_pool.go`): grows, shrinks,
pauses, drains and stops.

Differences from travis-ci/worker on purpose: shrinking really removes a processor (once
its current job ends), pausing is a toggle that resumes to the previous size, and a
processor that dies unexpectedly is replaced.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec

from travis_worker.contracts import JobSource
from travis_worker.processor.env import JobEnv
from travis_worker.processor.processor import Processor, ProcessorStatus, new_processor_id

logger = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0
P = ParamSpec("P")


@dataclass(frozen=True)
class ProcessorInfo:
    id: str
    processed: int
    status: ProcessorStatus
    last_job_id: int


def _logs_resize(
    change: Callable[Concatenate[ProcessorPool, P], None],
) -> Callable[Concatenate[ProcessorPool, P], None]:
    """One `pool size changed` line when the call changes the pool's target size, whoever
    asked (signal, control API); calls made inside it log nothing of their own."""

    @functools.wraps(change)
    def logged(pool: ProcessorPool, /, *args: P.args, **kwargs: P.kwargs) -> None:
        if pool._resizing:
            return change(pool, *args, **kwargs)
        before = pool.target_size
        pool._resizing = True
        try:
            change(pool, *args, **kwargs)
        finally:
            pool._resizing = False
        if pool.target_size != before:
            fields = {"pool_size": pool.target_size, "previous": before, "paused": pool.paused}
            logger.info("pool size changed", extra={"fields": fields})

    return logged


class ProcessorPool:
    def __init__(self, source: JobSource, make_env: Callable[[str], JobEnv], hostname: str) -> None:
        self._source = source
        self._make_env = make_env
        self._hostname = hostname
        self._members: list[Processor] = []
        """The processors that belong to the pool (what `expected_size` counts)."""
        self._tasks: dict[Processor, asyncio.Task[None]] = {}
        """Every processor still running, including ones finishing their last job."""
        self._retired_processed = 0
        self._retired_outcomes: Counter[str] = Counter()
        self._resizing = False
        self.size_at_shutdown = 0
        """The target size when the shutdown began (what `worker finished` reports)."""
        self._shutting_down = False
        self._paused_size: int | None = None
        self._finished = asyncio.Event()
        self._started = asyncio.Event()
        self.started_at = time.time()

    # -- what the pool looks like -------------------------------------------------------

    @property
    def size(self) -> int:
        """Processors running, including those finishing their last job."""
        return len(self._tasks)

    @property
    def expected_size(self) -> int:
        return len(self._members)

    @property
    def target_size(self) -> int:
        """The size the pool keeps: the size to resume at while paused."""
        return self._paused_size if self._paused_size is not None else self.expected_size

    @property
    def total_processed(self) -> int:
        return self._retired_processed + sum(p.processed for p in self._tasks)

    def outcomes(self) -> Counter[str]:
        """Jobs run by every processor so far, by how they ended."""
        return self._retired_outcomes + sum((p.outcomes for p in self._tasks), Counter())

    @property
    def paused(self) -> bool:
        return self._paused_size is not None

    @property
    def started(self) -> bool:
        return self._started.is_set()

    @property
    def draining(self) -> bool:
        return self._shutting_down

    def processors(self) -> list[ProcessorInfo]:
        running = sorted(self._tasks, key=lambda p: p.id)
        return [ProcessorInfo(p.id, p.processed, p.status, p.last_job_id) for p in running]

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, size: int) -> None:
        """Start `size` processors and return once the pool has shut down."""
        for _ in range(size):
            self._add()
        self._started.set()
        self._check_finished()
        await self._finished.wait()

    @_logs_resize
    def increment(self) -> None:
        if self._shutting_down:
            return
        if self.paused:
            assert self._paused_size is not None
            self._paused_size += 1
            return
        self._add()

    @_logs_resize
    def decrement(self) -> None:
        """Remove the newest processor once its current job ends."""
        if self.paused:
            assert self._paused_size is not None
            self._paused_size = max(0, self._paused_size - 1)
            return
        if self._members:
            self._members.pop().stop_gracefully()

    @_logs_resize
    def set_size(self, size: int) -> None:
        if self.paused:
            self._paused_size = size
            return
        while self.expected_size < size and not self._shutting_down:
            self._add()
        while self.expected_size > size:
            self.decrement()

    @_logs_resize
    def toggle_pause(self) -> None:
        """Pause: drain every processor but keep running. Again: resume at the old size."""
        if self._shutting_down:
            return
        if self._paused_size is None:
            self._paused_size = self.expected_size
            logger.info("pausing pool", extra={"fields": {"pool_size": self._paused_size}})
            while self._members:
                self._members.pop().stop_gracefully()
            return
        size, self._paused_size = self._paused_size, None
        logger.info("resuming pool", extra={"fields": {"pool_size": size}})
        self.set_size(size)

    def graceful_shutdown(self) -> None:
        """Let running jobs finish, take no new ones, then return from run()."""
        self._begin_shutdown(graceful=True)
        while self._members:
            self._members.pop().stop_gracefully()
        self._check_finished()

    def immediate_shutdown(self) -> None:
        """Interrupt running jobs (each is reset and its instance deleted), then stop."""
        self._begin_shutdown(graceful=False)
        self._members.clear()
        for processor in list(self._tasks):
            processor.abort()
        self._check_finished()

    def abandon(self) -> None:
        """Return from run() now, leaving processors still cleaning up to finish on their own
        (or not, if the process exits): a shutdown's deadline has passed."""
        self._shutting_down = True
        self._finished.set()

    # -- internals ------------------------------------------------------------------------

    def _begin_shutdown(self, *, graceful: bool) -> None:
        busy = sum(info.status == ProcessorStatus.PROCESSING for info in self.processors())
        if not self._shutting_down:
            self.size_at_shutdown = self.target_size
        fields = {"graceful": graceful, "pool_size": self.size_at_shutdown, "running_jobs": busy}
        logger.info("pool shutting down", extra={"fields": fields})
        self._shutting_down = True
        self._paused_size = None

    def _add(self) -> None:
        processor = Processor(new_processor_id(self._hostname), self._source, self._make_env)
        self._members.append(processor)
        task = asyncio.create_task(processor.run(), name=f"processor {processor.id}")
        self._tasks[processor] = task
        task.add_done_callback(lambda done: self._on_exit(processor, done))

    def _on_exit(self, processor: Processor, task: asyncio.Task[None]) -> None:
        del self._tasks[processor]
        self._retired_processed += processor.processed
        self._retired_outcomes += processor.outcomes
        crashed = not task.cancelled() and task.exception() is not None
        if crashed:
            logger.error(
                "processor crashed",
                exc_info=task.exception(),
                extra={"fields": {"processor": processor.id}},
            )
        if processor in self._members:
            # It left without being asked (crash, or its job source closed): replace it.
            self._members.remove(processor)
            if not self._shutting_down and not self.paused:
                asyncio.get_running_loop().call_later(RESTART_DELAY_SECONDS, self._replace)
        self._check_finished()

    def _replace(self) -> None:
        if not self._shutting_down and not self.paused:
            self._add()

    def _check_finished(self) -> None:
        if self._shutting_down and not self._tasks:
            self._finished.set()
