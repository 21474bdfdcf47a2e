"""Credential failures during Compute calls: a VM's metadata server or a token endpoint,
served on loopback, that answer with errors. They must come out as ComputeApiError (retried
when passing), never as google-auth's own exceptions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from google.auth import compute_engine
from google.auth import exceptions as auth_errors
from google.auth.compute_engine import _metadata
from google.oauth2 import credentials as oauth2_credentials

from tests.backends.gce.conftest import fast_keys
from tests.fakes.compute_api import ComputeFake
from tests.fakes.token_server import TokenServer
from travis_worker.backends.google.api import ComputeApi, RetryPolicy
from travis_worker.backends.google.api_types import ComputeApiError
from travis_worker.backends.google.auth import auth_error
from travis_worker.backends.google.config import parse_gce_config
from travis_worker.backends.google.instance import delete_vm

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def on_gce(token_server: TokenServer, monkeypatch: pytest.MonkeyPatch) -> object:
    """A VM's own credentials, whose metadata server is `token_server`. google-auth reads
    GCE_METADATA_HOST once, at import, so the value it read is replaced instead."""
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", token_server.host)
    return compute_engine.Credentials()


def api_with(credentials: object, fake: ComputeFake, max_elapsed: float) -> ComputeApi:
    retry = RetryPolicy(initial=0.01, max_elapsed=max_elapsed)
    return ComputeApi(fake.project, credentials, endpoint=fake.endpoint, retry=retry)


async def test_metadata_server_trouble_does_not_abandon_a_deletion(
    compute_only, token_server, on_gce
):
    compute_only.seed_instance("vm", "us-central1-a")
    token_server.failures = 3  # 502: google-auth itself does not retry it
    api = api_with(on_gce, compute_only, max_elapsed=5.0)
    try:
        await delete_vm(api, parse_gce_config(fast_keys(compute_only)), "us-central1-a", "vm")
    finally:
        await api.close()
    assert [delete.name for delete in compute_only.deletes] == ["vm"]
    assert compute_only.instances == {}
    assert token_server.requests > 3


async def test_lasting_metadata_trouble_ends_in_a_retryable_compute_api_error(
    compute_only, token_server, on_gce
):
    token_server.failures = 1000
    api = api_with(on_gce, compute_only, max_elapsed=0.3)
    try:
        with pytest.raises(ComputeApiError) as caught:
            await api.get_zone("us-central1-a")
    finally:
        await api.close()
    assert caught.value.retryable and "credentials" in str(caught.value)
    assert isinstance(caught.value.__cause__, auth_errors.RefreshError)
    assert token_server.requests > 1  # retried within the budget
    assert compute_only.count() == 0  # no call went out without a token


async def test_a_refused_grant_is_not_retried(compute_only, token_server):
    token_server.failures, token_server.status = 1000, 400
    token_server.body = {"error": "invalid_grant", "error_description": "Token revoked"}
    credentials = oauth2_credentials.Credentials(
        token=None,
        refresh_token="revoked",
        token_uri=f"http://{token_server.host}/token",
        client_id="client",
        client_secret="secret",
    )
    api = api_with(credentials, compute_only, max_elapsed=5.0)
    try:
        with pytest.raises(ComputeApiError, match="invalid_grant") as caught:
            await api.get_zone("us-central1-a")
    finally:
        await api.close()
    assert not caught.value.retryable
    assert token_server.requests == 1


def refresh_error_over(transport: auth_errors.TransportError) -> auth_errors.RefreshError:
    """What google-auth's compute_engine credentials raise for a metadata server failure."""
    try:
        try:
            raise transport
        except auth_errors.TransportError as exc:
            raise auth_errors.RefreshError(exc) from exc
    except auth_errors.RefreshError as wrapped:
        return wrapped


@dataclass
class Answer:
    status: int


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (auth_errors.RefreshError("temporarily_unavailable", retryable=True), True),
        (auth_errors.RefreshError("invalid_grant: revoked"), False),
        (refresh_error_over(auth_errors.TransportError("metadata unavailable")), True),
        (refresh_error_over(auth_errors.TransportError("Status: 502", Answer(502))), True),
        (refresh_error_over(auth_errors.TransportError("Status: 403", Answer(403))), False),
        (auth_errors.TransportError("connection refused"), True),
        (auth_errors.DefaultCredentialsError("no credentials found"), False),
        (auth_errors.MalformedError("bad key file"), False),
    ],
)
def test_which_credential_failures_are_passing(error, retryable):
    translated = auth_error("instances.delete", error)
    assert translated.retryable is retryable
    assert translated.method == "instances.delete"
