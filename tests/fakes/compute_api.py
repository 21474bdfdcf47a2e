"""An HTTP fake of the Compute Engine REST API (v1), served on 127.0.0.1.

It serves the subset travis-worker uses (zones, regions, networks, subnetworks, machine types,
images, instances insert/get/delete/list/aggregated list, zone operations get/wait, global
operations) to the real google-cloud-compute client. An insert boots a "VM": a real sshd
from `tests.fakes.sshvm` that accepts the key the startup script authorizes; a delete
powers it off. Faults are injected through `faults` and `fail()`; `inserts`, `deletes`
and `calls` record what clients did.

    fake = ComputeFake(vm_host=VmHost())
    endpoint = await fake.start()      # TRAVIS_WORKER_GCE_API_ENDPOINT=endpoint
    ...
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.compute_filter import compile_filter
from tests.fakes.compute_resources import (
    ApiCall,
    DeleteRecord,
    FakeInstance,
    FakeOperation,
    InsertRecord,
    error_response,
    project_link,
)
from tests.fakes.compute_routes import add_routes
from tests.fakes.sshvm import VmHost, random_loopback_address

DEFAULT_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")
DEFAULT_MACHINE_TYPES = frozenset(
    ["n1-standard-2", "n1-standard-4", "n1-standard-8"]
    + [f"n2-standard-{n}" for n in (2, 4, 8, 16)]
)
DEFAULT_IMAGES = ("travis-ci-garnet-trusty-1512502259-986baf0", "travis-ci-ubuntu-1804-1700000000")


@dataclass
class Faults:
    """What goes wrong, set by a test before or while jobs run."""

    boot_delay: float = 0.0
    """Seconds from insert until the instance is RUNNING (its operation DONE)."""
    ssh_delay: float = 0.0
    """Seconds from RUNNING until sshd listens (the guest OS booting)."""
    ssh_never: bool = False
    """The guest never starts sshd."""
    stale_home: bool = False
    """New VMs already hold a `build.sh` (a reused, stale VM)."""
    wait_timeout: float = 120.0
    """zoneOperations.wait answers after this long even if the operation is not done."""
    delete_delay: float = 0.0
    insert_delay: float = 0.0
    """Seconds an insert request takes before it is carried out and answered (a slow API)."""
    operation_errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """zone → error items that every insert operation in that zone ends with."""
    lose_insert_responses: int = 0
    """This many inserts are carried out but answered 503, as if the response was lost."""


@dataclass
class _HttpFault:
    method: str
    status: int
    reason: str
    remaining: int


class ComputeFake:
    """The fake API server. One project of images and instances, zones of one region."""

    def __init__(
        self,
        *,
        project: str = "travis-test",
        region: str = "us-central1",
        zones: tuple[str, ...] = DEFAULT_ZONES,
        vm_host: VmHost | None = None,
        images: tuple[str, ...] = DEFAULT_IMAGES,
        machine_types: frozenset[str] = DEFAULT_MACHINE_TYPES,
        networks: tuple[str, ...] = ("default",),
        subnetworks: tuple[str, ...] = ("default",),
    ) -> None:
        self.project = project
        self.region = region
        self.zones = list(zones)
        self.zone_status = dict.fromkeys(zones, "UP")
        self.vm_host = vm_host
        self.images = list(images)
        self.machine_types = {zone: set(machine_types) for zone in zones}
        self.networks = set(networks)
        self.subnetworks = set(subnetworks)
        self.faults = Faults()
        self.quotas: dict[str, tuple[float, float]] = {
            "CPUS": (2400.0, 0.0),
            "INSTANCES": (1000.0, 0.0),
            "SSD_TOTAL_GB": (81920.0, 0.0),
            "NVIDIA_T4_GPUS": (0.0, 0.0),
        }
        """The region's quotas, metric → (limit, usage), as `regions.get` reports them."""
        self.instances: dict[tuple[str, str], FakeInstance] = {}
        self.operations: dict[str, FakeOperation] = {}
        self.inserts: list[InsertRecord] = []
        self.deletes: list[DeleteRecord] = []
        self.expired: list[str] = []
        """Instances GCE deleted because their maxRunDuration was over."""
        self.calls: list[ApiCall] = []
        self._http_faults: list[_HttpFault] = []
        self._request_ids: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.endpoint = ""

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on a random loopback port; returns the endpoint URL."""
        app = web.Application()
        add_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.endpoint = f"http://127.0.0.1:{port}"
        return self.endpoint

    async def __aenter__(self) -> ComputeFake:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop serving and power off every VM."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        vms = [instance.vm for instance in self.instances.values() if instance.vm]
        await asyncio.gather(*(vm.power_off() for vm in vms), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what tests set up and inspect -----------------------------------------------

    def fail(self, method: str, status: int, *, times: int = 1, reason: str = "") -> None:
        """Answer the next `times` calls of `method` (e.g. `instances.insert`) with `status`."""
        default = {429: "rateLimitExceeded", 503: "backendError"}.get(status, "backendError")
        self._http_faults.append(_HttpFault(method, status, reason or default, times))

    def seed_instance(
        self,
        name: str,
        zone: str,
        *,
        labels: dict[str, str] | None = None,
        status: str = "RUNNING",
        creation_timestamp: str | None = None,
    ) -> FakeInstance:
        """An existing instance (no VM behind it), e.g. an orphan for a reaper to find."""
        body = {"name": name, "labels": dict(labels or {}), "networkInterfaces": [{}]}
        instance = FakeInstance(self.project, zone, name, body, "10.128.0.2", None, status=status)
        if creation_timestamp is not None:
            instance.creation_timestamp = creation_timestamp
        self.instances[(zone, name)] = instance
        return instance

    def instance(self, name: str) -> FakeInstance:
        for (_, instance_name), instance in self.instances.items():
            if instance_name == name:
                return instance
        raise KeyError(name)

    def count(self, method: str | None = None) -> int:
        return sum(1 for call in self.calls if method is None or call.method == method)

    async def preempt(self, name: str) -> None:
        """Preempt a VM as GCE does: record a `preempted` operation, then power it off."""
        instance = self.instance(name)
        link = project_link(self.project, f"zones/{instance.zone}/instances/{instance.name}")
        operation = FakeOperation(
            self.project, instance.zone, "compute.instances.preempted", link, instance.id
        )
        operation.finish()
        self.operations[operation.name] = operation
        if instance.vm is not None:
            await instance.vm.power_off()
        if (instance.body.get("scheduling") or {}).get("instanceTerminationAction") == "DELETE":
            self.instances.pop((instance.zone, instance.name), None)
        else:
            instance.status = "TERMINATED"

    async def drop_ssh(self, name: str) -> None:
        """Break every SSH connection to a VM (and the script it runs); the VM stays up."""
        vm = self.instance(name).vm
        if vm is not None:
            await vm.drop_sessions()

    # --- behaviour behind the routes ------------------------------------------------

    def record(self, method: str, request: web.Request) -> None:
        self.calls.append(ApiCall(method, request.path_qs, asyncio.get_running_loop().time()))

    def injected(self, method: str) -> web.Response | None:
        """An injected HTTP fault for this call of `method`, if one is due."""
        for fault in self._http_faults:
            if fault.method == method and fault.remaining > 0:
                fault.remaining -= 1
                return error_response(fault.status, f"injected {fault.status}", fault.reason)
        return None

    def insert(self, zone: str, body: dict[str, Any], request_id: str | None) -> web.Response:
        loop_time = asyncio.get_running_loop().time()
        name = str(body.get("name", ""))
        duplicate = bool(request_id) and request_id in self._request_ids
        self.inserts.append(InsertRecord(zone, name, body, request_id, loop_time, duplicate))
        injected = self.injected("instances.insert")
        if injected is not None:
            return injected
        if request_id and duplicate:
            return web.json_response(self.operations[self._request_ids[request_id]].to_json())
        problem = self._invalid_insert(zone, body)
        if problem:
            return error_response(400, problem, "invalid")
        if (zone, name) in self.instances:
            return error_response(409, f"The resource '{name}' already exists", "alreadyExists")
        address = random_loopback_address()
        public = bool(body["networkInterfaces"][0].get("accessConfigs"))
        internal = random_loopback_address() if public else address
        instance = FakeInstance(
            self.project, zone, name, body, internal, address if public else None
        )
        self.instances[(zone, name)] = instance
        link = project_link(self.project, f"zones/{zone}/instances/{name}")
        operation = FakeOperation(self.project, zone, "insert", link, instance.id)
        self.operations[operation.name] = operation
        if request_id:
            self._request_ids[request_id] = operation.name
        instance.booting = self.spawn(self._boot(instance, operation))
        if self.faults.lose_insert_responses > 0:
            self.faults.lose_insert_responses -= 1
            return error_response(503, "injected: response lost", "backendError")
        return web.json_response(operation.to_json())

    def _invalid_insert(self, zone: str, body: dict[str, Any]) -> str | None:
        if zone not in self.zones:
            return f"Invalid value for field 'zone': '{zone}'"
        match = re.search(r"zones/([^/]+)/machineTypes/([^/]+)$", str(body.get("machineType")))
        if not match or match.group(1) != zone or match.group(2) not in self.machine_types[zone]:
            return f"Invalid value for field 'resource.machineType': '{body.get('machineType')}'"
        disk = (body.get("disks") or [{}])[0].get("initializeParams") or {}
        image = str(disk.get("sourceImage", "")).rsplit("/", 1)[-1]
        if image not in self.images:
            return f"The resource '{disk.get('sourceImage')}' was not found"
        if not str(disk.get("diskType", "")).startswith(f"zones/{zone}/diskTypes/"):
            return f"Invalid value for field 'diskType': '{disk.get('diskType')}'"
        for accelerator in body.get("guestAccelerators") or []:
            if f"/zones/{zone}/acceleratorTypes/" not in str(accelerator.get("acceleratorType")):
                return f"Invalid accelerator type '{accelerator.get('acceleratorType')}'"
        if not body.get("networkInterfaces"):
            return "At least one network interface is required"
        return None

    async def _boot(self, instance: FakeInstance, operation: FakeOperation) -> None:
        await asyncio.sleep(self.faults.boot_delay)
        errors = self.faults.operation_errors.get(instance.zone)
        if errors:
            self.instances.pop((instance.zone, instance.name), None)
            operation.finish(errors)
            return
        instance.status = "RUNNING"
        operation.finish()
        self._enforce_max_run(instance)
        if self.vm_host is None or self.faults.ssh_never:
            return
        await asyncio.sleep(self.faults.ssh_delay)
        extra = () if instance.nat_ip is None else (instance.network_ip,)
        vm = self.vm_host.create(instance.nat_ip or instance.network_ip, extra)
        vm.authorize(instance.authorized_keys)
        if self.faults.stale_home:
            (vm.home / "build.sh").write_text("echo left over from an earlier job\n")
        instance.vm = vm
        await vm.boot()

    def _enforce_max_run(self, instance: FakeInstance) -> None:
        """GCE deletes a VM itself once its scheduling.maxRunDuration is over (with
        instanceTerminationAction DELETE), whoever else forgot it."""
        scheduling = instance.body.get("scheduling") or {}
        seconds = (scheduling.get("maxRunDuration") or {}).get("seconds")
        if seconds is None or scheduling.get("instanceTerminationAction") != "DELETE":
            return

        async def expire() -> None:
            await asyncio.sleep(float(seconds))
            if self.instances.get((instance.zone, instance.name)) is instance:
                self.expired.append(instance.name)
                if instance.vm is not None:
                    await instance.vm.power_off()
                self.instances.pop((instance.zone, instance.name), None)

        self.spawn(expire())

    def delete(self, zone: str, name: str) -> web.Response:
        instance = self.instances.get((zone, name))
        self.deletes.append(DeleteRecord(zone, name, asyncio.get_running_loop().time()))
        if instance is None:
            return error_response(404, f"The resource '{name}' was not found", "notFound")
        instance.status = "STOPPING"
        link = project_link(self.project, f"zones/{zone}/instances/{name}")
        operation = FakeOperation(self.project, zone, "delete", link, instance.id)
        self.operations[operation.name] = operation
        self.spawn(self._delete(instance, operation))
        return web.json_response(operation.to_json())

    async def _delete(self, instance: FakeInstance, operation: FakeOperation) -> None:
        await asyncio.sleep(self.faults.delete_delay)
        if instance.booting is not None and not instance.booting.done():
            instance.booting.cancel()
            await asyncio.gather(instance.booting, return_exceptions=True)
        if instance.vm is not None:
            await instance.vm.power_off()
        self.instances.pop((instance.zone, instance.name), None)
        for other in self.operations.values():
            if other.target_id == instance.id and other.status != "DONE":
                other.finish()
        operation.finish()

    def spawn(self, coroutine: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def served(self, operation: FakeOperation) -> web.Response:
        if operation.status == "DONE" and operation.first_served_done_at is None:
            operation.first_served_done_at = asyncio.get_running_loop().time()
        return web.json_response(operation.to_json())

    def listing(
        self, resources: list[dict[str, Any]], filter_text: str | None
    ) -> list[dict[str, Any]]:
        try:
            predicate = compile_filter(filter_text)
        except ValueError as exc:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": {"code": 400, "message": str(exc)}}),
                content_type="application/json",
            ) from exc
        return [resource for resource in resources if predicate(resource)]
