"""The build script API client (travis-build `POST /script`), as
travis-ci/worker's `build_script_generator.go` calls it.

The token is the URL's user name (`https://TOKEN@build.example.com/script`), sent as
`Authorization: token TOKEN`; `job_id` and `source=worker` are added to the query. Server
errors and transport failures are retried with jittered exponential backoff for about a
minute; a 4xx answer cannot improve and fails at once.

Unlike travis-ci/worker, which waits for ever and reads any answer whole, each request has
a time limit and a script a size limit, and an answer that cannot be a script (empty, an
HTML or JSON page from a proxy) is retried like a server error rather than run. What an
answer is echoed into logs and errors is short and never holds the token.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from travis_worker.buildinfo import build_info
from travis_worker.compat import gojson
from travis_worker.errors import BuildScriptError
from travis_worker.util.backoff import Backoff, retry
from travis_worker.util.redact import excerpt

logger = logging.getLogger(__name__)

# travis-build answers in well under a second, and in seconds at worst; a request still
# going after this long (a hung server, a body trickling in) is abandoned and retried.
REQUEST_TIMEOUT = timedelta(seconds=30)
# A generated script is a few hundred kilobytes; the largest legitimate ones stay far
# below this. A larger answer (counted after decompression) is refused, not held in memory.
MAX_SCRIPT_BYTES = 8 * 1024 * 1024
# An error page is read only this far: enough to quote it.
ERROR_READ_BYTES = 64 * 1024
READ_CHUNK_BYTES = 64 * 1024
# Content types no script comes as: a proxy's error page, an API's JSON error.
_NOT_A_SCRIPT = re.compile(r"html|json|xml", re.IGNORECASE)


@dataclass(frozen=True)
class BuildApiConfig:
    uri: str
    insecure_skip_verify: bool = False
    apt_cache: str = ""
    npm_cache: str = ""
    paranoid: bool = False
    fix_resolv_conf: bool = False
    fix_etc_hosts: bool = False
    cache_type: str = ""
    cache_fetch_timeout: timedelta = timedelta(minutes=5)
    cache_push_timeout: timedelta = timedelta(minutes=5)
    cache_s3_scheme: str = ""
    cache_s3_region: str = ""
    cache_s3_bucket: str = ""
    cache_s3_access_key_id: str = ""
    cache_s3_secret_access_key: str = ""
    retry_for: timedelta = timedelta(minutes=1)
    request_timeout: timedelta = REQUEST_TIMEOUT
    max_script_bytes: int = MAX_SCRIPT_BYTES


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    """Header names lower-cased (proxies may change their case)."""
    body: bytes
    """An error answer's, as far as it could be read (up to 64 KiB); any other's whole."""
    whole: bool = True
    """False when the body was larger than `max_script_bytes`: then only its start is here."""


def split_token(uri: str) -> tuple[str, str]:
    """`https://TOKEN@host/path?q` → (`https://host/path?q`, `TOKEN`)."""
    parts = urlsplit(uri)
    token = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    if ":" in host:  # an IPv6 literal
        netloc = f"[{host}]:{parts.port}" if parts.port else f"[{host}]"
    return urlunsplit(parts._replace(netloc=netloc)), token


def request_url(base: str, job_id: int) -> str:
    """`base` with `job_id` and `source=worker` added, query keys sorted as Go encodes them."""
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("job_id", str(job_id)), ("source", "worker")]
    return urlunsplit(parts._replace(query=urlencode(sorted(query))))


class BuildApiClient:
    """Asks travis-build for each job's script."""

    def __init__(self, config: BuildApiConfig, backoff: Backoff | None = None) -> None:
        self._config = config
        self._backoff = backoff or Backoff()
        self._url, self._token = split_token(config.uri)
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        build = build_info()
        headers = {
            "User-Agent": f"worker-go v={build.version} rev={build.revision} d={build.generated}",
            "Content-Type": "application/json",
        }
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        return headers

    def request_body(self, raw_payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with the worker's build settings folded in."""
        config = self._config
        body = dict(raw_payload)
        hosts = dict(body.get("hosts") or {})
        if config.apt_cache:
            hosts["apt_cache"] = config.apt_cache
        if config.npm_cache:
            hosts["npm_cache"] = config.npm_cache
        if hosts:
            body["hosts"] = hosts
        body["paranoid"] = config.paranoid
        body["fix_resolv_conf"] = config.fix_resolv_conf
        body["fix_etc_hosts"] = config.fix_etc_hosts
        if config.cache_type:
            body["cache_options"] = {
                "type": config.cache_type,
                "fetch_timeout": int(config.cache_fetch_timeout.total_seconds()),
                "push_timeout": int(config.cache_push_timeout.total_seconds()),
                "s3": {
                    "scheme": config.cache_s3_scheme,
                    "region": config.cache_s3_region,
                    "bucket": config.cache_s3_bucket,
                    "access_key_id": config.cache_s3_access_key_id,
                    "secret_access_key": config.cache_s3_secret_access_key,
                },
            }
        return body

    async def generate(self, raw_payload: dict[str, Any], job_id: int) -> bytes:
        body = gojson.dumps(self.request_body(raw_payload))
        url = request_url(self._url, job_id)

        def log_retry(error: Exception, pause: float) -> None:
            fields = {"err": str(error), "job_id": job_id, "retry_in": round(pause, 2)}
            logger.warning("build script request failed, retrying", extra={"fields": fields})

        return await retry(
            lambda: self._post(url, body),
            retry_on=BuildScriptError,
            retryable=lambda error: isinstance(error, BuildScriptError) and error.recoverable,
            backoff=self._backoff,
            give_up_after=self._config.retry_for.total_seconds(),
            on_retry=log_retry,
        )

    @property
    def url(self) -> str:
        """The configured URL without its token, fit to show."""
        return self._url

    async def send(self, method: str, url: str, body: bytes = b"") -> Answer:
        """One request with the worker's headers (token, User-Agent), within the time
        limit. No answer at all, or none in time, raises a recoverable BuildScriptError."""
        session = self._session_for_requests()
        headers = self._headers()
        seconds = self._config.request_timeout.total_seconds()
        timeout = aiohttp.ClientTimeout(seconds)
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                found = {name.lower(): value for name, value in response.headers.items()}
                if response.status >= 400:
                    return Answer(response.status, found, await _error_page(response))
                content, whole = await _read(response, self._config.max_script_bytes)
                return Answer(response.status, found, content, whole)
        except TimeoutError as exc:
            message = f"build API did not answer within {seconds:g}s"
            raise BuildScriptError(message, recoverable=True) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise BuildScriptError(f"build API request failed: {exc!r}", recoverable=True) from exc

    async def _post(self, url: str, body: bytes) -> bytes:
        answer = await self.send("POST", url, body)
        shown = excerpt(answer.body, secrets=[self._token])
        if answer.status >= 500:
            raise BuildScriptError(f"server error: {shown!r}", recoverable=True)
        if answer.status >= 400:
            raise BuildScriptError(f"client error: {shown!r}", recoverable=False)
        if not answer.whole:
            # The same payload would get the same script: waiting cannot make it smaller.
            limit = self._config.max_script_bytes
            raise BuildScriptError(f"build API answer exceeds {limit} bytes", recoverable=False)
        content_type = answer.headers.get("content-type", "")
        if _NOT_A_SCRIPT.search(content_type):
            message = f"build API answered {content_type}, not a script: {shown!r}"
            raise BuildScriptError(message, recoverable=True)
        if not answer.body:
            raise BuildScriptError("build API answered an empty script", recoverable=True)
        return answer.body

    def _session_for_requests(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            tls: ssl.SSLContext | bool = True
            if self._config.insecure_skip_verify:
                tls = False
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _error_page(response: aiohttp.ClientResponse) -> bytes:
    """The start of an error answer's body, to quote. The status already said what
    happened: a body that breaks off or trickles in changes nothing."""
    page = bytearray()
    try:
        async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
            page += chunk
            if len(page) > ERROR_READ_BYTES:
                break
    except (aiohttp.ClientError, TimeoutError):
        pass
    return bytes(page)


async def _read(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The answer's body up to about `limit` bytes, and whether that was all of it. The
    rest is never read: a huge (or highly compressed) body does not sit in memory."""
    content = bytearray()
    async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
        content += chunk
        if len(content) > limit:
            return bytes(content), False
    return bytes(content), True
