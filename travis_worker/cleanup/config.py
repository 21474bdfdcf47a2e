"""Settings of `travis-worker cleanup`: flags, `TRAVIS_WORKER_CLEANUP_*`, `GCLOUD_CLEANUP_*`.

Every setting is a flag (`--instance-max-age 3h`) and an environment variable
`TRAVIS_WORKER_CLEANUP_<NAME>`. The names of travis-ci/gcloud-cleanup are read as a
fallback (`GCLOUD_CLEANUP_<NAME>`, and the few aliases in `_LEGACY_NAMES`), so an existing
gcloud-cleanup env file keeps working. Precedence: flag > TRAVIS_WORKER_CLEANUP_ > legacy
names > default. Booleans are Go `ParseBool`, durations Go durations, as in the worker.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any

from travis_worker.compat.durations import parse_go_duration
from travis_worker.config import parse_go_bool
from travis_worker.errors import ConfigError

ENV_PREFIX = "TRAVIS_WORKER_CLEANUP_"
LEGACY_PREFIX = "GCLOUD_CLEANUP_"
# gcloud-cleanup's other spellings of the same settings, read after GCLOUD_CLEANUP_<NAME>.
_LEGACY_NAMES: dict[str, tuple[str, ...]] = {
    "project_id": ("GCLOUD_PROJECT",),
    "account_json": ("GOOGLE_CREDENTIALS",),
    "dry_run": ("GCLOUD_CLEANUP_NOOP", "NOOP"),
    "name_pattern": ("GCLOUD_CLEANUP_INSTANCE_FILTERS",),
    "debug": ("DEBUG",),
}
_LEGACY_NAME_FILTER = re.compile(r"^\s*name\s+eq\s+(.+?)\s*$")


@dataclass(frozen=True)
class CleanupConfig:
    """What the reaper does. The defaults are gcloud-cleanup's where it had the setting."""

    project_id: str = ""
    """Project of the job VMs; empty: the credentials' project (the metadata server's on GCE)."""
    account_json: str = ""
    """Service account JSON, inline or a file path; empty: application default credentials."""
    api_endpoint: str = ""
    """Compute API endpoint (an emulator); empty: Google's. Anonymous unless account_json."""
    instance_max_age: timedelta = timedelta(hours=3)
    """Job VMs older than this are deleted, unless their max run duration says otherwise."""
    name_pattern: str = "travis-job-.+"
    """Regular expression the whole VM name must match (as well as the created-by label)."""
    loop_sleep: timedelta = timedelta(minutes=5)
    once: bool = False
    dry_run: bool = False
    rate_limit_max_calls: int = 10
    """Delete calls per rate_limit_duration; 0: unlimited."""
    rate_limit_duration: timedelta = timedelta(seconds=1)
    rate_limit_redis_url: str = ""
    """Share the limit with other processes through Redis (the worker's fixed window)."""
    rate_limit_prefix: str = ""
    listen_addr: str = ""
    """host:port for GET /healthz and /metrics; empty: no listener."""
    api_backoff: timedelta = timedelta(seconds=1)
    """First pause before retrying a Compute call (429, 5xx, no answer); grows ×1.5."""
    api_retry_max: timedelta = timedelta(minutes=1)
    """How long one Compute call is retried before the failure counts."""
    debug: bool = False


_HELP: dict[str, str] = {
    "project_id": "project of the job VMs (default: from the credentials / metadata server)",
    "account_json": "service account JSON, inline or a file path (default: ADC)",
    "api_endpoint": "Compute API endpoint, e.g. an emulator (default: Google)",
    "instance_max_age": "delete job VMs older than this (default 3h)",
    "name_pattern": "regex the whole VM name must match (default 'travis-job-.+')",
    "loop_sleep": "pause between passes (default 5m)",
    "once": "run one pass and exit; the exit code says whether it succeeded",
    "dry_run": "only log and count what would be deleted",
    "rate_limit_max_calls": "delete calls per --rate-limit-duration (default 10; 0: unlimited)",
    "rate_limit_duration": "rate limit window (default 1s)",
    "rate_limit_redis_url": "Redis URL of a rate limit shared with other processes",
    "rate_limit_prefix": "prefix of the Redis rate limit keys",
    "listen_addr": "host:port serving /healthz and /metrics (default: none)",
    "api_backoff": "first pause before retrying a Compute API call (default 1s)",
    "api_retry_max": "how long a failing Compute API call is retried (default 1m)",
    "debug": "debug logging",
}


def env_name(field_name: str) -> str:
    return f"{ENV_PREFIX}{field_name.upper()}"


def env_names(field_name: str) -> tuple[str, ...]:
    """Every variable a setting is read from, in precedence order."""
    upper = field_name.upper()
    return (env_name(field_name), f"{LEGACY_PREFIX}{upper}", *_LEGACY_NAMES.get(field_name, ()))


ENV_KEYS = frozenset(env_name(field.name) for field in fields(CleanupConfig))
"""Every TRAVIS_WORKER_CLEANUP_* variable this command reads (deploy tests check against it)."""


def _convert(field_name: str, raw: str) -> Any:
    default = getattr(CleanupConfig(), field_name)
    if isinstance(default, bool):
        return parse_go_bool(raw)
    if isinstance(default, int):
        if not raw.strip().isdigit():
            raise ValueError("must be a whole number >= 0")
        return int(raw)
    if isinstance(default, timedelta):
        return parse_go_duration(raw)
    if field_name == "name_pattern":
        # gcloud-cleanup's filter list, e.g. `name eq ^travis-job-.*`: the last name filter.
        filters = [_LEGACY_NAME_FILTER.match(part) for part in raw.split(",")]
        names = [match.group(1).strip("\"'") for match in filters if match]
        return names[-1] if names else raw
    return raw.strip() if field_name == "api_endpoint" else raw


def _validate(config: CleanupConfig) -> None:
    if config.instance_max_age <= timedelta(0):
        raise ValueError("instance_max_age: must be greater than zero")
    if config.loop_sleep <= timedelta(0):
        raise ValueError("loop_sleep: must be greater than zero")
    if config.api_backoff <= timedelta(0):
        raise ValueError("api_backoff: must be greater than zero")
    try:
        re.compile(config.name_pattern)
    except re.error as exc:
        raise ValueError(f"name_pattern: not a regular expression ({exc})") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="travis-worker cleanup",
        description=(
            "Delete orphaned travis job VMs: VMs named like job VMs AND labelled "
            "created-by=travis-worker that are STOPPED/TERMINATED/SUSPENDED, past their own "
            "max run duration, or (without one) older than --instance-max-age. Nothing "
            "else is ever touched."
        ),
        epilog="Every flag is also TRAVIS_WORKER_CLEANUP_<FLAG_NAME> (or GCLOUD_CLEANUP_<...>).",
    )
    for field in fields(CleanupConfig):
        default = getattr(CleanupConfig(), field.name)
        flag = f"--{field.name.replace('_', '-')}"
        options: dict[str, Any] = {"dest": field.name, "default": None}
        if isinstance(default, bool):
            options.update(nargs="?", const="true", metavar="BOOL")
        else:
            options["metavar"] = "VALUE"
        parser.add_argument(flag, help=f"{_HELP[field.name]} [{env_name(field.name)}]", **options)
    return parser


def load_cleanup_config(
    argv: Sequence[str], environ: Mapping[str, str]
) -> tuple[CleanupConfig, argparse.ArgumentParser]:
    """Flags and environment → CleanupConfig, or ConfigError naming the flag/variable."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    config = CleanupConfig()
    for field in fields(CleanupConfig):
        raw = getattr(args, field.name)
        where = f"--{field.name.replace('_', '-')}"
        if raw is None:
            origin = next((name for name in env_names(field.name) if environ.get(name)), None)
            if origin is None:
                continue
            raw, where = environ[origin], origin
        try:
            config = replace(config, **{field.name: _convert(field.name, raw)})
        except ValueError as exc:
            shown = "<secret>" if field.name == "account_json" else repr(raw)
            raise ConfigError(f"invalid value {shown} for {where}: {exc}") from exc
    try:
        _validate(config)
    except ValueError as exc:
        raise ConfigError(f"invalid cleanup setting {exc}") from exc
    return config, parser
