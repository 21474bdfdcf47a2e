"""The heartbeat (travis-ci/worker `cli.go`): an outside service can tell a worker to drain.

`GET <heartbeat-url>` with `Authorization: token <t>` answers a JSON object of strings;
`{"state": "down"}` starts a graceful shutdown (repeated on every check, as in
travis-ci/worker). A failed check is retried with exponential backoff for up to a minute,
then logged; the next cycle starts 30 s later. After a good check the next one is 5 min on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from travis_worker import metrics
from travis_worker.util.backoff import Backoff, retry
from travis_worker.util.redact import redact_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeartbeatConfig:
    url: str
    token: str = ""
    interval: float = 300.0
    """Seconds between good checks."""
    error_interval: float = 30.0
    """Seconds before the next cycle after a check failed with all its retries."""
    retry_initial_interval: float = 0.5
    retry_max_interval: float = 10.0
    retry_max_elapsed: float = 60.0
    request_timeout: float = 30.0


class HeartbeatError(Exception):
    """The heartbeat URL did not give a usable answer."""


def read_token(setting: str) -> str:
    """The token itself, or the contents of the file named by `file://<path>`; trimmed.
    An unreadable file is logged and the setting is used as it is, as in Go."""
    token = setting
    if setting.startswith("file://"):
        try:
            token = Path(setting.split("://", 1)[1]).read_text()
        except OSError as exc:
            logger.error("failed to read auth token from file", extra={"fields": {"err": str(exc)}})
    return token.strip()


async def check(session: aiohttp.ClientSession, config: HeartbeatConfig) -> str:
    """One GET; returns the `state` value (`""` when absent) or raises HeartbeatError."""
    headers = {"Authorization": f"token {config.token}"} if config.token else {}
    timeout = aiohttp.ClientTimeout(total=config.request_timeout)
    try:
        async with session.get(config.url, headers=headers, timeout=timeout) as response:
            if response.status > 299:
                raise HeartbeatError(f"unhappy status code {response.status}")
            raw = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HeartbeatError(str(exc) or type(exc).__name__) from exc
    return _state_of(raw)


def _state_of(raw: bytes) -> str:
    """Go decodes the body into map[string]string: anything else is an error."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise HeartbeatError(f"invalid heartbeat body: {exc}") from exc
    if body is None:
        return ""
    if not isinstance(body, dict):
        raise HeartbeatError(f"heartbeat body is a JSON {type(body).__name__}, not an object")
    for key, value in body.items():
        if value is not None and not isinstance(value, str):
            raise HeartbeatError(f"heartbeat field {key!r} is not a string")
    return str(body.get("state") or "")


async def check_with_retries(session: aiohttp.ClientSession, config: HeartbeatConfig) -> str:
    """`check`, retried with travis-ci/worker's backoff up to the limits."""
    return await retry(
        lambda: check(session, config),
        retry_on=HeartbeatError,
        backoff=Backoff(
            initial=config.retry_initial_interval, max_interval=config.retry_max_interval
        ),
        give_up_after=config.retry_max_elapsed,
    )


async def run_heartbeat(config: HeartbeatConfig, on_down: Callable[[], None]) -> None:
    """Check forever (until cancelled); call `on_down` whenever the state is `down`."""
    shown_url = redact_url(config.url)
    logger.info("starting heartbeat loop", extra={"fields": {"heartbeat_url": shown_url}})
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                state = await check_with_retries(session, config)
            except HeartbeatError as exc:
                metrics.HEARTBEAT_CHECKS.labels(result="error").inc()
                logger.warning(
                    "failed to get heartbeat",
                    extra={"fields": {"heartbeat_url": shown_url, "err": str(exc)}},
                )
                await asyncio.sleep(config.error_interval)
                continue
            if state == "down":
                metrics.HEARTBEAT_CHECKS.labels(result="down").inc()
                logger.info(
                    "starting graceful shutdown", extra={"fields": {"heartbeat_state": state}}
                )
                on_down()
            else:
                metrics.HEARTBEAT_CHECKS.labels(result="up").inc()
            await asyncio.sleep(config.interval)
