"""Google credentials for the Compute API, and their failures as our errors.

An access token is fetched (and refreshed, hourly) inside a Compute call: from the token
endpoint for a service account key, from the metadata server for a VM's own account.
google-auth reports that failing with its own exceptions (RefreshError, TransportError,
DefaultCredentialsError …), siblings of the API's errors rather than subclasses, so
`auth_error` translates them here: left untranslated, a metadata server's passing 503
would abandon a VM deletion or fail a job as an internal error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import google.auth
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.oauth2 import service_account

from travis_worker.backends.google.api_types import ComputeApiError
from travis_worker.backends.google.config import DEFAULT_ZONE, GceConfig
from travis_worker.errors import ConfigError

SCOPES = (
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/compute",
)
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"


def build_credentials(account_info: Mapping[str, Any] | None, endpoint: str = "") -> Any:
    """Service account credentials from ACCOUNT_JSON; anonymous ones for a custom endpoint
    (an emulator needs none); else Google's application default credentials (which may
    probe the metadata server, so call this off the event loop)."""
    if account_info:
        try:
            return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                {"token_uri": DEFAULT_TOKEN_URI, **account_info}, scopes=SCOPES
            )
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"invalid service account key (ACCOUNT_JSON): {exc}") from exc
    if endpoint:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
    except auth_errors.DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google credentials (set TRAVIS_WORKER_GCE_ACCOUNT_JSON): {exc}"
        ) from exc
    return credentials


def probe_metadata() -> tuple[str, str] | None:
    """(project id, zone) from the metadata server when running on GCE, else None.
    Blocking: call it in a thread."""
    from google.auth.compute_engine import _metadata
    from google.auth.transport.requests import Request

    metadata: Any = _metadata  # google-auth leaves these functions untyped
    request = Request()
    if not metadata.is_on_gce(request):
        return None
    project = str(metadata.get_project_id(request))
    zone = str(metadata.get(request, "instance/zone")).rsplit("/", 1)[-1]
    return project, zone


async def project_and_zones(config: GceConfig) -> tuple[str, list[str]]:
    """The project and zones of the job VMs: as configured, else this VM's own (from the
    metadata server, on GCE), and DEFAULT_ZONE when no zone is known. Raises ConfigError
    when there is no project."""
    project, zones = config.project_id, list(config.zones)
    # An emulator or private endpoint without an account: no Google around to ask.
    emulated = config.api_endpoint and config.account_info is None
    if not (project and zones) and not emulated:
        on_gce = await asyncio.to_thread(probe_metadata)
        if on_gce is not None:
            project = project or on_gce[0]
            zones = zones or [on_gce[1]]
    if not project:
        raise ConfigError("missing PROJECT_ID (TRAVIS_WORKER_GCE_PROJECT_ID)")
    return project, zones or [DEFAULT_ZONE]


def auth_error(method: str, exc: auth_errors.GoogleAuthError) -> ComputeApiError:
    """A credentials failure during `method`, as a ComputeApiError that says whether
    trying again may help."""
    if isinstance(exc, auth_errors.DefaultCredentialsError):
        # Missing or malformed credentials: a configuration error, the same on every try.
        return ComputeApiError(method, f"credentials: {exc}", code=None, transient=False)
    return ComputeApiError(method, f"credentials: {exc}", code=None, transient=_transient(exc))


def _transient(exc: auth_errors.GoogleAuthError) -> bool:
    if isinstance(exc, auth_errors.TransportError):
        return _transport_transient(exc)
    if exc.retryable:  # the token endpoint's verdict (5xx, 429, "temporarily_unavailable")
        return True
    # A VM's credentials wrap the metadata server's failure in a RefreshError that is never
    # marked retryable; the TransportError under it tells what happened.
    cause = exc.__cause__
    if isinstance(exc, auth_errors.RefreshError) and isinstance(cause, auth_errors.TransportError):
        return _transport_transient(cause)
    return False


def _transport_transient(exc: auth_errors.TransportError) -> bool:
    """No answer, or google-auth's retries of 5xx/429 ran out: transient. An answer it did
    not retry carries the response: transient only for server trouble or throttling."""
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status", None)
    if not isinstance(status, int):
        return True
    return status >= 500 or status == 429
