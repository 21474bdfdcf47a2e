"""Many jobs at once, each streaming timestamped lines: the script they run, and what the
hub must have received from each of them (shared by the scale tests and benchmarks/scale.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aio_pika.abc import AbstractRobustConnection

from tests.fakes.build_api import BuildApiFake
from tests.support.rabbit import TERMINAL_STATES, Reporting
from tests.support.worker import (
    example_payload,
    publish,
    queue_counts,
    running_worker,
    wait_consumers,
)

# `$EPOCHREALTIME` (bash ≥ 5) prints the decimal separator of the locale.
LINE = re.compile(r"line (\d+) at (\d+)[.,](\d+)")
STARTED_OR_LATER = TERMINAL_STATES | {"started"}


class StartSignal:
    """A file the jobs' scripts wait for before they print anything. Set once every job runs,
    it makes all of them stream at the same time, however long the starts took."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="travis-worker-scale-"))
        self.directory.chmod(0o755)  # the gce jobs' scripts run as `travis` on the sshd VMs
        self.path = self.directory / "go"

    def set(self) -> None:
        self.path.touch()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def streaming_script(lines: int, start: StartSignal, interval: float = 0.1) -> bytes:
    """A build script that waits for `start`, then prints `lines` lines, one every `interval`
    seconds, each stamped with the wall-clock time it was printed at.

    The pause is bash's `read -t` on a pipe that nobody writes to, not `sleep`: 300 jobs
    forking a `sleep` ten times a second would measure fork/exec, not the worker."""
    return (
        "exec {pause}<> <(:)\n"
        f'until [ -e "{start.path}" ]; do read -r -t {interval} -u "$pause" || true; done\n'
        f"for ((i = 0; i < {lines}; i++)); do\n"
        '  echo "line $i at $EPOCHREALTIME"\n'
        f'  read -r -t {interval} -u "$pause" || true\n'
        "done\n"
    ).encode()


def stamped_lines(text: str) -> list[tuple[int, float]]:
    """(number, time printed) of every line of `streaming_script` in `text`, in order."""
    return [(int(n), float(f"{whole}.{fraction}")) for n, whole, fraction in LINE.findall(text)]


def job_problems(reporting: Reporting, job_id: int, lines: int) -> list[str]:
    """Every way a job of `streaming_script` was reported wrong: what the hub and
    travis-logs expect of any job (`Reporting.faults`: one finishing state, parts 0..n, one
    final), the states of a job that passed, and each of its `lines` lines, in order."""
    found = reporting.faults(job_id)
    states = reporting.state_names(job_id)
    if states != ["received", "started", "passed"]:
        found.append(f"states {states}")
    printed = [number for number, _ in stamped_lines(reporting.log_text(job_id))]
    if printed != list(range(lines)):
        found.append(f"lines {printed[:3]}…{printed[-3:]} ({len(printed)} of {lines})")
    return found


@dataclass(frozen=True)
class Run:
    """What a run of many streaming jobs left behind."""

    reporting: Reporting
    job_ids: list[int]
    consumers_while_running: int
    ready_while_running: int
    consumers_after: int
    ready_after: int
    """Ready messages once the worker closed its channels: an unacked delivery is back here."""

    def problems(self, lines: int) -> dict[int, list[str]]:
        found = {job_id: job_problems(self.reporting, job_id, lines) for job_id in self.job_ids}
        return {job_id: problems for job_id, problems in found.items() if problems}

    def streaming_overlap(self) -> float:
        """Seconds during which every job was printing (negative: some never overlapped)."""
        lines = [stamped_lines(self.reporting.log_text(job_id)) for job_id in self.job_ids]
        first = max(stamps[0][1] for stamps in lines)
        last = min(stamps[-1][1] for stamps in lines)
        return last - first


async def run_streaming_jobs(
    connection: AbstractRobustConnection,
    reporting: Reporting,
    build_api: BuildApiFake,
    worker: tuple[dict[str, str], dict[str, str]],
    job_ids: list[int],
    *,
    lines: int,
    timeout: float,
) -> Run:
    """Run every job at once on a worker with settings and environment `worker` (its pool as
    large as the jobs): once all of them run, each prints `lines` lines. Returns when the hub
    has every job's finish state and final log part, and the worker has been drained."""
    values, environ = worker
    queue = values["queue_name"]
    start = StartSignal()
    build_api.default_script = streaming_script(lines, start)
    try:
        async with running_worker(values, environ):
            await wait_consumers(connection, queue, len(job_ids))
            await publish(connection, queue, *(example_payload(job_id) for job_id in job_ids))
            await _until_all(job_ids, lambda job_id: _started(reporting, job_id), timeout)
            start.set()
            await _until_all(job_ids, reporting.finished, timeout)
            ready_while_running, consumers_while_running = await queue_counts(connection, queue)
    finally:
        start.remove()
    ready_after, consumers_after = await queue_counts(connection, queue)
    return Run(
        reporting,
        job_ids,
        consumers_while_running,
        ready_while_running,
        consumers_after,
        ready_after,
    )


async def _until_all(job_ids: list[int], done: Callable[[int], bool], timeout: float) -> None:
    """Until `done(job_id)` holds for every job; polled, not woken per message, as hundreds
    of parts a second arrive meanwhile."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + timeout
    while (counted := sum(1 for job_id in job_ids if done(job_id))) < len(job_ids):
        if loop.time() > give_up_at:
            raise AssertionError(f"after {timeout:g} s only {counted} of {len(job_ids)} jobs")
        await asyncio.sleep(0.5)


def _started(reporting: Reporting, job_id: int) -> bool:
    """Running its script, or already past it (a job that failed to start never will)."""
    return any(state in STARTED_OR_LATER for state in reporting.state_names(job_id))


def worker_complaints(records: Iterable[logging.LogRecord]) -> list[str]:
    """What the worker logged at WARNING or above: a requeue, a publish retried, a processor
    that crashed. (Not the client library's news of the broker, such as a memory alarm that
    another test raised on the shared broker.)"""
    return [
        f"{record.levelname} {record.getMessage()} {getattr(record, 'fields', '')}"
        for record in records
        if record.name.startswith("travis_worker") and record.levelno >= logging.WARNING
    ]
