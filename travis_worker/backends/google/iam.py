"""Which IAM permissions the worker's credentials hold on a project: Resource Manager's
`projects.testIamPermissions` (v1 REST), for `travis-worker doctor`.

It is a different Google API from Compute, with no client library installed, so the call goes
over google-auth's AuthorizedSession. Anyone may ask it about their own permissions (it needs
none itself), but it can still be out of reach: the API disabled in the account's project, a
token without a scope it takes, no route to it. Those are `IamUnreachable`, not a verdict.
"""

from __future__ import annotations

from typing import Any

import requests
from google.auth import exceptions as auth_errors
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from travis_worker.backends.google.config import GceConfig
from travis_worker.errors import WorkerError

GOOGLE_ENDPOINT = "https://cloudresourcemanager.googleapis.com"
# Resource Manager does not take the worker's own scopes (compute, devstorage); a key's
# token is asked for with this one instead. A VM's token has the scopes of its VM (the
# terraform module gives the hosts cloud-platform).
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/cloud-platform.read-only"


class IamUnreachable(WorkerError):
    """Resource Manager gave no verdict (no answer, or an error answer)."""


def resource_manager_endpoint(config: GceConfig) -> str:
    """RESOURCE_MANAGER_ENDPOINT, else API_ENDPOINT (an emulator serving both), else Google."""
    return config.resource_manager_endpoint or config.api_endpoint or GOOGLE_ENDPOINT


def held_permissions(
    credentials: Any, project: str, wanted: frozenset[str], *, endpoint: str, timeout: float
) -> frozenset[str]:
    """Those of `wanted` that `credentials` hold on `project`. Blocking: call it in a thread.
    Raises IamUnreachable."""
    if isinstance(credentials, service_account.Credentials):
        credentials = credentials.with_scopes([READ_ONLY_SCOPE])
    url = f"{endpoint}/v1/projects/{project}:testIamPermissions"
    with AuthorizedSession(credentials) as session:  # type: ignore[no-untyped-call]
        try:
            response = session.post(url, json={"permissions": sorted(wanted)}, timeout=timeout)
            answer = response.json() if response.content else {}
        except (requests.RequestException, auth_errors.GoogleAuthError, ValueError) as exc:
            raise IamUnreachable(f"no answer from {endpoint}: {exc}") from exc
    if response.status_code != 200:
        error = answer.get("error") if isinstance(answer, dict) else None
        message = error.get("message", "") if isinstance(error, dict) else response.reason
        raise IamUnreachable(f"{endpoint} answers {response.status_code}: {message}")
    return frozenset(answer.get("permissions") or ()) & wanted
