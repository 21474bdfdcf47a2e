"""An HTTP fake of travis-build's `POST /script`, served on loopback.

It speaks the real contract: `Authorization: token …` checked against its tokens (401
without the header, 403 with a wrong one) before the body is read, 400 for a body that is
not JSON, a script with `Content-Type: application/x-sh` otherwise; `GET /` and `GET /uptime`
answer 200 without auth, with travis-build's uptime and version headers. Tests queue error
answers and choose scripts per job id, then read what the worker sent. For garbage, tests
queue whole answers per job id: any status, body and content type, gzipped, sent slowly,
or cut off mid-body.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """One answer to one request."""

    status: int = 200
    body: bytes = b"#!/bin/bash\necho Hello World\n"
    content_type: str = "application/x-sh"
    gzip: bool = False
    """Sent with `Content-Encoding: gzip`: a small body on the wire, `body` once inflated."""
    chunk_delay: float = 0.0
    """A pause before each 64 KiB of the body: a slow body."""
    cut_after: int | None = None
    """The connection is closed after this many bytes of the body (a reset mid-body)."""
    echo_request: bool = False
    """The body ends with the request's headers, as a debugging proxy's error page might."""


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
    answers: dict[int, deque[Answer]] = field(default_factory=dict)
    """Answers per job id, one per request, given before anything else."""
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

    async def _script(self, request: web.Request) -> web.StreamResponse:
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
        job_id = int(body.get("job", {}).get("id", 0))
        if self.answers.get(job_id):
            return await self._answer(request, self.answers[job_id].popleft())
        if self.failures:
            status, text = self.failures.popleft()
            return web.Response(status=status, text=text)
        script = self.scripts.get(job_id, self.default_script)
        return web.Response(body=script, content_type="application/x-sh")

    async def _answer(self, request: web.Request, answer: Answer) -> web.StreamResponse:
        body = answer.body
        if answer.echo_request:
            body += "".join(f"\n{k}: {v}" for k, v in request.headers.items()).encode()
        response = web.StreamResponse(status=answer.status)
        response.headers["Content-Type"] = answer.content_type
        if answer.gzip:
            body = gzip.compress(body, compresslevel=1)
            response.headers["Content-Encoding"] = "gzip"
        response.content_length = len(body)  # so a cut-off body is seen as one
        await response.prepare(request)
        end = len(body) if answer.cut_after is None else min(answer.cut_after, len(body))
        for start in range(0, end, CHUNK_BYTES):
            await asyncio.sleep(answer.chunk_delay)
            await response.write(body[start : min(start + CHUNK_BYTES, end)])
        if answer.cut_after is not None:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response
