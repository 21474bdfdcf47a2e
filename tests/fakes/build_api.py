"""An HTTP fake of travis-build's `POST /script`, served on loopback.

It speaks the real contract: `Authorization: token …` checked against its tokens (401
without the header, 403 with a wrong one) before the body is read, 400 for a body that is
not JSON, a script with `Content-Type: application/x-sh` otherwise; `GET /` and `GET /uptime`
answer 200 without auth, with travis-build's uptime and version headers. Tests queue error
answers and choose scripts per job id, then read what the worker sent.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ScriptRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class BuildApiFake:
    tokens: tuple[str, ...] = ("the-token",)
    default_script: bytes = b"#!/bin/bash\necho Hello World\n"
    scripts: dict[int, bytes] = field(default_factory=dict)
    """Script per job id; jobs not listed get `default_script`."""
    failures: deque[tuple[int, str]] = field(default_factory=deque)
    """(status, body) answers given before any script, one per request."""
    requests: list[ScriptRequest] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0
    version: str = "v12.3.4-fake"
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        """The URL a worker is configured with, token in the user name as in production."""
        return f"http://{self.tokens[0]}@127.0.0.1:{self.port}/script"

    async def start(self) -> BuildApiFake:
        app = web.Application()
        app.router.add_post("/script", self._script)
        app.router.add_get("/", self._uptime)
        app.router.add_get("/uptime", self._uptime)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _uptime(self, request: web.Request) -> web.Response:
        headers = {
            "Travis-Build-Uptime": f"{time.monotonic() - self.started}s",
            "Travis-Build-Version": self.version,
        }
        return web.Response(status=200, headers=headers)

    async def _script(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        if header is None:
            return web.Response(status=401, text="missing Authorization header")
        kind, _, token = header.partition(" ")
        if kind != "token" or token not in self.tokens:
            return web.Response(status=403, text="access denied")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            return web.Response(status=400, text=str(exc))
        self.requests.append(
            ScriptRequest(request.path, dict(request.query), dict(request.headers), body)
        )
        if self.failures:
            status, text = self.failures.popleft()
            return web.Response(status=status, text=text)
        job_id = int(body.get("job", {}).get("id", 0))
        script = self.scripts.get(job_id, self.default_script)
        return web.Response(body=script, content_type="application/x-sh")
