"""The remote controller routes of travis-ci/worker, with the same statuses and bodies.

Where this worker behaves differently on purpose (and says so in the README):
`POST /pool/decrement` really removes a processor once its current job ends (Go's does
nothing), `DELETE /worker {"graceful":true,"pause":true}` toggles a pause that a second
call resumes at the old size, `/ready` also answers 503 while paused, and `poolSize` above
MAX_POOL_SIZE is refused instead of starting thousands of processors by a typo.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from aiohttp import web

from travis_worker.buildinfo import build_info
from travis_worker.compat import gojson
from travis_worker.compat.durations import format_go_duration
from travis_worker.processor.pool import ProcessorPool
from travis_worker.remote.gojson_body import BodyError, decode_struct

logger = logging.getLogger(__name__)

MAX_POOL_SIZE = 1000
_WORKER_INFO_FIELDS = {
    "version": "string",
    "revision": "string",
    "generated": "string",
    "uptime": "string",
    "poolSize": "int",
    "expectedPoolSize": "int",
    "totalProcessed": "int",
    "processors": "[]worker.processorInfo",
}
_SHUTDOWN_FIELDS = {"graceful": "bool", "pause": "bool"}


class ControlledWorker(Protocol):
    """What the endpoint steers: the worker process (app.WorkerApp)."""

    @property
    def pool(self) -> ProcessorPool | None:
        """None until the pool exists."""
        ...

    @property
    def ready(self) -> bool:
        """Consuming jobs: not draining, not paused."""
        ...

    @property
    def started_at(self) -> float:
        """Process start, seconds since the epoch."""
        ...

    def graceful_shutdown(self) -> None: ...

    def immediate_shutdown(self) -> None: ...


def worker_info(app: ControlledWorker) -> dict[str, Any]:
    """The `GET /worker` object, keys in the order of Go's struct."""
    pool = app.pool
    processors = [
        {"id": p.id, "processed": p.processed, "status": p.status.value, "lastJobId": p.last_job_id}
        for p in (pool.processors() if pool is not None else [])
    ]
    build = build_info()
    return {
        "version": build.version_string,
        "revision": build.revision,
        "generated": build.generated,
        "uptime": format_go_duration(time.time() - app.started_at),
        "poolSize": pool.size if pool is not None else 0,
        "expectedPoolSize": pool.expected_size if pool is not None else 0,
        "totalProcessed": pool.total_processed if pool is not None else 0,
        "processors": processors or None,  # Go's nil slice
    }


class ControlApi:
    def __init__(self, app: ControlledWorker) -> None:
        self.app = app

    def add_open_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/healthz", self.healthz, allow_head=False)
        router.add_get("/ready", self.ready, allow_head=False)

    def add_control_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/worker", self.get_worker, allow_head=False)
        router.add_patch("/worker", self.patch_worker)
        router.add_delete("/worker", self.delete_worker)
        router.add_post("/pool/increment", self.increment)
        router.add_post("/pool/decrement", self.decrement)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(self, request: web.Request) -> web.Response:
        if self.app.ready:
            return web.Response(text="OK")
        return web.Response(status=503, text="Not Ready")

    async def get_worker(self, request: web.Request) -> web.Response:
        body = gojson.dumps(worker_info(self.app)) + b"\n"
        logger.info("got worker info", extra={"fields": {"method": "GetWorkerInfo"}})
        return web.Response(body=body, content_type="application/json")

    async def patch_worker(self, request: web.Request) -> web.Response:
        try:
            info = decode_struct(await request.read(), "workerInfo", _WORKER_INFO_FIELDS)
        except BodyError as exc:
            return _bad_request("UpdateWorkerInfo", str(exc))
        size = info.get("poolSize", 0)
        if size > MAX_POOL_SIZE:
            message = f"poolSize {size} is above the maximum of {MAX_POOL_SIZE}"
            return _bad_request("UpdateWorkerInfo", message, "refused pool size")
        if size > 0:
            self._pool().set_size(size)
            logger.info(
                "updated pool size",
                extra={"fields": {"method": "UpdateWorkerInfo", "pool_size": size}},
            )
        return web.Response(status=204)

    async def delete_worker(self, request: web.Request) -> web.Response:
        try:
            options = decode_struct(await request.read(), "shutdownOptions", _SHUTDOWN_FIELDS)
        except BodyError as exc:
            return _bad_request("ShutdownWorker", str(exc))
        graceful = bool(options.get("graceful", False))
        pause = bool(options.get("pause", False))
        if graceful and pause:
            self._pool().toggle_pause()
        elif graceful:
            self.app.graceful_shutdown()
        else:
            self.app.immediate_shutdown()
        logger.info(
            "asked worker to shutdown",
            extra={"fields": {"method": "ShutdownWorker", "graceful": graceful, "pause": pause}},
        )
        return web.Response(status=204)

    async def increment(self, request: web.Request) -> web.Response:
        self._pool().increment()
        logger.info("incremented pool", extra={"fields": {"method": "IncrementPool"}})
        return web.Response(status=204)

    async def decrement(self, request: web.Request) -> web.Response:
        self._pool().decrement()
        logger.info("decremented pool", extra={"fields": {"method": "DecrementPool"}})
        return web.Response(status=204)

    def _pool(self) -> ProcessorPool:
        pool = self.app.pool
        if pool is None:  # the endpoint is served only once the pool exists
            raise web.HTTPServiceUnavailable(text="Not Ready")
        return pool


def _bad_request(
    method: str, message: str, log_message: str = "could not decode json request body"
) -> web.Response:
    logger.error(log_message, extra={"fields": {"method": method, "err": message}})
    body = gojson.dumps({"error": message}) + b"\n"
    return web.Response(status=400, body=body, content_type="application/json")
