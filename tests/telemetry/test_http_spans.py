"""Compute API calls made through `requests` become child spans of the current job span:
the real google-cloud-compute client against the Compute fake on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest
import requests
from google.api_core import exceptions as google_errors
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from tests.fakes.compute_api import ComputeFake
from travis_worker.backends.google.api import ComputeApi
from travis_worker.telemetry import compute_method, install_requests_tracing

tracer = trace.get_tracer("tests")
P = "https://compute.googleapis.com/compute/v1/projects/travis-test"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("POST", f"{P}/zones/us-central1-a/instances", "instances.insert"),
        ("GET", f"{P}/zones/us-central1-a/instances/travis-job-1", "instances.get"),
        ("DELETE", f"{P}/zones/us-central1-a/instances/travis-job-1", "instances.delete"),
        ("GET", f"{P}/zones/us-central1-a/instances?filter=x", "instances.list"),
        ("POST", f"{P}/zones/us-central1-a/operations/op-1/wait", "zoneOperations.wait"),
        ("GET", f"{P}/zones/us-central1-a/operations/op-1", "zoneOperations.get"),
        ("GET", f"{P}/global/operations/op-2", "globalOperations.get"),
        ("GET", f"{P}/aggregated/operations?filter=x", "globalOperations.aggregatedList"),
        ("GET", f"{P}/aggregated/instances", "instances.aggregatedList"),
        ("GET", f"{P}/zones", "zones.list"),
        ("GET", f"{P}/zones/us-central1-a", "zones.get"),
        ("GET", f"{P}/global/images", "images.list"),
        ("GET", f"{P}/global/images/family/ubuntu", "images.getFromFamily"),
        ("GET", f"{P}/global/networks/default", "networks.get"),
        ("GET", f"{P}/regions/us-central1/subnetworks/default", "subnetworks.get"),
        ("GET", f"{P}/zones/us-central1-a/machineTypes", "machineTypes.list"),
        ("POST", f"{P}/zones/z/instances/travis-job-1/setLabels", "instances.setLabels"),
        ("GET", P, "projects.get"),
        ("POST", "https://oauth2.googleapis.com/token", None),
        ("GET", "http://127.0.0.1:1234/compute/v1/other", None),
    ],
)
def test_compute_method_names(method, url, expected):
    assert compute_method(method, url) == expected


@pytest.fixture
async def compute():
    fake = ComputeFake()
    endpoint = await fake.start()
    yield fake, endpoint
    await fake.stop()


def zones_client(endpoint: str) -> compute_v1.ZonesClient:
    return compute_v1.ZonesClient(
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
        transport="rest",
    )


def api_seconds_count(method: str) -> float:
    name = "travis_worker_cloud_api_call_duration_seconds_count"
    return REGISTRY.get_sample_value(name, {"method": method}) or 0.0


async def test_a_compute_call_inside_a_job_is_a_child_of_its_step(spans, compute):
    fake, endpoint = compute
    install_requests_tracing()
    install_requests_tracing()  # a second install must not wrap twice
    client = zones_client(endpoint)
    counted = api_seconds_count("zones.list")
    with (
        tracer.start_as_current_span("ProcessorRun") as root,
        tracer.start_as_current_span("start_instance") as step,
    ):
        # As a backend calls the synchronous client: on a thread, context copied.
        zones = await asyncio.to_thread(lambda: list(client.list(project=fake.project)))
    assert [z.name for z in zones] == fake.zones

    [call] = [s for s in spans.get_finished_spans() if s.name == "compute.zones.list"]
    assert call.parent is not None and call.parent.span_id == step.get_span_context().span_id
    assert call.context.trace_id == root.get_span_context().trace_id
    assert call.kind == SpanKind.CLIENT
    port = int(endpoint.rsplit(":", 1)[1])
    assert dict(call.attributes) == {
        "http.request.method": "GET",
        "url.full": f"{endpoint}/compute/v1/projects/{fake.project}/zones",
        "server.address": "127.0.0.1",
        "server.port": port,
        "gcp.compute.method": "zones.list",
        "http.response.status_code": 200,
    }
    assert call.status.status_code == StatusCode.UNSET
    assert api_seconds_count("zones.list") == counted + 1


async def test_an_api_error_marks_the_span(spans, compute):
    fake, endpoint = compute
    install_requests_tracing()
    client = zones_client(endpoint)
    with tracer.start_as_current_span("ProcessorRun"), pytest.raises(google_errors.NotFound):
        await asyncio.to_thread(client.get, project=fake.project, zone="mars-north1-a")
    [call] = [s for s in spans.get_finished_spans() if s.name == "compute.zones.get"]
    assert call.attributes["http.response.status_code"] == 404
    assert call.status.status_code == StatusCode.ERROR
    assert call.status.description == "HTTP 404"


async def test_a_transport_error_is_recorded_on_the_span(spans):
    install_requests_tracing()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/compute/v1/projects/p/zones"
    with tracer.start_as_current_span("ProcessorRun"), pytest.raises(requests.ConnectionError):
        await asyncio.to_thread(requests.get, url, timeout=5)
    [call] = [s for s in spans.get_finished_spans() if s.name == "compute.zones.list"]
    assert call.status.status_code == StatusCode.ERROR
    assert [event.name for event in call.events] == ["exception"]


async def test_no_span_outside_a_trace_or_when_suppressed(spans, compute):
    fake, endpoint = compute
    install_requests_tracing()
    client = zones_client(endpoint)
    counted = api_seconds_count("zones.list")
    await asyncio.to_thread(lambda: list(client.list(project=fake.project)))
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        with tracer.start_as_current_span("exporting"):
            await asyncio.to_thread(lambda: list(client.list(project=fake.project)))
    finally:
        context.detach(token)
    assert [s.name for s in spans.get_finished_spans()] == ["exporting"]
    assert api_seconds_count("zones.list") == counted + 2  # latency is measured regardless


async def test_compute_api_calls_join_the_job_trace(spans, compute):
    fake, endpoint = compute
    install_requests_tracing()
    api = ComputeApi(fake.project, AnonymousCredentials(), endpoint=endpoint, threads=2)
    try:
        with tracer.start_as_current_span("start_instance") as step:
            await api.get_zone(fake.zones[0])
    finally:
        await api.close()
    [call] = [s for s in spans.get_finished_spans() if s.name == "compute.zones.get"]
    assert call.parent is not None and call.parent.span_id == step.get_span_context().span_id
