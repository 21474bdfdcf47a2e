"""Settings, read the way travis-ci/worker reads them.

Every setting is a flag `--<name>` and two environment variables, `TRAVIS_WORKER_<NAME>` and
`<NAME>` (NAME = flag upper-cased, `-` → `_`). Precedence: flag > `TRAVIS_WORKER_…` > plain
name > default. Booleans follow Go's `strconv.ParseBool` and durations Go's
`time.ParseDuration`, so an existing env file means the same thing here.

Backends get their own key/value map (`provider_config`) and parse it themselves.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from travis_worker.compat.durations import Duration, parse_go_duration
from travis_worker.errors import ConfigError

ENV_PREFIX = "TRAVIS_WORKER_"
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False", ""}


def parse_go_bool(text: str) -> bool:
    """Go's `strconv.ParseBool`, plus empty meaning false as the Go worker's env reader does."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r} (use true/false, 1/0, t/f)")


def _d(text: str) -> timedelta:
    return parse_go_duration(text)


def flag_name(field_name: str) -> str:
    """`pool_size` → `pool-size`."""
    return field_name.replace("_", "-")


def env_names(field_name: str) -> tuple[str, str]:
    """The two environment variables of a setting, in precedence order."""
    upper = field_name.upper()
    return f"{ENV_PREFIX}{upper}", upper


def _special(description: str) -> Any:
    """A setting that is not part of the `--echo-config` output (as in the Go worker)."""
    return {"description": description, "json_schema_extra": {"special": True}}


class Settings(BaseSettings):
    """The general settings of travis-ci/worker (`config/config.go`), plus our own."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True, frozen=True)

    provider_name: str = Field("gce", description="backend provider alias (no docker backend)")
    queue_type: str = Field("amqp", description="comma list of job sources: amqp, file")
    amqp_uri: str = Field("amqp://", description="jobs broker URI")
    amqp_heartbeat: Duration = Field(_d("10s"), description="AMQP heartbeat interval")
    amqp_consumer_priority: int = Field(0, description="x-priority of the job consumers")
    amqp_insecure: bool = Field(False, description="skip broker TLS certificate checks")
    amqp_tls_cert: str = Field("", description="CA certificate (PEM) for the jobs broker")
    amqp_tls_cert_path: str = Field("", description="CA certificate file for the jobs broker")
    logs_amqp_uri: str = Field("", description="separate broker for log parts")
    logs_amqp_tls_cert: str = Field("", description="CA certificate (PEM) for the logs broker")
    logs_amqp_tls_cert_path: str = Field("", description="CA file for the logs broker")
    rabbitmq_sharding: bool = Field(False, description="publish logs to the sharded exchange")
    state_update_pool_size: int = Field(3, ge=1, description="state update publishers")
    log_pool_size: int = Field(3, description="accepted for compatibility; unused")
    queue_name: str = Field("", description="AMQP queue or file-queue directory name")
    base_dir: str = Field(".", description="file queue base directory")
    file_polling_interval: Duration = Field(_d("5s"), description="file queue polling interval")
    http_polling_interval: Duration = Field(_d("3s"), description="accepted; http queue unused")
    http_refresh_claim_interval: Duration = Field(_d("5s"), description="accepted; unused")
    job_board_url: str = Field("", description="job-board URL (api image selector)")
    travis_site: str = Field("", description="org or com; copied to provider TRAVIS_SITE")
    pool_size: int = Field(1, ge=0, description="number of concurrent processors")
    hostname: str = Field(default_factory=socket.gethostname, description="host name in IDs")
    build_api_uri: str = Field("", description="travis-build script API URL")
    build_api_insecure_skip_verify: bool = Field(False, description="skip build API TLS checks")
    default_language: str = Field("default", description="language when the job has none")
    default_dist: str = Field("xenial", description="dist when the job has none")
    default_arch: str = Field("amd64", description="arch when the job has none")
    default_group: str = Field("stable", description="group when the job has none")
    default_os: str = Field("linux", description="os when the job has none")
    hard_timeout: Duration = Field(_d("50m"), description="maximum job run time")
    initial_sleep: Duration = Field(_d("1s"), description="pause before opening the job log")
    log_timeout: Duration = Field(_d("10m"), description="maximum time without output")
    max_log_length: int = Field(4_500_000, gt=0, description="maximum job log size in bytes")
    script_upload_timeout: Duration = Field(_d("3m30s"), description="script upload time limit")
    startup_timeout: Duration = Field(_d("4m"), description="instance start time limit")
    progress_type: str = Field("", description="'text' writes boot progress into job logs")
    payload_filter_executable: str = Field("", description="filter for the job payload")
    skip_shutdown_on_log_timeout: bool = Field(False, description="keep VM on log timeout")
    infra: str = Field("", description="infra name sent in log-part meta")
    build_cache_fetch_timeout: Duration = Field(_d("5m"), description="build cache fetch limit")
    build_cache_push_timeout: Duration = Field(_d("5m"), description="build cache push limit")
    build_apt_cache: str = Field("", description="apt cache host for the build")
    build_npm_cache: str = Field("", description="npm cache host for the build")
    build_paranoid: bool = Field(False, description="build in paranoid mode")
    build_fix_resolv_conf: bool = Field(False, description="build fixes resolv.conf")
    build_fix_etc_hosts: bool = Field(False, description="build fixes /etc/hosts")
    build_cache_type: str = Field("", description="build cache type")
    build_cache_s3_scheme: str = Field("", description="build cache S3 scheme")
    build_cache_s3_region: str = Field("", description="build cache S3 region")
    build_cache_s3_bucket: str = Field("", description="build cache S3 bucket")
    build_cache_s3_access_key_id: str = Field("", description="build cache S3 key id")
    build_cache_s3_secret_access_key: str = Field("", description="build cache S3 secret")
    build_trace_enabled: bool = Field(False, description="accepted; trace upload unused")
    build_trace_s3_bucket: str = Field("", description="accepted; unused")
    build_trace_s3_key_prefix: str = Field("", description="accepted; unused")
    build_trace_s3_region: str = Field("", description="accepted; unused")
    librato_email: str = Field("", description="accepted; use /metrics instead")
    librato_token: str = Field("", description="accepted; use /metrics instead")
    librato_source: str = Field(default_factory=socket.gethostname, description="accepted")
    sentry_dsn: str = Field("", description="accepted; unused")
    sentry_hook_errors: bool = Field(False, description="accepted; unused")
    stackdriver_trace_account_json: str = Field("", description="Cloud Trace credentials")
    stackdriver_project_id: str = Field("", description="Cloud Trace project")
    opencensus_tracing_enabled: bool = Field(False, description="export traces to Cloud Trace")
    opencensus_sampling_rate: int = Field(1, description="trace 1 in N jobs")
    log_format: Literal["logfmt", "json"] = Field("logfmt", description="process log format")
    otel_tracing_enabled: bool = Field(
        False, description="export job traces (same switch as opencensus-tracing-enabled)"
    )
    otel_traces_exporter: str = Field(
        "gcp_trace", description="comma list of trace exporters: gcp_trace, otlp, console, none"
    )
    otel_exporter_otlp_traces_endpoint: str = Field(
        "", description="OTLP/HTTP traces URL (default: the OTEL_EXPORTER_OTLP_* variables)"
    )

    capacity_probe_interval: Duration = Field(
        _d("15s"), description="first wait before asking the cloud for capacity again"
    )
    spool_dir: str = Field(
        "",
        description="unconfirmed state updates and log parts (default <tmp>/travis-worker-spool)",
    )
    spool_max_size: int = Field(
        1024 * 1024 * 1024, gt=0, description="bytes the spool may hold before job output waits"
    )
    outbox_memory_size: int = Field(
        32 * 1024 * 1024, gt=0, description="unconfirmed bytes held in memory before spooling"
    )

    remote_controller_addr: str = Field("", **_special("HTTP control/debug listen address"))
    remote_controller_auth: str = Field("", **_special("user:password for the control API"))
    pprof_port: str = Field("", **_special("debug listener port on 127.0.0.1 (legacy name)"))
    silence_metrics: bool = Field(False, **_special("deprecated, ignored"))
    log_metrics: bool = Field(False, **_special("print metrics to stderr every minute"))
    debug: bool = Field(False, **_special("debug logging"))
    start_hook: str = Field("", **_special("command run before the pool starts"))
    stop_hook: str = Field("", **_special("command run after the pool stopped"))
    heartbeat_url: str = Field("", **_special("URL polled for up/down state"))
    heartbeat_url_auth_token: str = Field("", **_special("token for heartbeat-url, or file://"))

    @field_validator("*", mode="before")
    @classmethod
    def _go_bools(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields[info.field_name]
        if field.annotation is bool and isinstance(value, str):
            return parse_go_bool(value)
        return value

    @field_validator("opencensus_sampling_rate")
    @classmethod
    def _positive_rate(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("invalid trace sample rate")
        return value

    @field_validator("hard_timeout", "log_timeout", "startup_timeout", "script_upload_timeout")
    @classmethod
    def _positive_timeout(cls, value: Any) -> Any:
        if value.total_seconds() <= 0:
            raise ValueError("must be greater than zero")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, GoStyleEnvSource(settings_cls))

    @classmethod
    def is_special(cls, field_name: str) -> bool:
        """Special settings steer the process and are left out of `--echo-config`."""
        extra = cls.model_fields[field_name].json_schema_extra
        return isinstance(extra, dict) and bool(extra.get("special"))

    @property
    def queue_types(self) -> list[str]:
        return [name.strip() for name in self.queue_type.split(",") if name.strip()]


class GoStyleEnvSource(PydanticBaseSettingsSource):
    """Reads `TRAVIS_WORKER_<NAME>`, then `<NAME>`. An empty value counts as unset except
    for strings, so `POOL_SIZE=` in an env file falls back to the default."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None):
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        origin = env_origin(field_name, field, self.environ)
        return (self.environ[origin] if origin else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


def env_origin(field_name: str, field: FieldInfo, environ: Mapping[str, str]) -> str | None:
    """The environment variable a setting is read from, or None."""
    for name in env_names(field_name):
        if name in environ and (environ[name] != "" or field.annotation is str):
            return name
    return None


def load_settings(
    cli_values: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from flags and environment, or raise ConfigError with one clear line
    naming the variable (or flag) and the bad value."""
    cli_values = dict(cli_values or {})
    environ = os.environ if environ is None else environ
    merged = {**GoStyleEnvSource(Settings, environ)(), **cli_values}
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        reason = str(first["msg"]).removeprefix("Value error, ")
        if name in cli_values:
            where, value = f"--{flag_name(name)}", cli_values[name]
        else:
            origin = env_origin(name, Settings.model_fields[name], environ)
            where = origin or f"--{flag_name(name)}"
            value = environ[origin] if origin else first.get("input")
        raise ConfigError(f"invalid value {value!r} for {where}: {reason}") from exc


_UNESCAPE_SAFE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _query_unescape(value: str) -> str:
    """Go's `url.QueryUnescape`, keeping the raw value when it is malformed."""
    if _UNESCAPE_SAFE.search(value):
        return value
    return unquote_plus(value)


def provider_config(provider: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The key/value map of backend `provider` (travis-ci/worker
    `config/provider_config.go`).

    `TRAVIS_WORKER_<P>_KEY` is read first and `<P>_KEY` second, so the plain name wins, as in
    travis-ci/worker. Values are URL-unescaped except `…ACCOUNT_JSON`.
    """
    environ = os.environ if environ is None else environ
    upper = provider.upper()
    result: dict[str, str] = {}
    for prefix in (f"{ENV_PREFIX}{upper}_", f"{upper}_"):
        for name, value in environ.items():
            if not name.startswith(prefix) or len(name) == len(prefix):
                continue
            key = name[len(prefix) :].upper()
            result[key] = value if key.endswith("ACCOUNT_JSON") else _query_unescape(value)
    return result


def read_json_setting(raw: str, variable: str) -> dict[str, Any] | None:
    """A JSON object given in `variable`, inline (starting with `{`) or as a file path;
    None when `raw` is empty. Such settings hold keys: errors name the variable (and a
    file's path) but never echo the value."""
    raw = raw.strip()
    if not raw:
        return None
    where = variable
    if raw.startswith("{"):
        text = raw
    else:
        try:
            text = Path(raw).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read {where} file {raw!r}: {exc.strerror}") from exc
        where = f"{where} file {raw!r}"
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not valid JSON ({exc.msg})") from exc
    if not isinstance(info, dict):
        raise ConfigError(f"{where} is not a JSON object")
    return info


def parse_duration_setting(name: str, text: str) -> Any:
    """Parse a provider duration key, naming the key in the error."""
    try:
        return parse_go_duration(text)
    except ValueError as exc:
        raise ConfigError(f"invalid value {text!r} for {name}: {exc}") from exc
