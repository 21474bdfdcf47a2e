"""A span and a latency sample for every HTTP call the Google clients make.

google-cloud-compute's REST transport sends each API call through
`requests.Session.send`, on a worker thread. Wrapping that one method gives every Compute
call a CLIENT span, a child of whatever span is current in the calling thread's context
(the job's step span, when the thread was started with a copy of the caller's context, as
`asyncio.to_thread` does), and a sample in `travis_worker_cloud_api_call_duration_seconds`
by API method, without the backend knowing about it. (Calls are counted by method and
code where they are made, in backends/google/api.py.)

Calls made outside any span (the exporter's own uploads, a lone token refresh) get no
span, so tracing never traces itself.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from travis_worker import metrics
from travis_worker.util.redact import redact_url

_tracer = trace.get_tracer("travis_worker.http")
_MARK = "_travis_worker_traced"
_COMPUTE_PATH = re.compile(r"^/compute/(?:v1|beta|alpha)/projects/[^/]+(?P<rest>/.*)?$")
_VERBS = {"GET": "get", "DELETE": "delete", "PUT": "update", "PATCH": "patch", "POST": "insert"}


def compute_method(http_method: str, url: str) -> str | None:
    """The Compute API method a REST call stands for (`instances.insert`,
    `zoneOperations.wait`, `images.list`), or None for any other URL."""
    match = _COMPUTE_PATH.match(urlsplit(url).path)
    if match is None:
        return None
    segments = [segment for segment in (match["rest"] or "").split("/") if segment]
    http_method = http_method.upper()
    if not segments:
        return f"projects.{_VERBS.get(http_method, http_method.lower())}"
    scope = ""
    if segments[0] in ("zones", "regions") and len(segments) > 2:
        scope, segments = segments[0][:-1], segments[2:]
    elif segments[0] == "global" and len(segments) > 1:
        scope, segments = "global", segments[1:]
    elif segments[0] == "aggregated" and len(segments) > 1:
        collection = "globalOperations" if segments[1] == "operations" else segments[1]
        return f"{collection}.aggregatedList"
    collection = segments[0]
    if collection == "operations" and scope:
        collection = f"{scope}Operations"
    if len(segments) == 1:
        verb = "list" if http_method == "GET" else "insert"
    elif len(segments) == 2:
        verb = _VERBS.get(http_method, http_method.lower())
    elif len(segments) == 3 and segments[1] == "family":
        verb = "getFromFamily"
    else:
        verb = segments[-1]  # a custom method: .../instances/NAME/setLabels
    return f"{collection}.{verb}"


def install_requests_tracing() -> None:
    """Wrap `requests.Session.send` once per process (later calls do nothing)."""
    original = requests.Session.send
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def send(session: Any, request: Any, **kwargs: Any) -> Any:
        return _send(original, session, request, kwargs)

    setattr(send, _MARK, True)
    setattr(requests.Session, "send", send)  # noqa: B010 (mypy forbids assigning a method)


def _send(original: Any, session: Any, request: Any, kwargs: dict[str, Any]) -> Any:
    http_method = str(request.method or "GET").upper()
    url = str(request.url or "")
    api_method = compute_method(http_method, url)
    started = time.monotonic()
    with _span(http_method, url, api_method) as span:
        try:
            response = original(session, request, **kwargs)
        except Exception:
            _observe(api_method, started)
            raise  # the span records the exception and an error status itself
        _observe(api_method, started)
        code = int(response.status_code)
        if span is not None:
            span.set_attribute("http.response.status_code", code)
            if code >= 400:
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"HTTP {code}"))
        return response


def _span(
    http_method: str, url: str, api_method: str | None
) -> contextlib.AbstractContextManager[trace.Span | None]:
    if context.get_value(_SUPPRESS_INSTRUMENTATION_KEY):
        return contextlib.nullcontext()
    if not trace.get_current_span().get_span_context().is_valid:
        return contextlib.nullcontext()
    parts = urlsplit(url)
    # The query is left out: page tokens and filters make every URL unique and long.
    attributes: dict[str, str | int] = {
        "http.request.method": http_method,
        "url.full": redact_url(f"{parts.scheme}://{parts.netloc}{parts.path}"),
        "server.address": parts.hostname or "",
    }
    if parts.port is not None:
        attributes["server.port"] = parts.port
    if api_method is not None:
        attributes["gcp.compute.method"] = api_method
    name = f"compute.{api_method}" if api_method else f"HTTP {http_method}"
    return _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)


def _observe(api_method: str | None, started: float) -> None:
    if api_method is not None:
        metrics.CLOUD_API_DURATION.labels(method=api_method).observe(time.monotonic() - started)
