"""The vocabulary of a job: its payload as decoded from a delivery, the start attributes a
backend boots from, the finish states, and the data every kind of job holds. The Protocols
the pipeline depends on are in `contracts`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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

from travis_worker.compat import gojson
from travis_worker.compat.godecode import NEEDED, FieldProblem, decode_fields, go_fields, shown
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
        return go_fields(cls.model_fields, data)


def _rfc3339(value: Any) -> Any:
    """Only an RFC3339 string is a time, as for Go's `time.Time` JSON decoding."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC3339 time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an RFC3339 time") from exc
    if moment.tzinfo is None:
        raise ValueError("must be an RFC3339 time with a time zone")
    try:
        moment.astimezone(UTC)  # state updates carry it in UTC
    except OverflowError as exc:
        raise ValueError("must be a time between the years 1 and 9999 in UTC") from exc
    return moment


# Go's unsigned and signed 64-bit integers: a JSON number outside them fails Go's decode.
UINT64_MAX = 2**64 - 1
Uint64 = Annotated[int, Field(ge=0, le=UINT64_MAX)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
# No real payload has a longer slug, queue or machine name (a GitHub slug is at most 140
# characters); a longer one is garbage, and would be echoed into every log line of the job.
Text = Annotated[str, Field(max_length=255)]
# The request UUID travels in every log part, whose size budget leaves no room for more.
MAX_UUID_CHARS = 64


class JobInfo(_GoJson):
    id: Annotated[int, Field(ge=1, le=UINT64_MAX)]
    number: Text = ""
    queued_at: Annotated[datetime | None, BeforeValidator(_rfc3339)] = None


class SourceInfo(_GoJson):
    id: Uint64 = 0
    number: Text = ""


class RepositoryInfo(_GoJson):
    id: Uint64 = 0
    slug: Text = ""


# Go keeps durations as int64 nanoseconds: this many seconds is the most a timeout can be.
MAX_TIMEOUT_SECONDS = 9_223_372_036


class Timeouts(_GoJson):
    hard_limit: Annotated[int, Field(ge=0, le=MAX_TIMEOUT_SECONDS)] = 0
    log_silence: Annotated[int, Field(ge=0, le=MAX_TIMEOUT_SECONDS)] = 0


class VmConfig(_GoJson):
    gpu_count: Int64 = 0
    gpu_type: Text = ""
    zone: Text = ""


class PayloadMeta(_GoJson):
    state_update_count: Uint64 = 0


class JobPayload(_GoJson):
    """The typed part of a job delivery. Everything else is only forwarded to the build API.

    Fields marked NEEDED decide how and where the job runs: a wrong value there errors the
    job. Any other field only names or decorates it: a wrong value is ignored."""

    type: Text = ""
    job: JobInfo
    source: SourceInfo = SourceInfo()
    repository: RepositoryInfo = RepositoryInfo()
    # Only correlates requests: an unusable one is replaced by a fresh UUID, as Go replaces
    # an empty one. Nothing the run does depends on it.
    uuid: Annotated[str, Field(max_length=MAX_UUID_CHARS)] = ""
    config: Any = None
    timeouts: Annotated[Timeouts, NEEDED] = Timeouts()
    vm_type: Annotated[Text, NEEDED] = ""
    vm_size: Annotated[Text, NEEDED] = ""
    vm_config: Annotated[VmConfig, NEEDED] = VmConfig()
    # An unreadable count is taken as 0, the count Go assumes when there is none: it orders
    # our reports for the hub, it does not change the run.
    meta: PayloadMeta = PayloadMeta()
    queue: Text = ""
    trace: bool = False
    warmer: bool = False


# The raw payload is encoded again for the build API, and Python's encoder recurses: past
# this depth (far beyond any real payload) encoding could fail halfway through a job.
MAX_PAYLOAD_DEPTH = 500


@dataclass(frozen=True)
class ParsedDelivery:
    """A job body parsed both ways: typed for the worker, raw for the build API.

    `problems` are values the run needs but cannot use (the job is errored, naming them);
    `ignored` are values that only decorate the job, left at their zero values."""

    payload: JobPayload
    raw: dict[str, Any]
    problems: tuple[FieldProblem, ...] = ()
    ignored: tuple[FieldProblem, ...] = ()


def job_id_of(raw: dict[str, Any]) -> int:
    """The payload's `job.id` as Go decodes a uint64: a JSON integer (no string, fraction or
    exponent), here also above 0. Raises PayloadError without one."""
    job = go_fields(["job"], raw).get("job")
    if not isinstance(job, dict):
        raise PayloadError(f"payload job must be an object, not {shown(job)}")
    job_id = go_fields(["id"], job).get("id")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id <= UINT64_MAX:
        raise PayloadError(
            f"payload job.id must be an integer from 1 to 2^64-1, not {shown(job_id)}"
        )
    return job_id


def parse_job_body(body: bytes) -> ParsedDelivery:
    """Parse a job delivery body. Raises PayloadError, with a reason an operator can act on,
    only when the body is not JSON or holds no usable job id: every other fault is reported
    in the result, so the job can still end with a state."""
    try:
        raw = gojson.loads(body)
    except ValueError as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise PayloadError(f"payload is a JSON {type(raw).__name__}, not an object")
    job_id_of(raw)
    try:
        payload, found = decode_fields(JobPayload, raw)
    except ValidationError as exc:  # only if job.id were unusable, which was checked above
        raise PayloadError(f"payload job is unusable: {exc.errors()[0]['msg']}") from exc
    trouble = gojson.tree_trouble(raw, MAX_PAYLOAD_DEPTH)
    if trouble is not None:
        found.append(FieldProblem("payload", trouble, needed=True))
    return ParsedDelivery(
        payload=payload,
        raw=raw,
        problems=tuple(p for p in found if p.needed),
        ignored=tuple(p for p in found if not p.needed),
    )


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
