"""`travis-worker cleanup` settings: flags, TRAVIS_WORKER_CLEANUP_*, gcloud-cleanup names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from travis_worker.cleanup.config import ENV_KEYS, CleanupConfig, load_cleanup_config
from travis_worker.errors import ConfigError


def load(argv: list[str], env: dict[str, str]) -> CleanupConfig:
    return load_cleanup_config(argv, env)[0]


def test_defaults_are_gcloud_cleanups() -> None:
    config = load([], {})
    assert (config.instance_max_age, config.loop_sleep) == (
        timedelta(hours=3),
        timedelta(minutes=5),
    )
    assert (config.dry_run, config.once, config.rate_limit_max_calls) == (False, False, 10)


def test_flag_beats_new_env_beats_legacy_env() -> None:
    env = {
        "TRAVIS_WORKER_CLEANUP_INSTANCE_MAX_AGE": "2h",
        "GCLOUD_CLEANUP_INSTANCE_MAX_AGE": "1h",
        "GCLOUD_CLEANUP_LOOP_SLEEP": "30s",
    }
    assert load([], env).instance_max_age == timedelta(hours=2)
    assert load(["--instance-max-age", "90m"], env).instance_max_age == timedelta(minutes=90)
    assert load([], env).loop_sleep == timedelta(seconds=30)


def test_gcloud_cleanup_env_files_keep_working() -> None:
    config = load(
        [],
        {
            "GCLOUD_CLEANUP_INSTANCE_FILTERS": "name eq ^travis-job-.*",
            "GCLOUD_CLEANUP_NOOP": "true",
            "GCLOUD_PROJECT": "my-project",
        },
    )
    assert (config.name_pattern, config.dry_run, config.project_id) == (
        "^travis-job-.*",
        True,
        "my-project",
    )


def test_bool_flags_without_a_value_are_true() -> None:
    config = load(["--dry-run", "--once"], {})
    assert (config.dry_run, config.once) == (True, True)
    assert load(["--dry-run=false"], {}).dry_run is False


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        ([], {"TRAVIS_WORKER_CLEANUP_INSTANCE_MAX_AGE": "3 hours"}, "INSTANCE_MAX_AGE"),
        (["--dry-run=maybe"], {}, "--dry-run"),
        ([], {"TRAVIS_WORKER_CLEANUP_INSTANCE_MAX_AGE": "-1h"}, "instance_max_age"),
        ([], {"TRAVIS_WORKER_CLEANUP_NAME_PATTERN": "travis-(job"}, "name_pattern"),
        ([], {"GCLOUD_CLEANUP_RATE_LIMIT_MAX_CALLS": "ten"}, "GCLOUD_CLEANUP_RATE_LIMIT"),
    ],
)
def test_bad_values_name_their_source(argv: list[str], env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load(argv, env)


def test_every_travis_worker_cleanup_variable_is_read() -> None:
    samples = {bool: "true", int: "7", timedelta: "7m", str: "x.+"}
    assert "TRAVIS_WORKER_CLEANUP_DRY_RUN" in ENV_KEYS
    for key in sorted(ENV_KEYS):
        name = key.removeprefix("TRAVIS_WORKER_CLEANUP_").lower()
        default = getattr(CleanupConfig(), name)
        value = getattr(load([], {key: samples[type(default)]}), name)
        assert value != default, f"{key} is not read"
