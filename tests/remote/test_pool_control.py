"""Steering a running worker over HTTP while jobs run (fake backend, real RabbitMQ):
resizing the pool, pausing, draining and stopping it."""

from __future__ import annotations

import asyncio

from tests.remote.harness import control_settings, running_with_services, until
from tests.support.worker import example_payload, publish, queue_depth, worker_settings


def settings(amqp_vhost_uri, queue_name, build_api, **overrides):
    values = worker_settings(
        amqp_vhost_uri, queue_name, build_api.url, provider_name="fake", **overrides
    )
    return control_settings(values)


def busy(info) -> int:
    return sum(1 for p in info["processors"] or [] if p["status"] == "processing")


async def test_pool_grows_and_shrinks_while_jobs_run(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    environ = {"TRAVIS_WORKER_FAKE_RUN_SLEEP": "1500ms"}
    values = settings(amqp_vhost_uri, queue_name, build_api)
    async with running_with_services(values, environ) as worker:
        client = worker.client
        status, _, _ = await client.request("PATCH", "/worker", json={"poolSize": 3})
        assert status == 204
        info = await client.info()
        assert (info["poolSize"], info["expectedPoolSize"]) == (3, 3)

        jobs = [job_id, job_id + 1, job_id + 2]
        for job in jobs:
            await publish(amqp_connection, queue_name, example_payload(job))
        await until(lambda: busy_now(worker) == 3)
        info = await client.info()
        assert busy(info) == 3 and len({p["lastJobId"] for p in info["processors"]}) == 3

        # Shrinking takes effect at once in the expected size; the running processors
        # finish their jobs first and only then leave.
        assert (await client.request("POST", "/pool/decrement"))[0] == 204
        info = await client.info()
        assert (info["poolSize"], info["expectedPoolSize"]) == (3, 2)
        for job in jobs:
            await reporting.wait_finished(job)
        await until(lambda: worker.app.pool.size == 2 and worker.app.pool.total_processed == 3)
        info = await client.info()
        assert (info["poolSize"], info["expectedPoolSize"], info["totalProcessed"]) == (2, 2, 3)
        assert all(reporting.state_names(job)[-1] == "passed" for job in jobs)

        assert (await client.request("POST", "/pool/increment"))[0] == 204
        status, _, _ = await client.request("PATCH", "/worker", json={"poolSize": 1})
        assert status == 204
        await until(lambda: worker.app.pool.size == 1)
        # The one processor left still takes jobs.
        await publish(amqp_connection, queue_name, example_payload(job_id + 3))
        await reporting.wait_finished(job_id + 3)
        await until(lambda: worker.app.pool.total_processed == 4)
        assert (await client.info())["totalProcessed"] == 4


def busy_now(worker) -> int:
    return sum(1 for p in worker.app.pool.processors() if p.status == "processing")


async def test_delete_worker_graceful_drains_then_the_process_ends(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    environ = {"TRAVIS_WORKER_FAKE_RUN_SLEEP": "1s"}
    async with running_with_services(
        settings(amqp_vhost_uri, queue_name, build_api), environ
    ) as worker:
        client = worker.client
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "started" in reporting.state_names(job_id))
        status, _, _ = await client.request("DELETE", "/worker", json={"graceful": True})
        assert status == 204
        # Draining: not ready, the running job goes on, nothing new is taken.
        assert (await client.request("GET", "/ready", auth=None))[:2] == (503, b"Not Ready")
        await publish(amqp_connection, queue_name, example_payload(job_id + 1))
        assert await asyncio.wait_for(worker.task, 20) == 0
        assert reporting.state_names(job_id) == ["received", "started", "passed"]
        assert job_id + 1 not in reporting.states
        assert await queue_depth(amqp_connection, queue_name) == 1
        # The listener went away with the pool.
        assert worker.services.control is not None
        try:
            await client.request("GET", "/healthz", auth=None)
        except OSError:
            pass
        else:
            raise AssertionError("control endpoint still answering after the drain")


async def test_delete_worker_pause_and_resume(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    values = settings(amqp_vhost_uri, queue_name, build_api, pool_size="2")
    async with running_with_services(values) as worker:
        client = worker.client
        pause = {"graceful": True, "pause": True}
        assert (await client.request("DELETE", "/worker", json=pause))[0] == 204
        await until(lambda: worker.app.pool.size == 0)
        info = await client.info()
        assert (info["poolSize"], info["expectedPoolSize"], info["processors"]) == (0, 0, None)
        assert (await client.request("GET", "/ready", auth=None))[0] == 503
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await asyncio.sleep(0.5)
        assert job_id not in reporting.states  # paused: nobody consumes
        assert not worker.task.done()  # …but the process stays up

        assert (await client.request("DELETE", "/worker", json=pause))[0] == 204
        assert (await client.info())["expectedPoolSize"] == 2
        await reporting.wait_finished(job_id)
        assert (await client.request("GET", "/ready", auth=None))[0] == 200


async def test_delete_worker_not_graceful_resets_the_running_job(
    amqp_connection, amqp_vhost_uri, reporting, build_api, queue_name, job_id
):
    environ = {"TRAVIS_WORKER_FAKE_RUN_SLEEP": "60s"}
    async with running_with_services(
        settings(amqp_vhost_uri, queue_name, build_api), environ
    ) as worker:
        await publish(amqp_connection, queue_name, example_payload(job_id))
        await reporting.wait_for(lambda: "started" in reporting.state_names(job_id))
        status, _, _ = await worker.client.request("DELETE", "/worker", json={"graceful": False})
        assert status == 204
        assert await asyncio.wait_for(worker.task, 20) == 0
        await reporting.wait_finished(job_id)
        assert reporting.state_names(job_id) == ["received", "started", "reset"]
