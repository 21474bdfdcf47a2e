"""Every route over real HTTP on loopback: auth, statuses and bodies as travis-ci/worker
answers them."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.remote.harness import (
    control_only,
    control_settings,
    running_with_services,
    until,
)
from tests.support.worker import worker_settings
from travis_worker.compat.durations import parse_go_duration

PROCESSOR_ID = re.compile(r"^[0-9a-f-]{36}@\d+\.test-worker$")
# Each protected route with a request that changes nothing when it is allowed.
PROTECTED = [
    ("GET", "/worker", None),
    ("PATCH", "/worker", b"{}"),
    ("DELETE", "/worker", b""),
    ("POST", "/pool/increment", None),
    ("POST", "/pool/decrement", None),
    ("GET", "/metrics", None),
    ("GET", "/debug/", None),
    ("GET", "/debug/tasks", None),
    ("GET", "/debug/threads", None),
    ("GET", "/debug/profile?seconds=0.05", None),
    ("GET", "/debug/heap?top=1", None),
    ("DELETE", "/debug/heap", None),
    ("GET", "/debug/loop", None),
]


@pytest.fixture
async def worker(amqp_vhost_uri, build_api, queue_name):
    values = worker_settings(amqp_vhost_uri, queue_name, build_api.url, provider_name="fake")
    async with running_with_services(control_settings(values)) as running:
        yield running


async def test_health_and_ready_answer_without_credentials(worker):
    client = worker.client
    for path in ("/healthz", "/ready"):
        status, body, response = await client.request("GET", path, auth=None)
        assert (status, body) == (200, b"OK")
        assert response.content_type == "text/plain"


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_every_other_route_wants_basic_auth(method, path, body):
    async with control_only() as client:
        status, _, response = await client.request(method, path, auth=None, data=body)
        assert status == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="travis-ci/worker"'

        for wrong in (("admin", "guess"), ("admin", ""), ("", "admin:s3cret")):
            status, _, _ = await client.request(method, path, auth=wrong, data=body)
            assert status == 403

        status, _, _ = await client.request(method, path, data=body)
        # Past auth: the route itself answers (503 for pool routes: no pool runs here).
        assert status not in (401, 403, 404, 405)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer admin:s3cret",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"admins3cret").decode(),  # no colon: not credentials
    ],
)
async def test_malformed_authorization_counts_as_none(header):
    async with control_only() as client:
        status, _, response = await client.request(
            "GET", "/worker", auth=None, headers={"Authorization": header}
        )
    assert status == 401
    assert "WWW-Authenticate" in response.headers


async def test_basic_scheme_is_case_insensitive_as_in_go():
    token = base64.b64encode(b"admin:s3cret").decode()
    async with control_only() as client:
        status, _, _ = await client.request(
            "GET", "/worker", auth=None, headers={"Authorization": f"bAsIc {token}"}
        )
    assert status == 200


async def test_unknown_paths_are_404_and_wrong_methods_405_before_auth():
    async with control_only() as client:
        status, body, _ = await client.request("GET", "/nope", auth=None)
        assert (status, body) == (404, b"404 page not found\n")
        for method, path in [
            ("POST", "/healthz"),
            ("PUT", "/worker"),
            ("GET", "/pool/increment"),
            ("HEAD", "/ready"),
            ("POST", "/metrics"),
        ]:
            status, body, _ = await client.request(method, path, auth=None)
            assert status == 405, (method, path)


async def test_worker_info_is_gos_json(worker):
    await until(lambda: all(p.status == "waiting" for p in worker.app.pool.processors()))
    status, body, response = await worker.client.request("GET", "/worker")
    assert status == 200
    assert response.content_type == "application/json"
    assert body.endswith(b"}\n") and b": " not in body  # Go's compact encoder + newline
    info = json.loads(body)
    assert list(info) == [
        "version", "revision", "generated", "uptime",
        "poolSize", "expectedPoolSize", "totalProcessed", "processors",
    ]  # fmt: skip
    assert info["version"].startswith("v")
    assert parse_go_duration(info["uptime"]).total_seconds() > 0
    assert (info["poolSize"], info["expectedPoolSize"], info["totalProcessed"]) == (1, 1, 0)
    [processor] = info["processors"]
    assert list(processor) == ["id", "processed", "status", "lastJobId"]
    assert PROCESSOR_ID.match(processor["id"])
    assert (processor["processed"], processor["status"], processor["lastJobId"]) == (
        0,
        "waiting",
        0,
    )


async def test_before_the_pool_runs_ready_is_503_and_processors_null():
    async with control_only() as client:
        status, body, _ = await client.request("GET", "/ready", auth=None)
        assert (status, body) == (503, b"Not Ready")
        status, body, _ = await client.request("GET", "/healthz", auth=None)
        assert (status, body) == (200, b"OK")
        info = await client.info()
        assert info["processors"] is None and info["poolSize"] == 0
        assert b'"processors":null' in (await client.request("GET", "/worker"))[1]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "EOF"),
        (b"   \n", "EOF"),
        (b'{"poolSize": 3', "unexpected EOF"),
        (b"[]", "json: cannot unmarshal array into Go value of type worker.workerInfo"),
        (
            b'{"poolSize": "3"}',
            "json: cannot unmarshal string into Go struct field workerInfo.poolSize of type int",
        ),
        (
            b'{"poolsize": 2.5}',
            "json: cannot unmarshal number 2.5 into Go struct field workerInfo.poolSize "
            "of type int",
        ),
        (b'{"poolSize": 5000}', "poolSize 5000 is above the maximum of 1000"),
    ],
)
async def test_patch_worker_rejects_bad_bodies_like_go(body, error):
    async with control_only() as client:
        status, answer, response = await client.request("PATCH", "/worker", data=body)
    assert status == 400
    assert response.content_type == "application/json"
    assert answer == json.dumps({"error": error}, separators=(",", ":")).encode() + b"\n"


async def test_patch_worker_without_a_positive_pool_size_changes_nothing(worker):
    for body in (b"{}", b"null", b'{"poolSize": 0}', b'{"poolSize": -2, "version": "x"}'):
        status, _, _ = await worker.client.request("PATCH", "/worker", data=body)
        assert status == 204
    info = await worker.client.info()
    assert info["expectedPoolSize"] == 1


async def test_delete_worker_needs_a_body_and_booleans():
    async with control_only() as client:
        status, body, _ = await client.request("DELETE", "/worker", data=b"")
        assert (status, body) == (400, b'{"error":"EOF"}\n')
        status, body, _ = await client.request("DELETE", "/worker", data=b'{"graceful": "yes"}')
        assert status == 400
        assert b"Go struct field shutdownOptions.graceful of type bool" in body


async def test_without_remote_controller_auth_only_health_and_ready_exist():
    async with control_only(auth="") as client:
        assert (await client.request("GET", "/healthz", auth=None))[0] == 200
        assert (await client.request("GET", "/ready", auth=None))[0] == 503
        for method, path in [("GET", "/worker"), ("GET", "/metrics"), ("GET", "/debug/")]:
            status, _, _ = await client.request(method, path)
            assert status == 404, path
