"""`travis-worker doctor`'s GCE checks: what the backend's setup and first boot will need,
asked for ahead of time and explained one line each.

    credentials    an access token comes (or anonymous, for an emulator at API_ENDPOINT)
    project        Compute Engine lists the project's zones
    zones          each configured zone is one of them, and UP
    network        NETWORK (and SUBNETWORK in the region) resolve
    machine types  MACHINE_TYPE, PREMIUM_MACHINE_TYPE and the vm_size table resolve in a zone
    images         IMAGE_DEFAULT and every image of the IMAGE_* table match an image
    permissions    the account holds what the worker's calls need (Resource Manager)

The checks share what the earlier ones found (credentials, the client, the zones); a check
whose ground failed says so and is skipped. The calls are the backend's own (ComputeApi), so
the permissions they need are among the worker's.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request

from travis_worker.backends.google.api import ComputeApi, RetryPolicy
from travis_worker.backends.google.api_types import ComputeApiError, Zone, last_segment
from travis_worker.backends.google.auth import build_credentials, project_and_zones
from travis_worker.backends.google.body import VM_SIZE_MACHINE_TYPES
from travis_worker.backends.google.config import GceConfig
from travis_worker.backends.google.iam import (
    IamUnreachable,
    held_permissions,
    resource_manager_endpoint,
)
from travis_worker.backends.google.images import DEFAULT, EnvSelector, newest_image
from travis_worker.backends.google.permissions import worker_permissions
from travis_worker.util.checks import Check, Finding, fail, ok, skip, warn


def _why(exc: ComputeApiError, *, anonymous: bool) -> str:
    """A failed Compute call in an operator's words."""
    # On a 401 the client asks the credentials for a fresh token and reports their failure
    # instead, without a status (anonymous ones never have one to give): a failure with no
    # status that trying again cannot mend is the credentials' (auth_error).
    if exc.code == 401 or (exc.code is None and not exc.retryable):
        if anonymous:
            return f"the Compute API refuses anonymous calls; set ACCOUNT_JSON ({exc})"
        return f"the Compute API refuses these credentials ({exc})"
    if exc.code == 404:
        return f"not found, or not visible to these credentials ({exc})"
    if exc.code is None:
        return f"no answer ({exc})"
    return f"answers {exc.code} ({exc})"


class GceDoctor:
    """The GCE checks for one configuration; `close()` when done."""

    def __init__(self, config: GceConfig, *, seconds: float) -> None:
        self.config = config
        self.seconds = seconds
        self.project = ""
        self.zones: list[str] = []
        self._credentials: Any = None
        self._api: ComputeApi | None = None
        self._project_zones: dict[str, Zone] = {}
        self._usable_zones: list[str] = []

    def checks(self) -> list[Check]:
        return [
            Check("gce credentials", self._credentials_check),
            Check("gce project", self._project_check),
            Check("gce zones", self._zones_check),
            Check("gce network", self._network_check),
            Check("gce machine types", self._machine_types_check),
            Check("gce images", self._images_check),
            Check("gce permissions", self._permissions_check),
        ]

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()

    def _why(self, exc: ComputeApiError) -> str:
        return _why(exc, anonymous=isinstance(self._credentials, AnonymousCredentials))

    async def _credentials_check(self) -> list[Finding]:
        config = self.config
        credentials = await asyncio.to_thread(
            build_credentials, config.account_info, config.api_endpoint
        )
        if isinstance(credentials, AnonymousCredentials):
            self._credentials = credentials
            return [ok(f"gce credentials: anonymous, for API_ENDPOINT {config.api_endpoint}")]
        email = getattr(credentials, "service_account_email", "") or ""
        who = f"service account {email}" if "@" in email else "application default credentials"
        try:
            # A time limit of our own: google-auth's default is 120 s, and a thread stuck that
            # long would keep the process alive after the check gave up on it.
            request = partial(Request(), timeout=self.seconds)
            await asyncio.to_thread(credentials.refresh, request)
        except auth_errors.GoogleAuthError as exc:
            return [fail(f"gce credentials: {who} got no access token: {exc}")]
        self._credentials = credentials
        return [ok(f"gce credentials: {who} got an access token")]

    async def _project_check(self) -> list[Finding]:
        if self._credentials is None:
            return [skip("gce project: not checked without working credentials")]
        self.project, self.zones = await project_and_zones(self.config)
        self._api = ComputeApi(
            self.project,
            self._credentials,
            endpoint=self.config.api_endpoint,
            retry=RetryPolicy(initial=0.2, max_elapsed=self.seconds / 3),
            threads=4,
            delete_threads=1,
            request_timeout=self.seconds,
        )
        try:
            zones = await self._api.list_zones()
        except ComputeApiError as exc:
            return [fail(f"gce project {self.project}: {self._why(exc)}")]
        self._project_zones = {zone.name: zone for zone in zones}
        return [ok(f"gce project {self.project} answers ({len(zones)} zones)")]

    async def _zones_check(self) -> list[Finding]:
        if not self._project_zones:
            return [skip("gce zones: not checked (the project check failed)")]
        findings: list[Finding] = []
        for name in self.zones:
            zone = self._project_zones.get(name)
            if zone is None:
                known = ", ".join(sorted(self._project_zones))
                findings.append(fail(f"gce zone {name}: no such zone (known: {known})"))
            elif zone.status not in ("UP", ""):
                findings.append(fail(f"gce zone {name} is {zone.status}: no VM boots there"))
            else:
                self._usable_zones.append(name)
                findings.append(ok(f"gce zone {name} is UP"))
        return findings

    async def _network_check(self) -> list[Finding]:
        if self._api is None or not self._project_zones:
            return [skip("gce network: not checked (the project check failed)")]
        config, api = self.config, self._api
        try:
            await api.network_link(config.network)
        except ComputeApiError as exc:
            return [fail(f"gce network {config.network}: {self._why(exc)}")]
        if not config.subnetwork:
            return [ok(f"gce network {config.network} resolves")]
        first = self._project_zones.get(self.zones[0])
        region = config.region or (last_segment(first.region) if first else "")
        try:
            await api.subnetwork_link(region, config.subnetwork)
        except ComputeApiError as exc:
            return [fail(f"gce subnetwork {config.subnetwork} in {region}: {self._why(exc)}")]
        return [ok(f"gce network {config.network}, subnetwork {config.subnetwork} resolve")]

    async def _machine_types_check(self) -> list[Finding]:
        if self._api is None or not self._usable_zones:
            return [skip("gce machine types: not checked (no usable zone)")]
        wanted = {
            self.config.machine_type: "MACHINE_TYPE",
            self.config.premium_machine_type: "PREMIUM_MACHINE_TYPE",
        }
        for size, name in VM_SIZE_MACHINE_TYPES.items():
            wanted.setdefault(name, f"vm_size {size}")
        offered: dict[str, list[str]] = {name: [] for name in wanted}
        for zone in self._usable_zones:
            for name in await self._api.machine_type_links(zone, list(wanted)):
                offered[name].append(zone)
        zones = ", ".join(self._usable_zones)
        missing = [f"{name} ({wanted[name]})" for name, found in offered.items() if not found]
        if missing:
            return [fail(f"gce machine types {', '.join(missing)}: in none of {zones}")]
        return [ok(f"gce machine types {', '.join(wanted)} resolve in {zones}")]

    async def _images_check(self) -> list[Finding]:
        if self._api is None or not self._project_zones:
            return [skip("gce images: not checked (the project check failed)")]
        config = self.config
        project = config.images_project or self.project
        by_env = config.image_selector_type == "env"
        answers = EnvSelector(config.image_table).answers() if by_env else {DEFAULT}
        names = sorted({config.image_default if name == DEFAULT else name for name in answers})
        found = {name: await newest_image(self._api, project, name) for name in names}
        missing = [f"^{name}" for name, image in found.items() if image is None]
        if missing:
            return [fail(f"gce images in project {project}: no image matches {', '.join(missing)}")]
        shown = ", ".join(f"{name} → {image.name}" for name, image in found.items() if image)
        chosen = "" if by_env else "; job-board's api selector picks the others per job"
        return [ok(f"gce images in project {project} resolve: {shown}{chosen}")]

    async def _permissions_check(self) -> list[Finding]:
        if self._credentials is None or not self._project_zones:
            return [skip("gce permissions: not checked (the project check failed)")]
        wanted = worker_permissions()
        endpoint = resource_manager_endpoint(self.config)
        try:
            held = await asyncio.to_thread(
                held_permissions,
                self._credentials,
                self.project,
                wanted,
                endpoint=endpoint,
                timeout=self.seconds,
            )
        except IamUnreachable as exc:
            return [warn(f"gce permissions: cannot tell, Resource Manager is out of reach: {exc}")]
        lacking = sorted(wanted - held)
        needed = f"the {len(wanted)} permissions the worker's calls need on project {self.project}"
        if lacking:
            return [fail(f"gce permissions: {len(lacking)} of {needed} are missing: {lacking}")]
        return [ok(f"gce permissions: the credentials hold all {needed}")]
