"""The vocabulary of a job: its payload as decoded from a delivery, the start attributes a
backend boots from, the finish states, and the data every kind of job holds. The Protocols
the pipeline depends on are in `contracts`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import uuid4

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from travis_worker.errors import PayloadError


class FinishState(StrEnum):
    """The terminal states a job can report (`job:test:finish`)."""

    PASSED = "passed"
    FAILED = "failed"
    ERRORED = "errored"
    CANCELLED = "cancelled"

    @classmethod
    def from_exit_code(cls, code: int) -> FinishState:
        """0 passed, 1 failed, anything else errored (travis-build exits 2 or 86 on trouble)."""
        if code == 0:
            return cls.PASSED
        if code == 1:
            return cls.FAILED
        return cls.ERRORED


class _GoJson(BaseModel):
    """Decodes like Go's encoding/json: keys match field names case-insensitively (an exact
    match wins), unknown keys are ignored, `null` means the zero value, and a wrong type is
    an error rather than a silent coercion."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _go_decoding(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        by_lower = {name.lower(): name for name in cls.model_fields}
        decoded: dict[str, Any] = {}
        for key, value in data.items():
            exact = key in cls.model_fields
            name = key if exact else by_lower.get(key.lower())
            if name is None or value is None or (not exact and name in decoded):
                continue
            decoded[name] = value
        return decoded


def _rfc3339(value: Any) -> Any:
    """Only an RFC3339 string is a time, as for Go's `time.Time` JSON decoding."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC3339 time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an RFC3339 time") from exc
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


class JobInfo(_GoJson):
    id: int
    number: str = ""
    queued_at: Annotated[datetime | None, BeforeValidator(_rfc3339)] = None


class SourceInfo(_GoJson):
    id: int = 0
    number: str = ""


class RepositoryInfo(_GoJson):
    id: int = 0
    slug: str = ""


# Go keeps durations as int64 nanoseconds: this many seconds is the most a timeout can be.
MAX_TIMEOUT_SECONDS = 9_223_372_036


class Timeouts(_GoJson):
    hard_limit: Annotated[int, Field(ge=0, le=MAX_TIMEOUT_SECONDS)] = 0
    log_silence: Annotated[int, Field(ge=0, le=MAX_TIMEOUT_SECONDS)] = 0


class VmConfig(_GoJson):
    gpu_count: int = 0
    gpu_type: str = ""
    zone: str = ""


class PayloadMeta(_GoJson):
    state_update_count: Annotated[int, Field(ge=0)] = 0


class JobPayload(_GoJson):
    """The typed part of a job delivery. Everything else is only forwarded to the build API."""

    type: str = ""
    job: JobInfo
    source: SourceInfo = SourceInfo()
    repository: RepositoryInfo = RepositoryInfo()
    uuid: str = ""
    config: Any = None
    timeouts: Timeouts = Timeouts()
    vm_type: str = ""
    vm_size: str = ""
    vm_config: VmConfig = VmConfig()
    meta: PayloadMeta = PayloadMeta()
    queue: str = ""
    trace: bool = False
    warmer: bool = False


@dataclass(frozen=True)
class ParsedDelivery:
    """A job body parsed both ways: typed for the worker, raw for the build API."""

    payload: JobPayload
    raw: dict[str, Any]


def parse_job_body(body: bytes) -> ParsedDelivery:
    """Parse a job delivery body or raise PayloadError with a reason an operator can act on."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise PayloadError(f"payload is a JSON {type(raw).__name__}, not an object")
    try:
        payload = JobPayload.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise PayloadError(f"payload field {where}: {first['msg']}") from exc
    if payload.job.id <= 0:
        raise PayloadError(f"payload job.id must be a positive integer, got {payload.job.id}")
    return ParsedDelivery(payload=payload, raw=raw)


@dataclass(frozen=True)
class StartDefaults:
    """Worker settings that fill empty start attributes."""

    language: str = "default"
    dist: str = "xenial"
    arch: str = "amd64"
    group: str = "stable"
    os: str = "linux"


_CONFIG_STRING_KEYS = ("language", "osx_image", "dist", "arch", "group", "os", "image_name")


@dataclass
class StartAttributes:
    """What a backend needs to choose and boot an instance for one job.

    Mutable on purpose: GCE rewrites `vm_size` to the machine type it chose, and that value
    then travels in later state updates, as in travis-ci/worker.
    """

    language: str = ""
    osx_image: str = ""
    dist: str = ""
    arch: str = ""
    group: str = ""
    os: str = ""
    image_name: str = ""
    vm_type: str = ""
    vm_size: str = ""
    vm_config: VmConfig = field(default_factory=VmConfig)
    warmer: bool = False
    hard_timeout: timedelta = timedelta(minutes=50)
    progress_type: str = ""
    job_id: int = 0
    repository: str = ""

    @classmethod
    def from_payload(cls, payload: JobPayload, defaults: StartDefaults) -> StartAttributes:
        """Build attributes from `config`, or raise PayloadError when `config` is unusable."""
        config = payload.config if payload.config is not None else {}
        if not isinstance(config, Mapping):
            raise PayloadError("job config is not an object")
        values: dict[str, str] = {}
        for key in _CONFIG_STRING_KEYS:
            value = config.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise PayloadError(f"job config key {key!r} is not a string")
            values[key] = value
        attrs = cls(
            vm_type=payload.vm_type or "default",
            vm_size=payload.vm_size,
            vm_config=payload.vm_config,
            warmer=payload.warmer,
            job_id=payload.job.id,
            repository=payload.repository.slug,
        )
        for key, value in values.items():
            setattr(attrs, key, value)
        attrs.language = attrs.language or defaults.language
        attrs.dist = attrs.dist or defaults.dist
        attrs.arch = attrs.arch or defaults.arch
        attrs.group = attrs.group or defaults.group
        attrs.os = attrs.os or defaults.os
        return attrs


class JobData:
    """What every kind of job holds: the typed payload, the raw payload forwarded to the
    build API, the start attributes, the request UUID and, once started, the instance id."""

    def __init__(
        self, payload: JobPayload, raw_payload: dict[str, Any], start_attributes: StartAttributes
    ) -> None:
        self._payload = payload
        self.raw_payload = raw_payload
        self._start_attributes = start_attributes
        self.uuid = payload.uuid or str(uuid4())
        self.instance_id: str | None = None

    @property
    def payload(self) -> JobPayload:
        return self._payload

    @property
    def start_attributes(self) -> StartAttributes:
        return self._start_attributes


@dataclass(frozen=True)
class LogMeta:
    """Attached to the first log part published after the job started (travis-logs uses it)."""

    queued_at: datetime | None
    repo: str
    queue: str
    infra: str
