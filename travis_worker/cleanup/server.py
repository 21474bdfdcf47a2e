"""The reaper's HTTP listener: GET /healthz for the instance group's autohealing, and
GET /metrics for Prometheus."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from travis_worker.errors import ConfigError


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (or `:port`, all interfaces) → (host, port)."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        raise ConfigError(f"invalid listen address {address!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


async def start_server(address: str, healthy: Callable[[], bool]) -> web.AppRunner:
    """Serve until the returned runner is cleaned up."""

    async def healthz(_: web.Request) -> web.Response:
        # 503 once passes stop finishing: autohealing then replaces the reaper's host.
        if healthy():
            return web.Response(text="OK")
        return web.Response(status=503, text="no successful pass recently")

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = split_address(address)
    await web.TCPSite(runner, host, port).start()
    return runner
