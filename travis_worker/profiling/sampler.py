"""A sampling CPU profiler that never stops the event loop.

A plain thread wakes up `hz` times a second, reads every other thread's current Python
stack (`sys._current_frames()`) and counts it. cProfile would instead hook every call on
the loop's own thread, slowing each job down for the whole profile; sampling costs the
loop only the moments the sampler holds the GIL to copy stacks.

The result is written as collapsed stacks (`thread;outer;inner count`, the input of
flamegraph.pl and speedscope) or as a pstats file (`python -m pstats`, snakeviz).
"""

from __future__ import annotations

import asyncio
import marshal
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import PurePath
from types import FrameType

FrameKey = tuple[str, int, str]
"""(file, first line, function): how cProfile and pstats name a function."""
Stack = tuple[FrameKey, ...]
"""Outermost frame first; the first entry names the thread."""

# Where a thread that waits (for I/O, a lock, a queue) sits when sampled. Leaving these
# samples out turns a wall-clock profile into roughly a CPU one.
_IDLE_LEAVES = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("queue.py", "get"),
    ("thread.py", "_worker"),
}
_PREFIXES = sorted((p for p in sys.path if p), key=len, reverse=True)


@dataclass
class SampledProfile:
    """Stacks seen and how long each was seen for (seconds of wall time)."""

    hz: float
    seconds: float = 0.0
    samples: int = 0
    weights: defaultdict[Stack, float] = field(default_factory=lambda: defaultdict(float))
    counts: Counter[Stack] = field(default_factory=Counter)

    def add(self, stack: Stack, weight: float) -> None:
        self.weights[stack] += weight
        self.counts[stack] += 1

    def collapsed(self) -> str:
        """One line per distinct stack: `frame;frame;frame count`."""
        lines = [
            ";".join(_frame_label(key) for key in stack) + f" {count}"
            for stack, count in sorted(self.counts.items())
        ]
        return "".join(line + "\n" for line in lines)

    def pstats_bytes(self) -> bytes:
        """The marshalled dict `pstats.Stats` loads: per function its sample count as calls,
        own time, cumulative time, and the same per caller."""
        own: defaultdict[FrameKey, float] = defaultdict(float)
        total: defaultdict[FrameKey, float] = defaultdict(float)
        hits: Counter[FrameKey] = Counter()
        edges: dict[FrameKey, dict[FrameKey, list[float]]] = {}
        for stack, weight in self.weights.items():
            count = self.counts[stack]
            own[stack[-1]] += weight
            # A recursive function is counted once per sample, as cProfile does.
            for key in set(stack):
                total[key] += weight
                hits[key] += count
            for position in range(1, len(stack)):
                caller, callee = stack[position - 1], stack[position]
                edge = edges.setdefault(callee, {}).setdefault(caller, [0, 0, 0.0, 0.0])
                edge[0] += count
                edge[1] += count
                edge[2] += weight if position == len(stack) - 1 else 0.0
                edge[3] += weight
        stats = {
            key: (
                hits[key],
                hits[key],
                own[key],
                total[key],
                {caller: tuple(values) for caller, values in edges.get(key, {}).items()},
            )
            for key in total
        }
        return marshal.dumps(stats)


def sample_stacks(
    seconds: float, hz: float, stop: threading.Event, *, include_idle: bool = False
) -> SampledProfile:
    """Sample every other thread for `seconds` (or until `stop` is set)."""
    profile = SampledProfile(hz=hz)
    me = threading.get_ident()
    interval = 1.0 / hz
    started = last = time.monotonic()
    deadline = started + seconds
    while not stop.is_set():
        now = time.monotonic()
        if now >= deadline:
            break
        # The real time since the last sample: a sampler delayed by the GIL still weighs
        # each stack by the time it stood for.
        weight = (now - last) if profile.samples else interval
        last = now
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        frames = sys._current_frames()
        for ident, frame in frames.items():
            if ident == me:
                continue
            stack = _stack(frame, names.get(ident, f"thread-{ident}"))
            if include_idle or not _idle(stack):
                profile.add(stack, weight)
        del frames  # frames keep their locals alive
        profile.samples += 1
        stop.wait(max(0.0, interval - (time.monotonic() - now)))
    profile.seconds = time.monotonic() - started
    return profile


async def sample_in_thread(
    seconds: float, hz: float, *, include_idle: bool = False
) -> SampledProfile:
    """Run `sample_stacks` on a thread of its own (not the default executor, which backends
    need for their blocking calls) and wait for it without blocking the loop. Cancelling
    the wait (the client went away) stops the sampler."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[SampledProfile] = loop.create_future()
    stop = threading.Event()

    def deliver(result: SampledProfile | BaseException) -> None:
        if done.done():
            return
        if isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)

    def work() -> None:
        try:
            result: SampledProfile | BaseException = sample_stacks(
                seconds, hz, stop, include_idle=include_idle
            )
        except BaseException as exc:  # handed to the waiting coroutine
            result = exc
        loop.call_soon_threadsafe(deliver, result)

    threading.Thread(target=work, name="cpu-profile", daemon=True).start()
    try:
        return await done
    finally:
        stop.set()


def _stack(frame: FrameType | None, thread_name: str) -> Stack:
    keys: list[FrameKey] = []
    while frame is not None:
        code = frame.f_code
        keys.append((code.co_filename, code.co_firstlineno, code.co_qualname))
        frame = frame.f_back
    keys.append(("~", 0, f"<thread {thread_name}>"))
    keys.reverse()
    return tuple(keys)


def _idle(stack: Stack) -> bool:
    filename, _, qualname = stack[-1]
    return (PurePath(filename).name, qualname.rpartition(".")[2]) in _IDLE_LEAVES


def _frame_label(key: FrameKey) -> str:
    filename, line, name = key
    text = name if filename == "~" else f"{name} ({_short_path(filename)}:{line})"
    # `;` separates frames; readers split the count off at the last space, so spaces stay.
    return text.replace(";", ":")


def _short_path(filename: str) -> str:
    for prefix in _PREFIXES:
        if filename.startswith(prefix + os.sep):
            return filename[len(prefix) + 1 :]
    return filename
