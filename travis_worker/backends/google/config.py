"""Settings of the GCE backend: `TRAVIS_WORKER_GCE_<KEY>` (as in travis-ci/worker
`backend/gce.go`).

Parsed once, into a frozen `GceConfig`, from the provider key map (`config.provider_config`).
An invalid value raises ConfigError naming the variable and the value (secrets excepted), so
the worker refuses to start instead of booting VMs with half a configuration. This module
does not import google, so `--help` can show `HELP` without loading the cloud SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from travis_worker.compat.durations import parse_go_duration
from travis_worker.config import parse_go_bool, read_json_setting
from travis_worker.errors import ConfigError

PREFIX = "TRAVIS_WORKER_GCE_"
DEFAULT_ZONE = "us-central1-a"
DEFAULT_REGION = "us-central1"

HELP: dict[str, str] = {
    "ACCOUNT_JSON": "service account JSON, inline or a file path (default: application "
    "default credentials; anonymous with API_ENDPOINT)",
    "PROJECT_ID": "[REQUIRED unless on GCE] project of the job VMs",
    "IMAGE_PROJECT_ID": "project of the images (default PROJECT_ID)",
    "ZONES": f"comma-delimited zones to boot in (default {DEFAULT_ZONE!r}, or this VM's zone)",
    "ZONE": "[DEPRECATED] use ZONES",
    "REGION": f"region of the zones and SUBNETWORK (default {DEFAULT_REGION!r}, or the zone's)",
    "NETWORK": "network name (default 'default')",
    "SUBNETWORK": "subnetwork name in REGION (default: none)",
    "MACHINE_TYPE": "machine type (default 'n1-standard-2')",
    "PREMIUM_MACHINE_TYPE": "machine type for vm_type premium (default 'n1-standard-4')",
    "DISK_SIZE": "boot disk size in GB (default 20)",
    "DISK_SIZE_WINDOWS": "boot disk size in GB for windows (default DISK_SIZE)",
    "GPU_COUNT": "accepted for compatibility; GPUs come from the job (vm_config, vm_size)",
    "GPU_TYPE": "accepted for compatibility; GPUs come from the job (vm_config, vm_size)",
    "AUTO_IMPLODE": "schedule a poweroff inside the VM at hard timeout + 10m (default true)",
    "BOOT_POLL_SLEEP": "longest pause between insert operation checks (default 3s)",
    "BOOT_PRE_POLL_SLEEP": "accepted; the insert operation is waited on at once (default 15s)",
    "STOP_POLL_SLEEP": "longest pause between delete operation checks (default 3s)",
    "STOP_PRE_POLL_SLEEP": "accepted; the delete operation is waited on at once (default 15s)",
    "SKIP_STOP_POLL": "return right after the delete request (default false)",
    "UPLOAD_RETRIES": "SSH attempts before giving up on an instance (default 120)",
    "UPLOAD_RETRY_SLEEP": "longest pause between SSH attempts (default 1s)",
    "SSH_DIAL_TIMEOUT": "SSH connect and handshake timeout (default 5s)",
    "SSH_KEY_TYPE": "key generated per worker for the job VMs: ed25519 or rsa (default ed25519)",
    "DEFAULT_LANGUAGE": "accepted for compatibility (default 'minimal')",
    "IMAGE_DEFAULT": "image name pattern when the selector answers 'default' "
    "(default 'travis-ci.+')",
    "IMAGE_SELECTOR_TYPE": "image selector: 'env' or 'api' (default 'env')",
    "IMAGE_SELECTOR_URL": "job-board image API URL for the 'api' selector",
    "IMAGE_ALIASES": "comma-delimited image aliases ('env' selector)",
    "IMAGE_[ALIAS_]{ALIAS}": "image for a key such as DIST_XENIAL or ALIAS_FOO ('env' selector)",
    "PREEMPTIBLE": "boot spot (preemptible) VMs; preempted jobs are requeued (default false)",
    "PUBLIC_IP": "give VMs a public IP; disable behind NAT (default true)",
    "PUBLIC_IP_CONNECT": "SSH to the public IP when PUBLIC_IP is set (default true)",
    "DETERMINISTIC_HOSTNAME": "name VMs after repository and job id (default false)",
    "BACKOFF_RETRY_MAX": "longest time to retry a failing API call (default 1m)",
    "BACKOFF_RETRY_INITIAL": "first pause before retrying an API call (default 1s)",
    "RATE_LIMIT_REDIS_URL": "Redis URL of a rate limit shared by workers (default: per process)",
    "RATE_LIMIT_PREFIX": "prefix of the Redis rate limit keys",
    "RATE_LIMIT_MAX_CALLS": "API calls per RATE_LIMIT_DURATION (default 10; 0: unlimited)",
    "RATE_LIMIT_DURATION": "rate limit window (default 1s)",
    "RATE_LIMIT_DYNAMIC_CONFIG": "read max calls and duration from Redis (default false)",
    "RATE_LIMIT_DYNAMIC_CONFIG_TTL": "how long to cache the Redis rate limit config (default 1m)",
    "MAX_RUN_MARGIN": "GCE deletes a VM at hard timeout + this margin; 0 disables (default 10m)",
    "ZONE_COOLDOWN": "how long to avoid a zone that ran out of capacity (default 5m)",
    "API_ENDPOINT": "Compute API endpoint, e.g. an emulator (default: Google)",
    "RESOURCE_MANAGER_ENDPOINT": "Resource Manager endpoint of doctor's permission check "
    "(default: API_ENDPOINT if set, else Google)",
    "WARMER_URL": "accepted; the warmer service is not used",
    "WARMER_TIMEOUT": "accepted; the warmer service is not used",
    "WARMER_SSH_PASSPHRASE": "accepted; the warmer service is not used",
    "TRAVIS_SITE": "network tag added to VMs (default: the travis-site setting)",
}


@dataclass(frozen=True)
class GceConfig:
    """Every GCE setting, typed. Zone, region and project may still be filled in from the
    metadata server at setup (`None`/empty here means "not configured")."""

    project_id: str = ""
    image_project_id: str = ""
    zones: tuple[str, ...] = ()
    region: str = ""
    network: str = "default"
    subnetwork: str = ""
    machine_type: str = "n1-standard-2"
    premium_machine_type: str = "n1-standard-4"
    disk_size: int = 20
    disk_size_windows: int = 20
    gpu_count: int = 0
    gpu_type: str = "nvidia-tesla-p100"
    auto_implode: bool = True
    boot_poll_sleep: timedelta = timedelta(seconds=3)
    boot_pre_poll_sleep: timedelta = timedelta(seconds=15)
    stop_poll_sleep: timedelta = timedelta(seconds=3)
    stop_pre_poll_sleep: timedelta = timedelta(seconds=15)
    skip_stop_poll: bool = False
    upload_retries: int = 120
    upload_retry_sleep: timedelta = timedelta(seconds=1)
    ssh_dial_timeout: timedelta = timedelta(seconds=5)
    ssh_key_type: Literal["ed25519", "rsa"] = "ed25519"
    default_language: str = "minimal"
    image_default: str = "travis-ci.+"
    image_selector_type: Literal["env", "api"] = "env"
    image_selector_url: str = ""
    image_table: Mapping[str, str] = field(default_factory=dict)
    """The env selector's table: IMAGE_* keys without every `IMAGE_`, lower-cased."""
    preemptible: bool = False
    public_ip: bool = True
    public_ip_connect: bool = True
    deterministic_hostname: bool = False
    backoff_retry_max: timedelta = timedelta(minutes=1)
    backoff_retry_initial: timedelta = timedelta(seconds=1)
    rate_limit_redis_url: str = ""
    rate_limit_prefix: str = ""
    rate_limit_max_calls: int = 10
    rate_limit_duration: timedelta = timedelta(seconds=1)
    rate_limit_dynamic_config: bool = False
    rate_limit_dynamic_config_ttl: timedelta = timedelta(minutes=1)
    max_run_margin: timedelta = timedelta(minutes=10)
    zone_cooldown: timedelta = timedelta(minutes=5)
    api_endpoint: str = ""
    resource_manager_endpoint: str = ""
    account_info: Mapping[str, Any] | None = None
    """The parsed service account JSON, or None for default/anonymous credentials."""
    warmer_url: str = ""
    travis_site: str = ""

    @property
    def images_project(self) -> str:
        return self.image_project_id or self.project_id


class _Keys:
    """Typed reads of the provider key map; errors name `TRAVIS_WORKER_GCE_<KEY>`."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = keys

    def fail(self, key: str, value: str, reason: str) -> ConfigError:
        return ConfigError(f"invalid value {value!r} for {PREFIX}{key}: {reason}")

    def text(self, key: str, default: str = "") -> str:
        return self.keys.get(key, default)

    def duration(self, key: str, default: str) -> timedelta:
        value = self.keys.get(key, default)
        try:
            parsed = parse_go_duration(value)
        except ValueError as exc:
            raise self.fail(key, value, str(exc)) from exc
        if parsed < timedelta(0):
            raise self.fail(key, value, "must not be negative")
        return parsed

    def count(self, key: str, default: int) -> int:
        """An unsigned integer, as Go's `strconv.ParseUint(v, 10, 64)`."""
        value = self.keys.get(key)
        if value is None:
            return default
        if not value.isdigit():
            raise self.fail(key, value, "must be a whole number >= 0")
        return int(value)

    def go_bool(self, key: str, default: bool) -> bool:
        value = self.keys.get(key)
        if value is None:
            return default
        try:
            return parse_go_bool(value)
        except ValueError as exc:
            raise self.fail(key, value, str(exc)) from exc

    def as_bool(self, key: str, default: bool) -> bool:
        """travis-ci/worker's lenient `asBool`: only 0/no/off/false/"" are false."""
        value = self.keys.get(key)
        if value is None:
            return default
        return value.strip().lower() not in {"0", "no", "off", "false", ""}

    def zones(self) -> tuple[str, ...]:
        # ZONES beats the deprecated ZONE.
        raw = self.keys.get("ZONES") or self.keys.get("ZONE") or ""
        return tuple(zone.strip() for zone in raw.split(",") if zone.strip())

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> Any:
        value = self.keys.get(key, default)
        if value not in allowed:
            raise self.fail(key, value, f"use one of {', '.join(allowed)}")
        return value

    def account(self) -> Mapping[str, Any] | None:
        return read_account_json(self.keys.get("ACCOUNT_JSON", ""), f"{PREFIX}ACCOUNT_JSON")


def read_account_json(raw: str, variable: str) -> dict[str, Any] | None:
    """A service account key given in `variable`, inline (JSON starting with `{`) or as a
    file path, parsed and checked for what credentials need; None when `raw` is empty.

    The worker and the reaper both take one. Inline JSON is a secret: errors name the
    variable (and a file's path) but never echo its value.
    """
    info = read_json_setting(raw, variable)
    if info is None:
        return None
    where = variable if raw.strip().startswith("{") else f"{variable} file {raw.strip()!r}"
    missing = [name for name in ("client_email", "private_key") if not info.get(name)]
    if missing:
        raise ConfigError(f"{where} lacks {' and '.join(missing)}")
    return info


def image_table(keys: Mapping[str, str]) -> dict[str, str]:
    """The env selector's lookup table (travis-ci/worker `image/env_selector.go`): every
    `IMAGE_…` key with each `IMAGE_` removed and lower-cased, e.g. IMAGE_DIST_XENIAL →
    dist_xenial."""
    return {
        key.replace("IMAGE_", "").lower(): value
        for key, value in keys.items()
        if key.startswith("IMAGE_")
    }


def parse_gce_config(keys: Mapping[str, str]) -> GceConfig:
    """Parse the provider key map (`PROVIDER_KEY` → value) or raise ConfigError."""
    read = _Keys(keys)
    disk_size = read.count("DISK_SIZE", 20)
    selector = read.choice("IMAGE_SELECTOR_TYPE", "env", ("env", "api"))
    if selector == "api" and not read.text("IMAGE_SELECTOR_URL"):
        raise ConfigError(f"{PREFIX}IMAGE_SELECTOR_URL is required with IMAGE_SELECTOR_TYPE=api")
    return GceConfig(
        project_id=read.text("PROJECT_ID"),
        image_project_id=read.text("IMAGE_PROJECT_ID"),
        zones=read.zones(),
        region=read.text("REGION"),
        network=read.text("NETWORK", "default") or "default",
        subnetwork=read.text("SUBNETWORK"),
        machine_type=read.text("MACHINE_TYPE", "n1-standard-2"),
        premium_machine_type=read.text("PREMIUM_MACHINE_TYPE", "n1-standard-4"),
        disk_size=disk_size,
        disk_size_windows=read.count("DISK_SIZE_WINDOWS", disk_size),
        gpu_count=read.count("GPU_COUNT", 0),
        gpu_type=read.text("GPU_TYPE", "nvidia-tesla-p100"),
        auto_implode=read.go_bool("AUTO_IMPLODE", True),
        boot_poll_sleep=read.duration("BOOT_POLL_SLEEP", "3s"),
        boot_pre_poll_sleep=read.duration("BOOT_PRE_POLL_SLEEP", "15s"),
        stop_poll_sleep=read.duration("STOP_POLL_SLEEP", "3s"),
        stop_pre_poll_sleep=read.duration("STOP_PRE_POLL_SLEEP", "15s"),
        skip_stop_poll=read.go_bool("SKIP_STOP_POLL", False),
        upload_retries=read.count("UPLOAD_RETRIES", 120),
        upload_retry_sleep=read.duration("UPLOAD_RETRY_SLEEP", "1s"),
        ssh_dial_timeout=read.duration("SSH_DIAL_TIMEOUT", "5s"),
        ssh_key_type=read.choice("SSH_KEY_TYPE", "ed25519", ("ed25519", "rsa")),
        default_language=read.text("DEFAULT_LANGUAGE", "minimal"),
        image_default=read.text("IMAGE_DEFAULT", "travis-ci.+"),
        image_selector_type=selector,
        image_selector_url=read.text("IMAGE_SELECTOR_URL"),
        image_table=image_table(keys),
        preemptible=read.as_bool("PREEMPTIBLE", False),
        public_ip=read.as_bool("PUBLIC_IP", True),
        public_ip_connect=read.as_bool("PUBLIC_IP_CONNECT", True),
        deterministic_hostname=read.as_bool("DETERMINISTIC_HOSTNAME", False),
        backoff_retry_max=read.duration("BACKOFF_RETRY_MAX", "1m"),
        backoff_retry_initial=read.duration("BACKOFF_RETRY_INITIAL", "1s"),
        rate_limit_redis_url=read.text("RATE_LIMIT_REDIS_URL"),
        rate_limit_prefix=read.text("RATE_LIMIT_PREFIX"),
        rate_limit_max_calls=read.count("RATE_LIMIT_MAX_CALLS", 10),
        rate_limit_duration=read.duration("RATE_LIMIT_DURATION", "1s"),
        rate_limit_dynamic_config=read.as_bool("RATE_LIMIT_DYNAMIC_CONFIG", False),
        rate_limit_dynamic_config_ttl=read.duration("RATE_LIMIT_DYNAMIC_CONFIG_TTL", "1m"),
        max_run_margin=read.duration("MAX_RUN_MARGIN", "10m"),
        zone_cooldown=read.duration("ZONE_COOLDOWN", "5m"),
        api_endpoint=read.text("API_ENDPOINT").rstrip("/"),
        resource_manager_endpoint=read.text("RESOURCE_MANAGER_ENDPOINT").rstrip("/"),
        account_info=read.account(),
        warmer_url=read.text("WARMER_URL"),
        travis_site=read.text("TRAVIS_SITE"),
    )
