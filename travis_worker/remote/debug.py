"""`/debug/`: Python's answer to Go's pprof handlers, behind the control API's auth.

GET    /debug/                  this list
GET    /debug/tasks             every asyncio task and what it awaits
GET    /debug/threads           every thread's stack
GET    /debug/profile           CPU profile: ?seconds=30&hz=100&format=collapsed|pstats&idle=0
GET    /debug/heap              tracemalloc (started on first use): ?top=25&group=lineno|
                                filename|traceback&diff=1, or ?format=snapshot to download
DELETE /debug/heap              stop tracemalloc
GET    /debug/loop              event-loop lag, latest and recent
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

from travis_worker.profiling import (
    HeapProfiler,
    LoopLagMonitor,
    format_task_stacks,
    format_thread_stacks,
    sample_in_thread,
)
from travis_worker.profiling.heap import DEFAULT_FRAMES

DEFAULT_PROFILE_SECONDS = 30.0  # as Go's /debug/pprof/profile
MAX_PROFILE_SECONDS = 300.0
DEFAULT_HZ = 100.0
MAX_HZ = 1000.0
_INDEX = (__doc__ or "").split("\n\n", 1)[1]


@dataclass
class DebugTools:
    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    heap: HeapProfiler = field(default_factory=HeapProfiler)


class DebugApi:
    def __init__(self, tools: DebugTools) -> None:
        self.tools = tools
        self._profiling = False

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/debug", self.index, allow_head=False)
        router.add_get("/debug/", self.index, allow_head=False)
        router.add_get("/debug/tasks", self.tasks, allow_head=False)
        router.add_get("/debug/threads", self.threads, allow_head=False)
        router.add_get("/debug/profile", self.profile, allow_head=False)
        router.add_get("/debug/heap", self.heap, allow_head=False)
        router.add_delete("/debug/heap", self.stop_heap)
        router.add_get("/debug/loop", self.loop, allow_head=False)

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=_INDEX)

    async def tasks(self, request: web.Request) -> web.Response:
        return web.Response(text=format_task_stacks())

    async def threads(self, request: web.Request) -> web.Response:
        return web.Response(text=format_thread_stacks())

    async def profile(self, request: web.Request) -> web.Response:
        seconds = _number(request, "seconds", DEFAULT_PROFILE_SECONDS, 0.01, MAX_PROFILE_SECONDS)
        hz = _number(request, "hz", DEFAULT_HZ, 1.0, MAX_HZ)
        output = request.query.get("format", "collapsed")
        if output not in ("collapsed", "pstats"):
            raise web.HTTPBadRequest(text="format must be collapsed or pstats\n")
        include_idle = request.query.get("idle", "0") in ("1", "true")
        # One sampler at a time: a second one would double the cost and measure the first.
        if self._profiling:
            raise web.HTTPConflict(text="a CPU profile is already being taken\n")
        self._profiling = True
        try:
            profile = await sample_in_thread(seconds, hz, include_idle=include_idle)
        finally:
            self._profiling = False
        if output == "pstats":
            return _download(profile.pstats_bytes(), "cpu.pstats")
        return web.Response(text=profile.collapsed())

    async def heap(self, request: web.Request) -> web.Response:
        heap = self.tools.heap
        if not heap.tracing:
            frames = int(_number(request, "frames", DEFAULT_FRAMES, 1, 100))
            heap.start(frames)
            return web.Response(
                text=f"tracemalloc started ({frames} frames per allocation); "
                "request /debug/heap again for the top allocations, "
                "DELETE /debug/heap to stop it\n"
            )
        if request.query.get("format") == "snapshot":
            data = await asyncio.to_thread(heap.dump)
            return _download(data, "heap.tracemalloc")
        top = int(_number(request, "top", 25, 1, 1000))
        group = request.query.get("group", "lineno")
        if group not in ("lineno", "filename", "traceback"):
            raise web.HTTPBadRequest(text="group must be lineno, filename or traceback\n")
        diff = request.query.get("diff", "0") in ("1", "true")
        # Grouping a large snapshot takes a while; in a thread the loop keeps running.
        text = await asyncio.to_thread(heap.report, top=top, group=group, diff=diff)  # type: ignore[arg-type]
        return web.Response(text=text)

    async def stop_heap(self, request: web.Request) -> web.Response:
        self.tools.heap.stop()
        return web.Response(status=204)

    async def loop(self, request: web.Request) -> web.Response:
        body = json.dumps(self.tools.loop_lag.summary(), indent=1) + "\n"
        return web.Response(text=body, content_type="application/json")


def _number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number\n") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be between {low:g} and {high:g}\n")
    return value


def _download(data: bytes, filename: str) -> web.Response:
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
