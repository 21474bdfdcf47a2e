"""The HTTP listener: routes, auth, and its life alongside the pool.

As in travis-ci/worker, `/healthz` and `/ready` are open and everything else needs HTTP
basic auth with `remote-controller-auth` (`user:password`): none → 401 with
`WWW-Authenticate`, a wrong one → 403, compared in constant time. Without that setting
only the two open routes are served. Unlike Go, the profiling routes are behind the same
auth, and an address without a host (`:6060`, `6060`, or `pprof-port`) listens on
127.0.0.1 only: a control API should not reach the network by accident.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from travis_worker.errors import ConfigError
from travis_worker.logs import log_context
from travis_worker.remote.api import ControlApi, ControlledWorker
from travis_worker.remote.debug import DebugApi, DebugTools

logger = logging.getLogger(__name__)

OPEN_PATHS = ("/healthz", "/ready")
REALM = "travis-ci/worker"
# A drain must not wait long for a client holding a profile request open.
SHUTDOWN_SECONDS = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_listen_address(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, `:port` or `port`; no host means 127.0.0.1."""
    text = text.strip()
    host, separator, port = text.rpartition(":")
    if not separator:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"invalid listen address {text!r}: expected HOST:PORT")
    return host, int(port)


def listen_addresses(remote_controller_addr: str, pprof_port: str) -> list[tuple[str, int]]:
    """Where to listen: the remote controller address and/or the legacy pprof port."""
    addresses = []
    if remote_controller_addr.strip():
        addresses.append(parse_listen_address(remote_controller_addr))
    if pprof_port.strip():
        address = parse_listen_address(f"127.0.0.1:{pprof_port.strip()}")
        if address not in addresses:
            addresses.append(address)
    return addresses


def basic_credentials(header: str | None) -> bytes | None:
    """`user:password` from a Basic Authorization header, or None (Go's BasicAuth)."""
    if header is None or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if b":" in decoded else None


class ControlServer:
    def __init__(
        self,
        app: ControlledWorker,
        *,
        addresses: list[tuple[str, int]],
        auth: str,
        tools: DebugTools | None = None,
    ) -> None:
        self.app = app
        self.addresses = addresses
        self.auth = auth.encode()
        self.tools = tools or DebugTools()
        self.bound: list[tuple[str, int]] = []
        """The addresses actually listened on (port 0 resolved), once started."""
        self.started = asyncio.Event()

    @property
    def url(self) -> str:
        host, port = self.bound[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def application(self) -> web.Application:
        application = web.Application(middlewares=[self._gate])
        api = ControlApi(self.app)
        api.add_open_routes(application.router)
        if self.auth:
            api.add_control_routes(application.router)
            application.router.add_get("/metrics", self._metrics, allow_head=False)
            DebugApi(self.tools).add_routes(application.router)
        else:
            logger.info("skipping remote controller setup without remote-controller-auth set")
        return application

    async def serve(self) -> None:
        """Listen until cancelled."""
        runner = web.AppRunner(
            self.application(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_SECONDS,
        )
        await runner.setup()
        try:
            for host, port in self.addresses:
                await web.TCPSite(runner, host, port).start()
            self.bound = [(str(a[0]), int(a[1])) for a in runner.addresses]
            # travis-ci/worker's message, with the port a `:0` address got.
            logger.info("listening at " + " ".join(map(_show, self.bound)))
            self.started.set()
            await asyncio.Event().wait()
        except OSError as exc:
            logger.error("couldn't start the control endpoint", extra={"fields": {"err": str(exc)}})
        finally:
            await runner.cleanup()

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Unknown paths and methods are answered before auth, as Go's router does.
        error = request.match_info.http_exception
        if isinstance(error, web.HTTPMethodNotAllowed):
            return web.Response(status=405, headers={"Allow": ", ".join(error.allowed_methods)})
        if error is not None:
            return web.Response(status=404, text="404 page not found\n")
        with log_context(component="remote_controller", uuid=str(uuid.uuid4())):
            if request.path not in OPEN_PATHS:
                denied = self._check_auth(request)
                if denied is not None:
                    return denied
            return await handler(request)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        given = basic_credentials(request.headers.get("Authorization"))
        if given is None:
            logger.warning("no authentication credentials provided")
            return web.Response(status=401, headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
        if not hmac.compare_digest(given, self.auth):
            logger.warning("incorrect credentials provided")
            return web.Response(status=403)
        return None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _show(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
