"""A Google token endpoint and a metadata server's service-account endpoints, served on
loopback: they answer `failures` requests with `status` (and `body`) before they answer
properly, so credentials can be made to fail as Google's do."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class TokenServer:
    """A metadata server's service-account endpoints and an OAuth token endpoint, which
    answer `failures` requests with `status` before they answer properly."""

    status: int = 502
    failures: int = 0
    body: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    host: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.failures > 0:
            self.failures -= 1
            return web.json_response(self.body, status=self.status)
        if request.path.endswith("/service-accounts/default/"):
            return web.json_response({"email": "worker@travis-test.iam.gserviceaccount.com"})
        if request.path.endswith("/token"):
            return web.json_response(
                {"access_token": "t0ken", "expires_in": 3600, "token_type": "Bearer"}
            )
        return web.json_response({}, status=404)

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.host = f"127.0.0.1:{runner.addresses[0][1]}"
        return runner
