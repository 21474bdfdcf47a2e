"""The resources the Compute fake keeps: instances, operations and what clients sent.

JSON is what the real API returns (camelCase, self links on www.googleapis.com), so the
google-cloud-compute client parses it exactly as it parses Google's answers.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.sshvm import SshVm

API_ROOT = "https://www.googleapis.com/compute/v1"
_ids = itertools.count(random.randint(10**15, 10**16))


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def project_link(project: str, path: str) -> str:
    return f"{API_ROOT}/projects/{project}/{path}"


@dataclass
class FakeInstance:
    """A VM as the API sees it; `vm` is the sshd behind it once the guest booted."""

    project: str
    zone: str
    name: str
    body: dict[str, Any]
    network_ip: str
    nat_ip: str | None
    id: int = field(default_factory=lambda: next(_ids))
    status: str = "PROVISIONING"
    creation_timestamp: str = field(default_factory=now_rfc3339)
    vm: SshVm | None = None
    booting: asyncio.Task[None] | None = None

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body.get("labels") or {})

    @property
    def startup_script(self) -> str:
        for item in (self.body.get("metadata") or {}).get("items") or []:
            if item.get("key") in ("startup-script", "windows-startup-script-ps1"):
                return str(item.get("value", ""))
        return ""

    @property
    def authorized_keys(self) -> str:
        """The heredoc the startup script writes into `~travis/.ssh/authorized_keys`."""
        lines = self.startup_script.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if "authorized_keys <<EOF" in line)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "EOF")
        return "".join(lines[start + 1 : end])

    def to_json(self) -> dict[str, Any]:
        interface: dict[str, Any] = {
            "name": "nic0",
            "networkIP": self.network_ip,
            "network": self.body["networkInterfaces"][0].get("network", ""),
        }
        if self.nat_ip is not None:
            interface["accessConfigs"] = [
                {"name": "external-nat", "type": "ONE_TO_ONE_NAT", "natIP": self.nat_ip}
            ]
        return {
            **self.body,
            "kind": "compute#instance",
            "id": str(self.id),
            "name": self.name,
            "zone": project_link(self.project, f"zones/{self.zone}"),
            "status": self.status,
            "creationTimestamp": self.creation_timestamp,
            "selfLink": project_link(self.project, f"zones/{self.zone}/instances/{self.name}"),
            "networkInterfaces": [interface],
        }


@dataclass
class FakeOperation:
    project: str
    zone: str | None
    operation_type: str
    target_link: str
    target_id: int
    name: str = field(default_factory=lambda: f"operation-{uuid.uuid4().hex}")
    id: int = field(default_factory=lambda: next(_ids))
    status: str = "RUNNING"
    errors: list[dict[str, Any]] = field(default_factory=list)
    insert_time: str = field(default_factory=now_rfc3339)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    first_served_done_at: float | None = None
    """loop.time() when a client was first told this operation is DONE."""

    def finish(self, errors: list[dict[str, Any]] | None = None) -> None:
        self.errors = list(errors or [])
        self.status = "DONE"
        self.done.set()

    def to_json(self) -> dict[str, Any]:
        scope = f"zones/{self.zone}" if self.zone else "global"
        result: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(self.id),
            "name": self.name,
            "operationType": self.operation_type,
            "targetLink": self.target_link,
            "targetId": str(self.target_id),
            "status": self.status,
            "progress": 100 if self.status == "DONE" else 0,
            "insertTime": self.insert_time,
            "selfLink": project_link(self.project, f"{scope}/operations/{self.name}"),
        }
        if self.zone:
            result["zone"] = project_link(self.project, f"zones/{self.zone}")
        if self.errors:
            result["error"] = {"errors": self.errors}
        return result


@dataclass(frozen=True)
class InsertRecord:
    """One instances.insert request as received (also the ones answered with an error)."""

    zone: str
    name: str
    body: dict[str, Any]
    request_id: str | None
    at: float
    duplicate: bool = False
    """True when the requestId was seen before, so no second VM was made."""


@dataclass(frozen=True)
class DeleteRecord:
    zone: str
    name: str
    at: float


@dataclass(frozen=True)
class ApiCall:
    method: str
    """The Compute method name, e.g. `instances.insert`, `zoneOperations.wait`."""
    path: str
    at: float


def capacity_error(zone: str, *, available: tuple[str, ...] = ()) -> dict[str, Any]:
    """The error item GCE puts in an insert operation when a zone has no capacity."""
    error: dict[str, Any] = {
        "code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
        if available
        else ("ZONE_RESOURCE_POOL_EXHAUSTED"),
        "message": f"The zone 'projects/p/zones/{zone}' does not have enough resources "
        "available to fulfill the request.  '(resource type:compute)'.",
    }
    if available:
        error["errorDetails"] = [
            {
                "errorInfo": {
                    "reason": "resource_availability",
                    "domain": "compute.googleapis.com",
                    "metadatas": {"zone": zone, "zonesAvailable": ",".join(available)},
                }
            }
        ]
    return error


def quota_error(metric: str, dimensions: dict[str, str]) -> dict[str, Any]:
    """A QUOTA_EXCEEDED item; a `zone` dimension makes it a zonal quota."""
    return {
        "code": "QUOTA_EXCEEDED",
        "message": f"Quota '{metric}' exceeded.",
        "errorDetails": [{"quotaInfo": {"metricName": metric, "dimensions": dimensions}}],
    }


def error_response(status: int, message: str, reason: str) -> web.Response:
    """An error as the API sends it; the client maps it to a google.api_core exception."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"reason": reason, "message": message, "domain": "global"}],
        }
    }
    return web.json_response(body, status=status)
