"""The Google Compute Engine backend (`TRAVIS_WORKER_PROVIDER_NAME=gce`): one fresh VM per
job, booted from a travis-ci image, reached over SSH, deleted afterwards (travis-ci/worker
`backend/gce.go`).

    setup():  project/zones (metadata server on GCE), zones, network, subnetwork, the
              region's other zones, machine type links        (once per worker)
    start():  image → startup script → insert (zone fallback) → wait for the operation
              → IP → SSH                                     (google/boot)
    instance: upload → run → delete                           (google/instance)

Settings: `google/config.py`; API calls: `google/api.py`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from travis_worker.backends.base import (
    Instance,
    Progress,
    ProgressEntry,
    ProgressState,
    ProviderContext,
)
from travis_worker.backends.google.api import ComputeApi, RetryPolicy
from travis_worker.backends.google.api_types import ComputeApiError, Image, last_segment
from travis_worker.backends.google.auth import probe_metadata
from travis_worker.backends.google.body import (
    VM_SIZE_MACHINE_TYPES,
    Placement,
    deterministic_hostname,
    insert_body,
    job_labels,
    linux_startup_script,
    plan_vm,
    random_instance_name,
)
from travis_worker.backends.google.boot import VmBoot, choose_ip, observe
from travis_worker.backends.google.config import DEFAULT_ZONE, GceConfig, parse_gce_config
from travis_worker.backends.google.images import (
    DEFAULT,
    ApiSelector,
    EnvSelector,
    ImageSelectError,
    ImageSelector,
    SelectorParams,
)
from travis_worker.backends.google.instance import DELETE_SECONDS, Cleanups, GceInstance, delete_vm
from travis_worker.backends.google.quotas import quota_metrics, used_up
from travis_worker.backends.google.ratelimit import RateLimitSettings, build_rate_limiter
from travis_worker.backends.google.zones import ZoneChooser
from travis_worker.backends.ssh import SshKey
from travis_worker.errors import ConfigError, InstanceStartError, JobAbortError
from travis_worker.job import StartAttributes

logger = logging.getLogger(__name__)
T = TypeVar("T")

WINDOWS_UNSUPPORTED = "windows jobs are not supported by this worker (no WinRM support)"


def create_provider(context: ProviderContext) -> GceProvider:
    return GceProvider(parse_gce_config(context.config), hostname=context.hostname)


class GceProvider:
    """The GCE `Provider`. One per worker process; `setup()` before the first `start()`."""

    def __init__(self, config: GceConfig, *, hostname: str) -> None:
        self.config = config
        self.hostname = hostname
        self.key = SshKey.generate(config.ssh_key_type)
        self.selector: ImageSelector = (
            ApiSelector(config.image_selector_url, retry_for=config.backoff_retry_max)
            if config.image_selector_type == "api"
            else EnvSelector(config.image_table)
        )
        self.cleanups = Cleanups()
        self.project = config.project_id
        self.zones: list[str] = list(config.zones)
        self.region = config.region
        self._api: ComputeApi | None = None
        self._chooser: ZoneChooser | None = None
        self._network_link = ""
        self._subnetwork_link = ""
        self._machine_types: dict[tuple[str, str], str] = {}
        self._listed_zones: set[str] = set()
        self._images: dict[str, asyncio.Future[Image]] = {}

    @property
    def supports_progress(self) -> bool:
        return True

    @property
    def api(self) -> ComputeApi:
        if self._api is None:
            raise RuntimeError("GceProvider.setup() has not run")
        return self._api

    # --- setup -----------------------------------------------------------------------

    async def setup(self) -> None:
        config = self.config
        # An emulator or private endpoint without an account: no Google around to ask.
        if not (config.api_endpoint and config.account_info is None):
            on_gce = await asyncio.to_thread(probe_metadata)
            if on_gce is not None:
                self.project = self.project or on_gce[0]
                self.zones = self.zones or [on_gce[1]]
        if not self.project:
            raise ConfigError("missing PROJECT_ID (TRAVIS_WORKER_GCE_PROJECT_ID)")
        if config.warmer_url:
            logger.warning("TRAVIS_WORKER_GCE_WARMER_URL is set, but there is no warmer support")
        self.zones = self.zones or [DEFAULT_ZONE]
        self._api = await ComputeApi.create(
            self.project,
            endpoint=config.api_endpoint,
            account_info=config.account_info,
            limiter=build_rate_limiter(
                RateLimitSettings(
                    max_calls=config.rate_limit_max_calls,
                    window=config.rate_limit_duration,
                    redis_url=config.rate_limit_redis_url,
                    prefix=config.rate_limit_prefix,
                    dynamic_config=config.rate_limit_dynamic_config,
                    dynamic_ttl=config.rate_limit_dynamic_config_ttl,
                )
            ),
            retry=RetryPolicy(
                initial=config.backoff_retry_initial.total_seconds(),
                max_elapsed=config.backoff_retry_max.total_seconds(),
            ),
        )
        await self._resolve_static()

    async def _resolve_static(self) -> None:
        """Zones, network, subnetwork, the region's zones and machine types: what every
        insert refers to, looked up once (travis-ci/worker's Setup)."""
        config, api = self.config, self.api
        zones = [await _resolved(f"zone {zone!r}", api.get_zone(zone)) for zone in self.zones]
        network = api.network_link(config.network)
        self._network_link = await _resolved(f"network {config.network!r}", network)
        self.region = self.region or last_segment(zones[0].region)
        if config.subnetwork:
            subnetwork = api.subnetwork_link(self.region, config.subnetwork)
            self._subnetwork_link = await _resolved(f"subnetwork {config.subnetwork!r}", subnetwork)
        region_zones = await _resolved("region zones", api.list_region_zones(zones[0].region))
        alternates = [zone.name for zone in region_zones if zone.status in ("UP", "")]
        listings = (self._list_machine_types(zone) for zone in {*self.zones, *alternates})
        for failure in await asyncio.gather(*listings, return_exceptions=True):
            if isinstance(failure, InstanceStartError):
                logger.warning("zone left out", extra={"fields": {"err": str(failure)}})
            elif isinstance(failure, BaseException):
                raise failure
        if not self._machine_types:
            raise ConfigError("failed to find any machine type self link")
        self._chooser = ZoneChooser(
            self.zones, alternates, cooldown=config.zone_cooldown.total_seconds()
        )

    def _machine_type_names(self) -> list[str]:
        """Every machine type a job may ask for."""
        config = self.config
        return [config.machine_type, config.premium_machine_type, *VM_SIZE_MACHINE_TYPES.values()]

    async def _list_machine_types(self, zone: str) -> None:
        """Cache the self links of every machine type a job may ask for in `zone`."""
        names = self._machine_type_names()
        try:
            links = await self.api.machine_type_links(zone, names)
        except ComputeApiError as exc:
            raise InstanceStartError(f"couldn't list machine types of {zone}: {exc}") from exc
        self._listed_zones.add(zone)
        for name, link in links.items():
            self._machine_types[(zone, name)] = link

    async def has_capacity(self) -> bool:
        try:
            quotas = await self.api.region_quotas(self.region)
        except ComputeApiError as exc:
            if exc.rate_limited:
                return False
            # Not knowing is no reason to stay paused: the next job's insert will tell.
            logger.warning("couldn't read the region's quotas", extra={"fields": {"err": str(exc)}})
            return True
        full = used_up(quotas, quota_metrics(self._machine_type_names()))
        if full:
            logger.info("region quotas still used up", extra={"fields": {"quotas": ",".join(full)}})
        return not full

    # --- start -----------------------------------------------------------------------

    async def start(self, attrs: StartAttributes, progress: Progress) -> Instance:
        if attrs.os == "windows":
            raise JobAbortError(WINDOWS_UNSUPPORTED)
        plan = plan_vm(attrs, self.config)
        first_zone, pinned = await self._first_zone(attrs, plan.machine_type)
        image = await self._image_for(attrs, plan.gpu_vm_type, progress, first_zone)
        script = linux_startup_script(
            self.key.authorized_key, attrs.hard_timeout, self.config.auto_implode
        )
        await progress(ProgressEntry("rendered startup script", ProgressState.SUCCESS))
        name = (
            deterministic_hostname(attrs.repository, attrs.job_id)
            if self.config.deterministic_hostname
            else random_instance_name()
        )

        async def body_for(zone: str) -> dict[str, Any]:
            link = await self._machine_type_link(zone, plan.machine_type)
            place = Placement(
                self.project, zone, link, image.self_link, self._network_link, self._subnetwork_link
            )
            return insert_body(
                name=name,
                language=attrs.language,
                plan=plan,
                place=place,
                config=self.config,
                startup_script=script,
                labels=job_labels(self.hostname, attrs.job_id, attrs.repository),
                hard_timeout=attrs.hard_timeout,
            )

        boot = VmBoot(self.api, self.config, name, progress)
        try:
            zone = await boot.insert(
                self._zone_chooser,
                first_zone,
                pinned=pinned,
                body_for=body_for,
                usable=self._offers(plan.machine_type),
            )
            ready_at = time.monotonic()
            info = await boot.locate(zone)
            ip = choose_ip(info, self.config)
            connection = await boot.reach(ip, self.key)
            observe("ssh_ready", zone, ready_at)
        except BaseException:
            if boot.zone is not None:
                self._discard(boot.zone, name)
            raise
        return GceInstance(
            api=self.api,
            config=self.config,
            key=self.key,
            cleanups=self.cleanups,
            name=name,
            zone=zone,
            numeric_id=info.id,
            ip=ip,
            image_name=image.name,
            startup_duration=timedelta(seconds=time.monotonic() - boot.started),
            connection=connection,
        )

    @property
    def _zone_chooser(self) -> ZoneChooser:
        if self._chooser is None:
            raise RuntimeError("GceProvider.setup() has not run")
        return self._chooser

    async def _first_zone(self, attrs: StartAttributes, machine_type: str) -> tuple[str, bool]:
        """The job's own zone (`vm_config.zone`, then no fallback), or the chooser's pick."""
        pinned = attrs.vm_config.zone
        if not pinned:
            return self._zone_chooser.first(self._offers(machine_type)), False
        if pinned not in self._listed_zones:
            try:
                await self.api.get_zone(pinned)
            except ComputeApiError as exc:
                raise InstanceStartError(f"the job's zone {pinned!r} is unusable: {exc}") from exc
            await self._list_machine_types(pinned)
        return pinned, True

    def _offers(self, machine_type: str) -> Callable[[str], bool]:
        """Whether a zone is known to offer `machine_type` (zones differ: n2 is not
        everywhere, GPUs even less)."""
        return lambda zone: (zone, machine_type) in self._machine_types

    async def _machine_type_link(self, zone: str, machine_type: str) -> str:
        if zone not in self._listed_zones:
            await self._list_machine_types(zone)
        link = self._machine_types.get((zone, machine_type))
        if link is None:
            raise InstanceStartError(f"no machine type {machine_type} for zone {zone}")
        return link

    async def _image_for(
        self, attrs: StartAttributes, gpu_vm_type: str, progress: Progress, zone: str
    ) -> Image:
        started = time.monotonic()
        try:
            name = attrs.image_name or await self.selector.select(
                SelectorParams(
                    infra="gce",
                    language=attrs.language,
                    osx_image=attrs.osx_image,
                    dist=attrs.dist,
                    group=attrs.group,
                    os=attrs.os,
                    job_id=attrs.job_id,
                    repo=attrs.repository,
                    gpu_vm_type=gpu_vm_type,
                )
            )
            image = await self._image_named(self.config.image_default if name == DEFAULT else name)
        except (JobAbortError, InstanceStartError):
            await progress(ProgressEntry("could not select image", ProgressState.FAILURE))
            raise
        except (ImageSelectError, ComputeApiError) as exc:
            await progress(ProgressEntry("could not select image", ProgressState.FAILURE))
            raise InstanceStartError(f"could not select image: {exc}") from exc
        observe("image_select", zone, started)
        await progress(ProgressEntry(f'selected image "{image.name}"', ProgressState.SUCCESS))
        return image

    async def _image_named(self, name: str) -> Image:
        """The newest image whose name matches `name` (a pattern); cached per name, and
        concurrent jobs asking for the same name share one lookup."""
        lookup = self._images.get(name)
        if lookup is None:
            lookup = self._images[name] = asyncio.ensure_future(self._find_image(name))
        try:
            return await asyncio.shield(lookup)
        except Exception:
            if self._images.get(name) is lookup:
                del self._images[name]
            raise

    async def _find_image(self, name: str) -> Image:
        pattern = f"^{name}"
        images = await self.api.find_images(self.config.images_project, pattern)
        if not images:
            raise InstanceStartError(f"no image found with filter name eq {pattern}")
        return max(images, key=lambda image: image.name)

    def _discard(self, zone: str, name: str) -> None:
        """Delete what a failed or cancelled start may have left, in the background: with
        its operation a deletion takes 30-90 s on GCE, which must not hold up the start's
        unwinding (a cancelled step has to stop promptly). close() waits for it, and the
        deletion itself waits for an insert of the VM still on the wire (google/api.py)."""
        self.cleanups.spawn(delete_vm(self.api, self.config, zone, name), f"delete {name}")

    async def close(self) -> None:
        await self.cleanups.wait(DELETE_SECONDS)
        await self.selector.close()
        if self._api is not None:
            await self._api.close()


async def _resolved(what: str, lookup: Awaitable[T]) -> T:
    try:
        return await lookup
    except ComputeApiError as exc:
        raise ConfigError(f"failed to resolve configured {what}: {exc}") from exc
