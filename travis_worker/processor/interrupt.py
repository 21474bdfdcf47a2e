"""Running one pipeline step so that it can be interrupted.

A step runs as its own task. The pipeline waits for the first of: the step's result, its
time limit, or an interrupt (the job's cancel command, the worker's immediate shutdown, the
log limits). Only the step is cancelled, never the pipeline itself, so the pipeline's
cleanup (final log part, state update, instance deletion) always runs to completion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from opentelemetry import trace

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("travis_worker.processor")

T = TypeVar("T")

# How long an interrupted step may take to unwind (kill a process, close a connection).
STEP_UNWIND_SECONDS = 30.0


class StepInterrupted(Exception):
    """The step did not finish: `reason` is `timeout` or the name of the interrupt."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step} interrupted: {reason}")
        self.step = step
        self.reason = reason


async def run_step(
    name: str,
    step: Awaitable[T],
    *,
    interrupts: Mapping[str, asyncio.Event],
    limit: float | None = None,
    timings: dict[str, float] | None = None,
) -> T:
    """Run `step`, or raise StepInterrupted when a time limit or an interrupt comes first."""
    started = time.monotonic()
    task = asyncio.ensure_future(step)
    watchers = {asyncio.ensure_future(event.wait()): reason for reason, event in interrupts.items()}
    with tracer.start_as_current_span(name) as span:
        try:
            done, _ = await asyncio.wait(
                {task, *watchers}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                return task.result()
            reason = next((watchers[w] for w in done if w in watchers), "timeout")
            span.set_attribute("interrupted", reason)
            await _unwind(task, name)
            raise StepInterrupted(name, reason)
        except BaseException as exc:
            if not task.done():
                await _unwind(task, name)
            if not isinstance(exc, StepInterrupted):
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            raise
        finally:
            for watcher in watchers:
                watcher.cancel()
            if timings is not None:
                timings[name] = time.monotonic() - started


async def _unwind(task: asyncio.Future[T], name: str) -> None:
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=STEP_UNWIND_SECONDS)
    if not done:
        logger.error("step did not stop after cancellation", extra={"fields": {"step": name}})
    elif not task.cancelled() and task.exception() is not None:
        logger.debug("step failed while stopping", extra={"fields": {"step": name}})
