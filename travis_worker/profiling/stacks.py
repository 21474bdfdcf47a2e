"""Text dumps of what every asyncio task and every thread is doing right now.

`Task.get_stack()` shows a suspended coroutine as one frame, which hides where a job is
actually stuck; here each task's await chain is followed down (coroutine → the coroutine
it awaits → …) to the innermost frame and the future it waits for.
"""

from __future__ import annotations

import asyncio
import linecache
import sys
import threading
import traceback
from types import FrameType
from typing import Any

# A chain longer than this is a cycle or a pathological recursion: stop following it.
_MAX_DEPTH = 200


def format_task_stacks(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """Every task of the loop, sorted by name, with its await chain (outermost first)."""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    out = [f"{len(tasks)} asyncio tasks\n"]
    for task in tasks:
        out.append(f"\nTask {task.get_name()!r} ({_task_state(task)})\n")
        frames, awaited = _await_chain(task.get_coro())
        for frame, line in frames:
            out.append(_frame_text(frame, line))
        waiter = getattr(task, "_fut_waiter", None)  # the future the task is parked on
        if waiter is not None:
            out.append(f"  waiting for {_short_repr(waiter)}\n")
        elif awaited is not None:
            out.append(f"  waiting for {_short_repr(awaited)}\n")
    return "".join(out)


def format_thread_stacks() -> str:
    """Every thread's Python stack (innermost frame last), as a traceback prints it."""
    threads = {thread.ident: thread for thread in threading.enumerate()}
    frames = sys._current_frames()
    out = [f"{len(frames)} threads\n"]
    for ident, frame in sorted(frames.items(), key=lambda item: _thread_sort_key(threads, item[0])):
        thread = threads.get(ident)
        if thread is None:
            header = f"Thread {ident} (not started by threading)"
        else:
            kind = "daemon" if thread.daemon else "non-daemon"
            header = f"Thread {thread.name!r} (ident {ident}, native {thread.native_id}, {kind})"
        out.append(f"\n{header}\n")
        out.extend(traceback.format_stack(frame))
    del frames
    return "".join(out)


def _await_chain(awaitable: Any) -> tuple[list[tuple[FrameType, int]], Any]:
    """The frames of a coroutine and of everything it awaits, and the innermost awaited
    object that is not a coroutine (a future, usually)."""
    frames: list[tuple[FrameType, int]] = []
    current = awaitable
    for _ in range(_MAX_DEPTH):
        frame = _frame_of(current)
        if frame is None:
            return frames, None
        frames.append((frame, frame.f_lineno))
        awaited = _awaited_by(current)
        if awaited is None:
            return frames, None
        if _frame_of(awaited) is None and not _is_coroutine_like(awaited):
            return frames, awaited
        current = awaited
    return frames, None


def _frame_of(obj: Any) -> FrameType | None:
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(obj, name, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def _awaited_by(obj: Any) -> Any:
    for name in ("cr_await", "gi_yieldfrom", "ag_await"):
        awaited = getattr(obj, name, None)
        if awaited is not None:
            return awaited
    return None


def _is_coroutine_like(obj: Any) -> bool:
    return any(hasattr(obj, name) for name in ("cr_frame", "gi_frame", "ag_frame"))


def _frame_text(frame: FrameType, line: int) -> str:
    code = frame.f_code
    text = f'  File "{code.co_filename}", line {line}, in {code.co_qualname}\n'
    source = linecache.getline(code.co_filename, line).strip()
    return text + (f"    {source}\n" if source else "")


def _task_state(task: asyncio.Task[Any]) -> str:
    if not task.done():
        return "pending"
    if task.cancelled():
        return "cancelled"
    return "finished" if task.exception() is None else "failed"


def _short_repr(obj: Any, limit: int = 300) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _thread_sort_key(threads: dict[int | None, threading.Thread], ident: int) -> tuple[int, str]:
    thread = threads.get(ident)
    if thread is threading.main_thread():
        return (0, "")
    return (1, thread.name if thread is not None else str(ident))
