"""The heartbeat against an HTTP server on loopback: Go's cases from
cli_test.go, the token, the retries, and a real worker that drains when told `down`."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from tests.remote.harness import running_with_services
from tests.support.worker import worker_settings
from tests.telemetry.test_job_log_fields import LineCapture, parse_logfmt
from travis_worker.remote.heartbeat import (
    HeartbeatConfig,
    HeartbeatError,
    check,
    check_with_retries,
    read_token,
    run_heartbeat,
)


@dataclass
class HeartbeatServer:
    answers: deque[tuple[int, str]] = field(default_factory=deque)
    default: tuple[int, str] = (200, '{"state": "up"}')
    authorizations: list[str | None] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> HeartbeatServer:
        app = web.Application()
        app.router.add_get("/heartbeat", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/heartbeat"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        self.authorizations.append(request.headers.get("Authorization"))
        status, body = self.answers.popleft() if self.answers else self.default
        return web.Response(status=status, text=body, content_type="application/json")


@pytest.fixture
async def server():
    heartbeat = await HeartbeatServer().start()
    yield heartbeat
    await heartbeat.stop()


def fast(url: str, token: str = "", **changes: float) -> HeartbeatConfig:
    timings = {
        "interval": 0.01,
        "error_interval": 0.01,
        "retry_initial_interval": 0.01,
        "retry_max_elapsed": 0.0,
    }
    timings.update(changes)
    return HeartbeatConfig(url, token, **timings)


def checks(result: str) -> float:
    return (
        REGISTRY.get_sample_value("travis_worker_heartbeat_checks_total", {"result": result}) or 0
    )


async def test_a_check_sends_the_token_and_reads_the_state(server):
    async with aiohttp.ClientSession() as session:
        assert await check(session, fast(server.url, "abc")) == "up"
        server.answers.append((200, "{}"))
        assert await check(session, fast(server.url)) == ""
        server.answers.append((200, "null"))
        assert await check(session, fast(server.url)) == ""
    assert server.authorizations == ["token abc", None, None]


async def test_gos_cases_only_down_starts_a_drain(server):
    """cli_test.go: the handler survives 404, broken JSON, unexpected JSON and a non-string
    state, does nothing on `up`, and shuts down on `down`."""
    server.answers.extend(
        [
            (404, "not here"),
            (200, '{"state": "up"'),
            (200, '["down"]'),
            (200, '{"state": true}'),
            (200, '{"state": "up"}'),
            (200, '{"state": "down", "reason": "deploy"}'),
        ]
    )
    server.default = (200, '{"state": "up"}')
    downs: list[int] = []
    before = {result: checks(result) for result in ("up", "down", "error")}
    beating = asyncio.create_task(
        run_heartbeat(fast(server.url), lambda: downs.append(len(server.authorizations)))
    )
    try:
        for _ in range(500):
            if downs:
                break
            await asyncio.sleep(0.01)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
    assert downs == [6]  # exactly once, on the sixth answer
    assert checks("error") - before["error"] == 4
    assert checks("up") - before["up"] >= 1
    assert checks("down") - before["down"] == 1


async def test_failed_checks_are_retried_with_backoff(server):
    server.answers.extend([(500, "{}"), (503, "{}")])
    async with aiohttp.ClientSession() as session:
        config = fast(server.url, retry_max_elapsed=5.0)
        assert await check_with_retries(session, config) == "up"
    assert len(server.authorizations) == 3


async def test_retries_end_and_the_failure_is_logged(server):
    server.default = (502, "bad gateway")
    capture = LineCapture()
    logger = logging.getLogger("travis_worker.remote.heartbeat")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(HeartbeatError, match="unhappy status code 502"):
                await check_with_retries(session, fast(server.url, retry_max_elapsed=0.1))
        beating = asyncio.create_task(run_heartbeat(fast(server.url), lambda: None))
        for _ in range(200):
            if any("failed to get heartbeat" in line for line in capture.lines):
                break
            await asyncio.sleep(0.01)
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(logging.NOTSET)
    assert len(server.authorizations) >= 3  # the first check was retried
    failure = next(parse_logfmt(line) for line in capture.lines if "failed to get" in line)
    assert failure["level"] == "warning"
    assert failure["heartbeat_url"] == server.url
    assert failure["err"] == "unhappy status code 502"


def test_token_from_a_file_is_trimmed(tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text("  s3cr3t\n")
    assert read_token(f"file://{token_file}") == "s3cr3t"
    assert read_token(" plain \n") == "plain"
    with caplog.at_level(logging.ERROR, logger="travis_worker.remote.heartbeat"):
        assert read_token("file:///nonexistent/token") == "file:///nonexistent/token"
    assert "failed to read auth token from file" in caplog.text


async def test_a_worker_told_down_drains_and_exits(
    server, amqp_vhost_uri, build_api, queue_name, tmp_path
):
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    server.default = (200, '{"state": "down"}')
    values = worker_settings(
        amqp_vhost_uri,
        queue_name,
        build_api.url,
        provider_name="fake",
        heartbeat_url=server.url,
        heartbeat_url_auth_token=f"file://{token_file}",
    )
    async with running_with_services(values) as worker:
        assert await asyncio.wait_for(worker.task, 20) == 0
    assert server.authorizations[0] == "token from-a-file"
    assert worker.app.pool is not None and worker.app.pool.draining
