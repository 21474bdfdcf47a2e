"""`/metrics`: Prometheus text that the official parser reads, with counters that match
the jobs that ran (local backend, real RabbitMQ)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.remote.harness import ControlClient, control_settings, running_with_services, until
from tests.support.worker import example_payload, publish, worker_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: ControlClient) -> Samples:
    status, body, response = await client.request("GET", "/metrics")
    assert status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_parse_and_count_the_jobs_that_ran(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    passing, failing = [job_id, job_id + 1], job_id + 2
    build_api.scripts[failing] = b"#!/bin/bash\necho nope\nexit 1\n"
    values = control_settings(worker_settings(amqp_vhost_uri, queue_name, build_api.url))
    async with running_with_services(values) as worker:
        client = worker.client
        before = await scrape(client)
        for job in [*passing, failing]:
            await publish(amqp_connection, queue_name, example_payload(job))
        for job in [*passing, failing]:
            await reporting.wait_finished(job)
        await until(lambda: worker.app.pool.total_processed == 3)
        after = await scrape(client)

    assert delta(before, after, "travis_worker_jobs_received_total") == 3
    assert delta(before, after, "travis_worker_jobs_started_total") == 3
    assert delta(before, after, "travis_worker_jobs_finished_total", state="passed") == 2
    assert delta(before, after, "travis_worker_jobs_finished_total", state="failed") == 1
    assert delta(before, after, "travis_worker_job_duration_seconds_count", state="passed") == 2
    assert delta(before, after, "travis_worker_job_duration_seconds_count", state="failed") == 1
    assert delta(before, after, "travis_worker_job_queue_time_seconds_count") == 3
    first_byte = {"phase": "first_log_byte", "backend": "local", "zone": ""}
    assert delta(before, after, "travis_worker_boot_phase_seconds_count", **first_byte) == 3
    assert delta(before, after, "travis_worker_log_parts_total") >= 6  # output + final, ×3
    assert delta(before, after, "travis_worker_log_bytes_total") >= len("Hello World\n") * 2
    assert after[("travis_worker_processors", (("status", "waiting"),))] >= 1
    assert after[("travis_worker_pool_expected_size", ())] == 1
    assert after[("travis_worker_ready", ())] == 1
    assert ("travis_worker_event_loop_lag_seconds", ()) in after
