"""URL routes of the Compute fake: REST paths → `ComputeFake` behaviour, JSON in and out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.compute_resources import error_response, project_link

if TYPE_CHECKING:
    from tests.fakes.compute_api import ComputeFake

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
_P = "/compute/v1/projects/{project}"


def add_routes(app: web.Application, fake: ComputeFake) -> None:
    def api(method: str, handler: Callable[[web.Request], Awaitable[web.Response]]) -> Route:
        async def route(request: web.Request) -> web.StreamResponse:
            fake.record(method, request)
            # An insert is recorded (and its body kept) even when it is answered with a fault.
            injected = None if method == "instances.insert" else fake.injected(method)
            return injected if injected is not None else await handler(request)

        return route

    def zone_json(name: str) -> dict[str, Any]:
        return {
            "kind": "compute#zone",
            "name": name,
            "selfLink": project_link(fake.project, f"zones/{name}"),
            "region": project_link(fake.project, f"regions/{fake.region}"),
            "status": fake.zone_status[name],
        }

    def items(resources: list[dict[str, Any]], request: web.Request) -> web.Response:
        chosen = fake.listing(resources, request.query.get("filter"))
        return web.json_response({"items": chosen})

    def not_found(what: str) -> web.Response:
        return error_response(404, f"The resource '{what}' was not found", "notFound")

    async def zones_get(request: web.Request) -> web.Response:
        zone = request.match_info["zone"]
        return web.json_response(zone_json(zone)) if zone in fake.zones else not_found(zone)

    async def zones_list(request: web.Request) -> web.Response:
        return items([zone_json(zone) for zone in fake.zones], request)

    async def regions_get(request: web.Request) -> web.Response:
        region = request.match_info["region"]
        if region != fake.region:
            return not_found(f"projects/{fake.project}/regions/{region}")
        quotas = [
            {"metric": metric, "limit": limit, "usage": usage}
            for metric, (limit, usage) in sorted(fake.quotas.items())
        ]
        link = project_link(fake.project, f"regions/{region}")
        return web.json_response(
            {"kind": "compute#region", "name": region, "selfLink": link, "quotas": quotas}
        )

    async def networks_get(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in fake.networks:
            return not_found(f"projects/{fake.project}/global/networks/{name}")
        link = project_link(fake.project, f"global/networks/{name}")
        return web.json_response({"kind": "compute#network", "name": name, "selfLink": link})

    async def subnetworks_get(request: web.Request) -> web.Response:
        region, name = request.match_info["region"], request.match_info["name"]
        if name not in fake.subnetworks or region != fake.region:
            return not_found(f"projects/{fake.project}/regions/{region}/subnetworks/{name}")
        link = project_link(fake.project, f"regions/{region}/subnetworks/{name}")
        return web.json_response({"name": name, "selfLink": link, "region": region})

    def machine_type_json(zone: str, name: str) -> dict[str, Any]:
        link = project_link(fake.project, f"zones/{zone}/machineTypes/{name}")
        return {"kind": "compute#machineType", "name": name, "zone": zone, "selfLink": link}

    async def machine_types_get(request: web.Request) -> web.Response:
        zone, name = request.match_info["zone"], request.match_info["name"]
        if name not in fake.machine_types.get(zone, set()):
            return not_found(f"projects/{fake.project}/zones/{zone}/machineTypes/{name}")
        return web.json_response(machine_type_json(zone, name))

    async def machine_types_list(request: web.Request) -> web.Response:
        zone = request.match_info["zone"]
        types = sorted(fake.machine_types.get(zone, set()))
        return items([machine_type_json(zone, name) for name in types], request)

    async def images_list(request: web.Request) -> web.Response:
        project = request.match_info["project"]
        images = [
            {
                "kind": "compute#image",
                "name": name,
                "selfLink": project_link(project, f"global/images/{name}"),
                "status": "READY",
            }
            for name in fake.images
        ]
        return items(images, request)

    async def instances_insert(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(fake.faults.insert_delay)
        return fake.insert(request.match_info["zone"], body, request.query.get("requestId"))

    async def instances_get(request: web.Request) -> web.Response:
        zone, name = request.match_info["zone"], request.match_info["name"]
        instance = fake.instances.get((zone, name))
        return web.json_response(instance.to_json()) if instance else not_found(name)

    async def instances_delete(request: web.Request) -> web.Response:
        return fake.delete(request.match_info["zone"], request.match_info["name"])

    async def instances_list(request: web.Request) -> web.Response:
        zone = request.match_info["zone"]
        found = [i.to_json() for (z, _), i in fake.instances.items() if z == zone]
        return items(found, request)

    async def instances_aggregated(request: web.Request) -> web.Response:
        by_zone: dict[str, list[dict[str, Any]]] = {}
        for instance in fake.instances.values():
            by_zone.setdefault(f"zones/{instance.zone}", []).append(instance.to_json())
        scopes = {
            scope: {"instances": fake.listing(found, request.query.get("filter"))}
            for scope, found in by_zone.items()
        }
        return web.json_response({"items": {k: v for k, v in scopes.items() if v["instances"]}})

    def operation(request: web.Request) -> Any:
        return fake.operations.get(request.match_info["name"])

    async def operations_get(request: web.Request) -> web.Response:
        found = operation(request)
        return fake.served(found) if found else not_found(request.match_info["name"])

    async def operations_wait(request: web.Request) -> web.Response:
        found = operation(request)
        if found is None:
            return not_found(request.match_info["name"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(found.done.wait(), fake.faults.wait_timeout)
        return fake.served(found)

    async def operations_aggregated(request: web.Request) -> web.Response:
        by_scope: dict[str, list[dict[str, Any]]] = {}
        for found in fake.operations.values():
            scope = f"zones/{found.zone}" if found.zone else "global"
            by_scope.setdefault(scope, []).append(found.to_json())
        scopes = {
            scope: {"operations": fake.listing(ops, request.query.get("filter"))}
            for scope, ops in by_scope.items()
        }
        return web.json_response({"items": {k: v for k, v in scopes.items() if v["operations"]}})

    z = f"{_P}/zones/{{zone}}"
    app.router.add_get(f"{_P}/zones", api("zones.list", zones_list))
    app.router.add_get(z, api("zones.get", zones_get))
    app.router.add_get(f"{_P}/regions/{{region}}", api("regions.get", regions_get))
    app.router.add_get(f"{_P}/global/networks/{{name}}", api("networks.get", networks_get))
    app.router.add_get(
        f"{_P}/regions/{{region}}/subnetworks/{{name}}", api("subnetworks.get", subnetworks_get)
    )
    app.router.add_get(f"{z}/machineTypes", api("machineTypes.list", machine_types_list))
    app.router.add_get(f"{z}/machineTypes/{{name}}", api("machineTypes.get", machine_types_get))
    app.router.add_get(f"{_P}/global/images", api("images.list", images_list))
    app.router.add_post(f"{z}/instances", api("instances.insert", instances_insert))
    app.router.add_get(f"{z}/instances", api("instances.list", instances_list))
    app.router.add_get(f"{z}/instances/{{name}}", api("instances.get", instances_get))
    app.router.add_delete(f"{z}/instances/{{name}}", api("instances.delete", instances_delete))
    app.router.add_get(
        f"{_P}/aggregated/instances", api("instances.aggregatedList", instances_aggregated)
    )
    app.router.add_get(f"{z}/operations/{{name}}", api("zoneOperations.get", operations_get))
    app.router.add_post(
        f"{z}/operations/{{name}}/wait", api("zoneOperations.wait", operations_wait)
    )
    app.router.add_get(
        f"{_P}/global/operations/{{name}}", api("globalOperations.get", operations_get)
    )
    app.router.add_get(
        f"{_P}/aggregated/operations",
        api("globalOperations.aggregatedList", operations_aggregated),
    )
