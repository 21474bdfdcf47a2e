"""A thin async wrapper around the google-cloud-compute clients.

The clients are synchronous (requests), so every call runs on a thread pool and the event
loop never blocks. Delete requests have a pool of their own, so that they never queue
behind the long operation waits (up to 2 min each) that fill the main one. At this boundary:

* every call but a delete first waits for the rate limiter (a delete must never be held
  back: it is what stops the spending);
* 429, 5xx, rate-limit 403s and transport errors are retried with jittered exponential
  backoff for up to `RetryPolicy.max_elapsed` (the client's own retries are switched off so
  that each HTTP request is counted, once, in CLOUD_API_CALLS);
* google.api_core exceptions and credential failures (`auth`) become
  ComputeApiError, operation errors OperationError;
* answers become small frozen dataclasses (`api_types`), so nothing above this module
  handles protobuf messages.

`ComputeApi.create(project, endpoint=..., account_info=...)` is also what the orphan reaper
uses for `list_instances` and `delete_instance`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as google_errors
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_errors
from google.cloud import compute_v1

from travis_worker import metrics
from travis_worker.backends.google.api_types import (
    ComputeApiError,
    Image,
    InstanceInfo,
    Operation,
    Quota,
    Zone,
    instance_info,
    operation,
)
from travis_worker.backends.google.auth import auth_error, build_credentials
from travis_worker.backends.google.ratelimit import RateLimiter
from travis_worker.util.backoff import Backoff

logger = logging.getLogger(__name__)
T = TypeVar("T")

# GCE answers zoneOperations.wait after at most 2 minutes; a little more on our side means
# our own timeout only fires when the connection is really stuck.
WAIT_CALL_SECONDS = 150.0
# Each job holds a thread in an operation wait while its VM boots, and again while its VM is
# deleted; at the production pool size of 90 a burst of both may coincide: 2 × 90, plus room
# for the short calls (lookups, preemption checks). Idle threads are not kept.
API_THREADS = 192
# Delete requests only (never an operation wait). At an immediate shutdown every VM of a full
# pool (90) is deleted at once; with a thread each, a slow API answering in seconds still
# gets every request out well within the shutdown timeout. Idle threads are not kept.
DELETE_THREADS = 96


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """travis-ci/worker's backoffRetry: 1 s initial, ×1.5, ±50 % jitter, ≤ 60 s apart, for
    at most `max_elapsed` seconds."""

    initial: float = 1.0
    max_interval: float = 60.0
    max_elapsed: float = 60.0


class ComputeApi:
    """The Compute calls the worker makes, as coroutines, for one project."""

    def __init__(
        self,
        project: str,
        credentials: Any,
        *,
        endpoint: str = "",
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        threads: int = API_THREADS,
        delete_threads: int = DELETE_THREADS,
        request_timeout: float = 60.0,
    ) -> None:
        self.project = project
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self._threads = concurrent.futures.ThreadPoolExecutor(threads, "compute-api")
        self._delete_threads = concurrent.futures.ThreadPoolExecutor(
            delete_threads, "compute-delete"
        )
        # Inserts whose request is still on the wire, by (zone, VM name); see _insert_answered.
        self._inserting: dict[tuple[str, str], asyncio.Future[Any]] = {}
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        kwargs = {"credentials": credentials, "client_options": options, "transport": "rest"}
        self._instances = compute_v1.InstancesClient(**kwargs)
        self._zone_operations = compute_v1.ZoneOperationsClient(**kwargs)
        self._global_operations = compute_v1.GlobalOperationsClient(**kwargs)
        self._zones = compute_v1.ZonesClient(**kwargs)
        self._regions = compute_v1.RegionsClient(**kwargs)
        self._networks = compute_v1.NetworksClient(**kwargs)
        self._subnetworks = compute_v1.SubnetworksClient(**kwargs)
        self._machine_types = compute_v1.MachineTypesClient(**kwargs)
        self._images = compute_v1.ImagesClient(**kwargs)
        _widen_connection_pool(self._instances, threads + delete_threads)
        _widen_connection_pool(self._zone_operations, threads)

    @classmethod
    async def create(
        cls,
        project: str,
        *,
        endpoint: str = "",
        account_info: Mapping[str, Any] | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> ComputeApi:
        """Build credentials (off the event loop) and the clients."""
        credentials = await asyncio.to_thread(build_credentials, account_info, endpoint)
        return cls(project, credentials, endpoint=endpoint, limiter=limiter, retry=retry)

    async def close(self) -> None:
        for pool in (self._threads, self._delete_threads):
            pool.shutdown(wait=False, cancel_futures=True)
        if self.limiter is not None:
            await self.limiter.close()

    # --- the calls -------------------------------------------------------------------

    def _options(self, timeout: float | None = None) -> dict[str, Any]:
        # retry=None: our loop in _call retries, so each HTTP request is seen and counted.
        return {"retry": None, "timeout": timeout or self.request_timeout}

    async def get_zone(self, zone: str) -> Zone:
        call = partial(self._zones.get, project=self.project, zone=zone, **self._options())
        found = await self._call("zones.get", call, zone=zone)
        return Zone(found.name, found.region, found.status)

    async def list_zones(self) -> list[Zone]:
        """Every zone of the project, whatever its status (`doctor`: the project answers)."""
        request = {"project": self.project}
        found = await self._call("zones.list", partial(self._list, self._zones, request))
        return [Zone(zone.name, zone.region, zone.status) for zone in found]

    async def list_region_zones(self, region_link: str) -> list[Zone]:
        """Zones of a region (travis-ci/worker's alternate zones), whatever their status."""
        request = {"project": self.project, "filter": f"region eq {region_link}"}
        found = await self._call("zones.list", partial(self._list, self._zones, request))
        return [Zone(zone.name, zone.region, zone.status) for zone in found]

    async def region_quotas(self, region: str) -> list[Quota]:
        call = partial(self._regions.get, project=self.project, region=region, **self._options())
        found = await self._call("regions.get", call)
        return [Quota(str(q.metric), float(q.limit), float(q.usage)) for q in found.quotas]

    async def network_link(self, name: str) -> str:
        call = partial(self._networks.get, project=self.project, network=name, **self._options())
        return str((await self._call("networks.get", call)).self_link)

    async def subnetwork_link(self, region: str, name: str) -> str:
        call = partial(
            self._subnetworks.get,
            project=self.project,
            region=region,
            subnetwork=name,
            **self._options(),
        )
        return str((await self._call("subnetworks.get", call)).self_link)

    async def machine_type_links(self, zone: str, names: list[str]) -> dict[str, str]:
        """Self links of the machine types among `names` that `zone` offers (one call)."""
        pattern = "|".join(sorted(set(names)))
        request = {"project": self.project, "zone": zone, "filter": f"name eq ({pattern})"}
        call = partial(self._list, self._machine_types, request)
        found = await self._call("machineTypes.list", call, zone=zone)
        return {item.name: item.self_link for item in found if item.name in names}

    async def find_images(self, project: str, name_pattern: str) -> list[Image]:
        """Images whose whole name matches the RE2 `name_pattern`."""
        request = {"project": project, "filter": f"name eq {name_pattern}"}
        found = await self._call("images.list", partial(self._list, self._images, request))
        return [Image(item.name, item.self_link) for item in found]

    async def insert_instance(self, zone: str, body: Mapping[str, Any], request_id: str) -> str:
        """Insert an instance; returns the operation name. `request_id` makes the insert
        idempotent: a retry after a lost answer gets the first request's operation back."""
        request = compute_v1.InsertInstanceRequest(
            project=self.project,
            zone=zone,
            instance_resource=compute_v1.Instance.from_json(json.dumps(body)),
            request_id=request_id,
        )
        call = partial(self._instances.insert_unary, request=request, **self._options())
        landing = (zone, str(body.get("name", "")))
        found = await self._call("instances.insert", call, zone=zone, landing=landing)
        return str(found.name)

    async def wait_operation(self, zone: str, name: str) -> Operation:
        """The zone operation once DONE, or as it is after GCE's wait limit (~2 min)."""
        call = partial(
            self._zone_operations.wait,
            project=self.project,
            zone=zone,
            operation=name,
            **self._options(WAIT_CALL_SECONDS),
        )
        return operation(await self._call("zoneOperations.wait", call, zone=zone))

    async def get_instance(self, zone: str, name: str) -> InstanceInfo:
        call = partial(
            self._instances.get, project=self.project, zone=zone, instance=name, **self._options()
        )
        return instance_info(await self._call("instances.get", call, zone=zone))

    async def list_instances(self, filter_text: str = "") -> list[InstanceInfo]:
        """Instances of every zone (aggregated list), optionally filtered by the API, e.g.
        `labels.created-by = travis-worker`."""
        request: dict[str, Any] = {"project": self.project}
        if filter_text:
            request["filter"] = filter_text
        call = partial(self._aggregated, self._instances, request, "instances")
        return [instance_info(item) for item in await self._call("instances.aggregatedList", call)]

    async def delete_instance(self, zone: str, name: str) -> str | None:
        """Request deletion; returns the operation name, or None if the instance is gone.
        Never rate limited: deleting is what stops the spending."""
        await self._insert_answered(zone, name)
        call = partial(
            self._instances.delete_unary,
            project=self.project,
            zone=zone,
            instance=name,
            **self._options(),
        )
        try:
            found = await self._call(
                "instances.delete", call, zone=zone, limited=False, threads=self._delete_threads
            )
        except ComputeApiError as exc:
            if exc.code == 404:
                return None
            raise
        return str(found.name)

    async def was_preempted(self, instance_id: int) -> bool:
        """Whether GCE recorded a `compute.instances.preempted` operation for the instance."""
        request = {"project": self.project, "filter": f"targetId eq {instance_id}"}
        call = partial(self._aggregated, self._global_operations, request, "operations")
        found = await self._call("globalOperations.aggregatedList", call)
        return any(
            item.operation_type == "compute.instances.preempted"
            and item.kind in ("", "compute#operation")
            for item in found
        )

    def _list(self, client: Any, request: dict[str, Any]) -> list[Any]:
        return list(client.list(request=request, **self._options()))

    def _aggregated(self, client: Any, request: dict[str, Any], field: str) -> list[Any]:
        pages = client.aggregated_list(request=request, **self._options())
        return [item for _, scoped in pages for item in getattr(scoped, field)]

    # --- plumbing --------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        call: Callable[[], T],
        *,
        zone: str = "global",
        limited: bool = True,
        landing: tuple[str, str] | None = None,
        threads: concurrent.futures.Executor | None = None,
    ) -> T:
        """Run one API method with rate limiting, counting, translation and retries.

        `zone`: the zone the call is about, for the error counts (a stockout or an outage is
        often one zone's); calls about no single zone count as `global`.

        `landing` (inserts: the zone and name of the VM): a caller cancelled mid-request
        leaves at once, while the request runs on in its thread and is kept track of, so
        that a delete of that VM waits for its answer.
        """
        started = time.monotonic()
        delays = self.retry.delays()
        while True:
            if limited and self.limiter is not None:
                await self.limiter.wait()
            cause: BaseException
            try:
                result = await self._in_thread(call, landing, threads or self._threads)
            except (google_errors.GoogleAPICallError, requests.RequestException) as exc:
                error, cause = ComputeApiError.from_exception(method, exc), exc
            except auth_errors.GoogleAuthError as exc:
                # Getting a token failed (metadata server, token endpoint), not the call.
                error, cause = auth_error(method, exc), exc
            else:
                metrics.CLOUD_API_CALLS.labels(method=method, code="200").inc()
                return result
            code = str(error.code or "transport")
            metrics.CLOUD_API_CALLS.labels(method=method, code=code).inc()
            metrics.CLOUD_API_ERRORS.labels(method=method, code=code, zone=zone).inc()
            delay = next(delays)
            if not error.retryable or time.monotonic() + delay - started > self.retry.max_elapsed:
                raise error from cause
            logger.info(
                "retrying compute API call",
                extra={"fields": {"method": method, "err": str(error), "delay": round(delay, 2)}},
            )
            await asyncio.sleep(delay)

    async def _in_thread(
        self,
        call: Callable[[], T],
        landing: tuple[str, str] | None,
        threads: concurrent.futures.Executor,
    ) -> T:
        # The call runs in the caller's context (as asyncio.to_thread does), so its HTTP
        # request joins the job's trace and its log lines keep the job's fields.
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(threads, context.run, call)
        if landing is None:
            return await future
        # A thread cannot be stopped: a cancelled caller leaves it running (shield), and
        # whoever deletes the VM waits for its answer instead of the caller.
        self._inserting[landing] = future
        future.add_done_callback(lambda _: self._insert_done(landing, future))
        return await asyncio.shield(future)

    def _insert_done(self, landing: tuple[str, str], future: asyncio.Future[Any]) -> None:
        if self._inserting.get(landing) is future:
            del self._inserting[landing]

    async def _insert_answered(self, zone: str, name: str) -> None:
        """Wait (up to a request's timeout) for an insert of this VM still on the wire.
        Deleted before that insert lands, the VM would answer 404 ("already gone") and
        appear a moment later, left running."""
        inserting = self._inserting.get((zone, name))
        if inserting is not None:
            await asyncio.wait([inserting], timeout=self.request_timeout)


def _widen_connection_pool(client: Any, size: int) -> None:
    """requests keeps 10 connections per host; concurrent jobs need more than that."""
    session = getattr(getattr(client, "_transport", None), "_session", None)
    if isinstance(session, requests.Session):
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
