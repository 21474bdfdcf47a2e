"""What the Compute API client (`api.py`) hands out: frozen dataclasses and our own errors,
no protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from travis_worker.errors import BackendError

# GCE reports "no capacity in this zone" with these codes, in the insert operation (usually)
# or in the insert's HTTP answer (a 503). Another zone may well have capacity.
CAPACITY_CODES = frozenset(
    {"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"}
)
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


def last_segment(link: str) -> str:
    """`https://…/zones/us-central1-a` → `us-central1-a`."""
    return link.rsplit("/", 1)[-1]


class ComputeApiError(BackendError):
    """A failed Compute API call. `code` is the HTTP status (None: no answer at all).

    `transient` overrides what the code says, for failures that never reached the Compute
    API (getting an access token), whose HTTP status is not the API's.
    """

    def __init__(
        self,
        method: str,
        message: str,
        *,
        code: int | None,
        reasons: tuple[str, ...] = (),
        transient: bool | None = None,
    ) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.code = code
        self.reasons = reasons
        self.transient = transient

    @classmethod
    def from_exception(cls, method: str, exc: Exception) -> ComputeApiError:
        code = getattr(exc, "code", None)
        errors = getattr(exc, "errors", None) or []
        reasons = tuple(str(item.get("reason", "")) for item in errors if isinstance(item, dict))
        message = str(getattr(exc, "message", "") or exc)
        return cls(method, message, code=code if isinstance(code, int) else None, reasons=reasons)

    @property
    def out_of_capacity(self) -> bool:
        return bool(CAPACITY_CODES.intersection(self.reasons))

    @property
    def rate_limited(self) -> bool:
        return self.code == 429 or bool(_RATE_LIMIT_REASONS.intersection(self.reasons))

    @property
    def quota_exceeded(self) -> bool:
        """A project or region quota is used up (zonal stockouts are `out_of_capacity`)."""
        return "quotaExceeded" in self.reasons

    @property
    def retryable(self) -> bool:
        """Worth repeating as is: throttling, server trouble, no answer, not ready yet."""
        if self.transient is not None:
            return self.transient
        if self.code is None:
            return True
        if self.out_of_capacity:
            return False  # the same request in the same zone will not help: switch zones
        if self.code == 429 or self.code >= 500:
            return True
        if self.code == 403 and _RATE_LIMIT_REASONS.intersection(self.reasons):
            return True
        return self.code in (400, 409) and "resourceNotReady" in self.reasons


@dataclass(frozen=True)
class OperationErrorItem:
    code: str
    location: str = ""
    message: str = ""
    zones_available: tuple[str, ...] = ()
    """GCE's hint (ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS) of zones that have capacity."""
    quota_dimensions: Mapping[str, str] = field(default_factory=dict)
    """For QUOTA_EXCEEDED: the quota's scope, e.g. {"region": …} or {"zone": …}."""

    def __str__(self) -> str:
        # travis-ci/worker's text for operation errors.
        return f"code={self.code} location={self.location} message={self.message}"

    @property
    def zonal(self) -> bool:
        """An error that another zone of the region may not have."""
        if self.code in CAPACITY_CODES:
            return True
        return self.code == "QUOTA_EXCEEDED" and "zone" in self.quota_dimensions


class OperationError(BackendError):
    """A zone operation finished with errors."""

    def __init__(self, items: tuple[OperationErrorItem, ...]) -> None:
        super().__init__(", ".join(str(item) for item in items))
        self.items = items

    @property
    def zonal(self) -> bool:
        return bool(self.items) and all(item.zonal for item in self.items)

    @property
    def quota_exceeded(self) -> bool:
        """A quota of the region or project is used up: no zone of the region will do."""
        return any(item.code == "QUOTA_EXCEEDED" and not item.zonal for item in self.items)

    @property
    def zones_available(self) -> tuple[str, ...]:
        return tuple(zone for item in self.items for zone in item.zones_available)


@dataclass(frozen=True)
class Operation:
    name: str
    zone: str
    status: str
    errors: tuple[OperationErrorItem, ...] = ()

    @property
    def done(self) -> bool:
        return self.status == "DONE"


@dataclass(frozen=True)
class Zone:
    name: str
    region: str
    """The region's self link."""
    status: str = "UP"


@dataclass(frozen=True)
class Quota:
    metric: str
    limit: float
    usage: float


@dataclass(frozen=True)
class Image:
    name: str
    self_link: str


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    zone: str
    id: int
    status: str
    labels: Mapping[str, str]
    creation_timestamp: str
    network_ip: str
    nat_ip: str
    """The first public (NAT) address, or "" without one."""
    max_run_duration: timedelta | None = None
    """`scheduling.maxRunDuration`: GCE deletes the VM this long after it started."""


def operation(message: Any) -> Operation:
    status = type(message).Status(message.status).name if message.status else ""
    items = tuple(_error_item(item) for item in message.error.errors)
    return Operation(str(message.name), last_segment(str(message.zone)), status, items)


def _error_item(item: Any) -> OperationErrorItem:
    zones: list[str] = []
    dimensions: dict[str, str] = {}
    for detail in item.error_details:
        available = detail.error_info.metadatas.get("zonesAvailable", "")
        zones += [zone.strip() for zone in available.split(",") if zone.strip()]
        dimensions.update(detail.quota_info.dimensions)
    return OperationErrorItem(
        str(item.code), str(item.location), str(item.message), tuple(zones), dimensions
    )


def instance_info(message: Any) -> InstanceInfo:
    interfaces = list(message.network_interfaces)
    nat_ips = [
        str(config.nat_i_p)
        for interface in interfaces
        for config in interface.access_configs
        if config.nat_i_p
    ]
    return InstanceInfo(
        name=str(message.name),
        zone=last_segment(str(message.zone)),
        id=int(message.id),
        status=str(message.status),
        labels=dict(message.labels),
        creation_timestamp=str(message.creation_timestamp),
        network_ip=str(interfaces[0].network_i_p) if interfaces else "",
        nat_ip=nat_ips[0] if nat_ips else "",
        max_run_duration=_max_run_duration(message),
    )


def _max_run_duration(message: Any) -> timedelta | None:
    if "scheduling" not in message or "max_run_duration" not in message.scheduling:
        return None
    duration = message.scheduling.max_run_duration
    seconds = int(duration.seconds) + int(duration.nanos) / 1e9
    return timedelta(seconds=seconds) if seconds > 0 else None
