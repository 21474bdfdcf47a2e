"""Start and stop hooks run around the worker's life; a failing hook does not stop it."""

from __future__ import annotations

from tests.support.worker import example_payload, publish, running_worker, worker_settings


async def test_hooks_run_before_and_after_the_pool(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id, tmp_path
):
    started, stopped = tmp_path / "started", tmp_path / "stopped"
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url,
        start_hook=f"touch {started}", stop_hook=f"touch {stopped}",
    )  # fmt: skip
    async with running_worker(values):
        assert started.exists() and not stopped.exists()
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert stopped.exists()


async def test_a_failing_start_hook_does_not_stop_the_worker(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, start_hook="false")
    async with running_worker(values):
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_finished(job_id)
    assert reporting.state_names(job_id) == ["received", "started", "passed"]
