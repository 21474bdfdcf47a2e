"""Where traces go: Cloud Trace under the Go settings, OTLP to a collector, sampling
1 in OPENCENSUS_SAMPLING_RATE."""

from __future__ import annotations

import gzip
import json

import pytest
from aiohttp import web

from tests.support.keys import service_account_info
from travis_worker.config import load_settings
from travis_worker.errors import ConfigError
from travis_worker.telemetry import build_tracing
from travis_worker.telemetry.tracing import TRACE_APPEND_SCOPE, trace_credentials


@pytest.fixture(scope="module")
def account_info() -> dict[str, str]:
    """A service account key as the console hands it out."""
    return service_account_info("worker@trace-project.iam.gserviceaccount.com")


def settings(environ: dict[str, str] | None = None, **values: str):
    return load_settings(values, environ or {})


def test_tracing_is_off_by_default():
    assert build_tracing(settings()) is None


async def test_go_settings_export_to_cloud_trace_with_the_account_json(account_info, tmp_path):
    environ = {
        "TRAVIS_WORKER_OPENCENSUS_TRACING_ENABLED": "true",
        "TRAVIS_WORKER_OPENCENSUS_SAMPLING_RATE": "4",
        "TRAVIS_WORKER_STACKDRIVER_TRACE_ACCOUNT_JSON": json.dumps(account_info),
    }
    setup = build_tracing(settings(environ))
    assert setup is not None
    [exporter] = setup.exporters
    assert type(exporter).__name__ == "CloudTraceSpanExporter"
    assert exporter.project_id == "trace-project"  # from the account, as Go's client did
    assert setup.provider.sampler.get_description().startswith(
        "ParentBased{root:TraceIdRatioBased{0.25}"
    )
    await setup.shutdown()

    # A file path works too, and an explicit project wins over the account's.
    path = tmp_path / "trace-account.json"
    path.write_text(json.dumps(account_info))
    setup = build_tracing(
        settings(
            otel_tracing_enabled="true",
            stackdriver_trace_account_json=str(path),
            stackdriver_project_id="other-project",
        )
    )
    assert setup is not None and setup.exporters[0].project_id == "other-project"
    await setup.shutdown()
    credentials, project = trace_credentials(str(path))
    assert project == "trace-project"
    assert list(credentials.scopes) == [TRACE_APPEND_SCOPE]


def test_one_job_in_n_is_traced():
    setup = build_tracing(
        settings(
            otel_tracing_enabled="true", otel_traces_exporter="none", opencensus_sampling_rate="4"
        )
    )
    assert setup is not None and setup.exporters == []
    tracer = setup.provider.get_tracer("test")
    sampled = 0
    for _ in range(400):
        with tracer.start_as_current_span("ProcessorRun") as span:
            sampled += span.get_span_context().trace_flags.sampled
            # Children follow their root's decision.
            with tracer.start_as_current_span("run_script") as child:
                assert (
                    child.get_span_context().trace_flags.sampled
                    == span.get_span_context().trace_flags.sampled
                )
    assert 50 <= sampled <= 150  # 100 expected; ±5.8 standard deviations


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"otel_traces_exporter": "jaeger"}, "unknown trace exporter 'jaeger'"),
        ({"stackdriver_trace_account_json": "{not json"}, "STACKDRIVER_TRACE_ACCOUNT_JSON is not"),
        (
            {"stackdriver_trace_account_json": '{"type": "service_account"}'},
            "invalid stackdriver-trace-account-json",
        ),
        ({"stackdriver_trace_account_json": "/nonexistent/key.json"}, "cannot read"),
        (
            {"stackdriver_trace_account_json": '{"type": "external_account"}'},
            "unsupported credential type 'external_account'",
        ),
    ],
)
def test_bad_tracing_settings_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        build_tracing(settings(otel_tracing_enabled="true", **values))


def test_cloud_trace_without_any_credentials_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # no metadata server probe
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud user credentials
    with pytest.raises(ConfigError, match="Cloud Trace export needs credentials"):
        build_tracing(settings(otel_tracing_enabled="true", stackdriver_project_id="p"))


async def test_otlp_export_reaches_a_collector():
    # The exporter is the `otlp` extra until it joins the main dependencies.
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        received.append(message)
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(collector, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        setup = build_tracing(
            settings(
                otel_tracing_enabled="true",
                otel_traces_exporter="otlp",
                otel_exporter_otlp_traces_endpoint=f"http://127.0.0.1:{port}/v1/traces",
                hostname="worker-7",
            )
        )
        assert setup is not None
        tracer = setup.provider.get_tracer("travis_worker.processor")
        with (
            tracer.start_as_current_span(
                "ProcessorRun", attributes={"app": "worker", "job_id": 42}
            ),
            tracer.start_as_current_span("run_script"),
        ):
            pass
        await setup.shutdown()  # flushes, from a thread: the collector runs on this loop
    finally:
        await runner.cleanup()

    spans = {
        span.name: span
        for message in received
        for resource_spans in message.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    assert set(spans) == {"ProcessorRun", "run_script"}
    assert spans["run_script"].parent_span_id == spans["ProcessorRun"].span_id
    attributes = {a.key: a.value for a in spans["ProcessorRun"].attributes}
    assert attributes["app"].string_value == "worker" and attributes["job_id"].int_value == 42
    resource = {
        a.key: a.value.string_value for a in received[0].resource_spans[0].resource.attributes
    }
    assert resource["service.name"] == "travis-worker"
    assert resource["host.name"] == "worker-7"
