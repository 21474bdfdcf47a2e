"""The trace of one job: a `ProcessorRun` root with Go's attributes and one child per
pipeline step (fake backend, real RabbitMQ, the SDK's in-memory exporter)."""

from __future__ import annotations

import asyncio

from opentelemetry.trace import SpanKind, StatusCode

from tests.support.worker import example_payload, publish, running_worker, worker_settings

STEPS = ["generate_script", "sleep", "start_instance", "upload_script", "run_script"]


async def test_one_job_makes_one_span_tree(
    spans, amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, provider_name="fake", travis_site="org"
    )
    async with running_worker(values):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
        # The root span ends when the pipeline returns, just after the final log part.
        for _ in range(200):
            if any(s.name == "ProcessorRun" for s in spans.get_finished_spans()):
                break
            await asyncio.sleep(0.01)

    [root] = [
        s
        for s in spans.get_finished_spans()
        if s.name == "ProcessorRun" and s.attributes.get("job_id") == job_id
    ]
    assert dict(root.attributes) == {
        "app": "worker",
        "job_id": job_id,
        "repo": "igorwwwwwwwwwwwwwwwwwwww/hello-world",
        "infra": "fake",
        "site": "org",
    }
    assert root.parent is None
    assert root.status.status_code == StatusCode.UNSET

    trace_id = root.context.trace_id
    tree = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    children = sorted((s for s in tree if s is not root), key=lambda s: s.start_time or 0)
    assert [s.name for s in children] == STEPS
    for child in children:
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.kind == SpanKind.INTERNAL
        assert child.status.status_code == StatusCode.UNSET
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
