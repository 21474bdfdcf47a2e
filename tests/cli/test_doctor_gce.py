"""`travis-worker doctor`'s GCE checks against the Compute fake (and Resource Manager's
testIamPermissions, which it also serves): each failure mode once, named by its line."""

from __future__ import annotations

import json

import pytest

from tests.cli.doctor_support import Outcome, doctor, healthy_env
from tests.support.keys import service_account_info
from travis_worker.backends.google.permissions import worker_permissions

pytestmark = pytest.mark.timeout(60)
EMAIL = "doctor@travis-test.iam.gserviceaccount.com"


@pytest.fixture
def env(amqp_vhost_uri, queue_name, build_api, compute_only) -> dict[str, str]:
    return healthy_env(amqp_vhost_uri, queue_name, build_api, compute_only)


def account_json(token_uri: str) -> str:
    """A service account key whose tokens come from `token_uri`."""
    return json.dumps(service_account_info(EMAIL, token_uri=token_uri))


def only_failure(outcome: Outcome) -> str:
    assert outcome.status == 1
    assert len(outcome.failures) == 1, "\n".join(outcome.lines)
    return outcome.failures[0]


async def test_a_service_account_key_gets_its_token(env, token_server):
    env["TRAVIS_WORKER_GCE_ACCOUNT_JSON"] = account_json(f"http://{token_server.host}/token")

    outcome = await doctor(env)

    assert outcome.status == 0, "\n".join(outcome.lines)
    expected = f"ok    gce credentials: service account {EMAIL} got an access token"
    assert outcome.line_about("gce credentials") == expected
    assert token_server.requests >= 2  # the Compute token, then the Resource Manager one


async def test_a_refused_key_fails_the_credentials_and_skips_the_rest(env, token_server):
    token_server.failures, token_server.status = 1000, 400
    token_server.body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    env["TRAVIS_WORKER_GCE_ACCOUNT_JSON"] = account_json(f"http://{token_server.host}/token")

    outcome = await doctor(env)

    failure = only_failure(outcome)
    assert failure.startswith(f"FAIL  gce credentials: service account {EMAIL} got no access")
    assert "invalid_grant" in failure
    assert "BEGIN PRIVATE KEY" not in "\n".join(outcome.lines)
    assert outcome.line_about("gce project") == (
        "skip  gce project: not checked without working credentials"
    )


async def test_an_api_refusing_anonymous_callers_fails_the_project(env, compute_only):
    compute_only.anonymous_allowed = False

    outcome = await doctor(env)

    failure = only_failure(outcome)
    assert failure.startswith(
        "FAIL  gce project travis-test: the Compute API refuses anonymous calls; set ACCOUNT_JSON"
    )


async def test_an_unknown_project(env):
    env["TRAVIS_WORKER_GCE_PROJECT_ID"] = "travis-tset"

    outcome = await doctor(env)

    failure = only_failure(outcome)
    assert failure.startswith("FAIL  gce project travis-tset: not found, or not visible")
    assert "The resource 'projects/travis-tset' was not found" in failure
    assert outcome.line_about("gce zones").startswith("skip ")


async def test_an_unknown_zone(env):
    env["TRAVIS_WORKER_GCE_ZONES"] = "us-central1-a,us-centrall-b"

    outcome = await doctor(env)

    failure = only_failure(outcome)
    assert failure.startswith("FAIL  gce zone us-centrall-b: no such zone (known: us-central1-a")
    assert outcome.line_about("gce zone us-central1-a") == "ok    gce zone us-central1-a is UP"


async def test_a_zone_that_is_down(env, compute_only):
    compute_only.zone_status["us-central1-b"] = "DOWN"

    outcome = await doctor(env)

    failure = only_failure(outcome)
    assert failure == "FAIL  gce zone us-central1-b is DOWN: no VM boots there"


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        pytest.param(
            "NETWORK", "travis-jobs",
            "FAIL  gce network travis-jobs: not found, or not visible to these credentials",
            id="unknown network",
        ),
        pytest.param(
            "MACHINE_TYPE", "n1-standrd-2",
            "FAIL  gce machine types n1-standrd-2 (MACHINE_TYPE): "
            "in none of us-central1-a, us-central1-b",
            id="unknown machine type",
        ),
        pytest.param(
            "IMAGE_DIST_JAMMY", "travis-ci-ubuntu-2204",
            "FAIL  gce images in project travis-test: no image matches ^travis-ci-ubuntu-2204",
            id="unresolvable image",
        ),
    ],
)  # fmt: skip
async def test_a_wrong_setting_fails_its_line(env, key, value, line):
    env[f"TRAVIS_WORKER_GCE_{key}"] = value

    outcome = await doctor(env)

    assert only_failure(outcome).startswith(line)


async def test_missing_permissions_are_listed(env, compute_only):
    lacking = {"compute.disks.create", "compute.instances.create"}
    compute_only.granted_permissions = set(worker_permissions() - lacking)

    outcome = await doctor(env)

    failure = only_failure(outcome)
    assert failure == (
        f"FAIL  gce permissions: 2 of the {len(worker_permissions())} permissions the worker's "
        "calls need on project travis-test are missing: "
        "['compute.disks.create', 'compute.instances.create']"
    )


async def test_an_unreachable_resource_manager_is_a_warning_not_a_failure(env, compute_only):
    compute_only.fail("projects.testIamPermissions", 403, reason="SERVICE_DISABLED")

    outcome = await doctor(env)

    assert outcome.status == 0, "\n".join(outcome.lines)
    [warning] = outcome.starting("warn")
    assert warning.startswith("warn  gce permissions: cannot tell, Resource Manager is out of")
    assert f"{compute_only.endpoint} answers 403" in warning
    assert outcome.lines[-1].endswith("(1 could not tell)")
