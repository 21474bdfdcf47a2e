"""Settings read as travis-ci/worker reads them, and refused clearly when wrong."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from travis_worker.config import load_settings, provider_config
from travis_worker.errors import ConfigError


def test_defaults_match_the_go_worker():
    settings = load_settings({}, {})
    assert settings.pool_size == 1
    assert settings.amqp_uri == "amqp://"
    assert settings.hard_timeout == timedelta(minutes=50)
    assert settings.log_timeout == timedelta(minutes=10)
    assert settings.script_upload_timeout == timedelta(minutes=3, seconds=30)
    assert settings.startup_timeout == timedelta(minutes=4)
    assert settings.max_log_length == 4_500_000
    assert settings.default_dist == "xenial"
    assert settings.amqp_insecure is False
    # travis-ci/worker defaults to docker, which does not exist here; gce is the real one.
    assert settings.provider_name == "gce"


@pytest.mark.parametrize(
    ("environ", "field", "expected"),
    [
        ({"TRAVIS_WORKER_POOL_SIZE": "42"}, "pool_size", 42),
        ({"POOL_SIZE": "7"}, "pool_size", 7),
        ({"TRAVIS_WORKER_POOL_SIZE": "3", "POOL_SIZE": "9"}, "pool_size", 3),
        ({"TRAVIS_WORKER_HARD_TIMEOUT": "2h"}, "hard_timeout", timedelta(hours=2)),
        ({"LOG_TIMEOUT": "1m30s"}, "log_timeout", timedelta(seconds=90)),
        ({"TRAVIS_WORKER_AMQP_INSECURE": "T"}, "amqp_insecure", True),
        ({"TRAVIS_WORKER_AMQP_INSECURE": "0"}, "amqp_insecure", False),
        ({"TRAVIS_WORKER_AMQP_INSECURE": ""}, "amqp_insecure", False),
        ({"TRAVIS_WORKER_QUEUE_NAME": "builds.gce"}, "queue_name", "builds.gce"),
        ({"TRAVIS_WORKER_INFRA": ""}, "infra", ""),
        ({"TRAVIS_WORKER_POOL_SIZE": ""}, "pool_size", 1),
    ],
)
def test_environment_by_type_and_precedence(environ, field, expected):
    assert getattr(load_settings({}, environ), field) == expected


def test_flags_beat_the_environment():
    settings = load_settings(
        {"pool_size": "42", "hard_timeout": "2h"},
        {"TRAVIS_WORKER_POOL_SIZE": "3", "TRAVIS_WORKER_HARD_TIMEOUT": "1h"},
    )
    assert settings.pool_size == 42
    assert settings.hard_timeout == timedelta(hours=2)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TRAVIS_WORKER_POOL_SIZE": "many"}, "invalid value 'many' for TRAVIS_WORKER_POOL_SIZE"),
        ({"HARD_TIMEOUT": "10"}, "invalid value '10' for HARD_TIMEOUT: invalid duration"),
        (
            {"TRAVIS_WORKER_AMQP_INSECURE": "yes"},
            "for TRAVIS_WORKER_AMQP_INSECURE: invalid boolean",
        ),
        ({"OPENCENSUS_SAMPLING_RATE": "0"}, "invalid trace sample rate"),
        ({"TRAVIS_WORKER_POOL_SIZE": "-1"}, "TRAVIS_WORKER_POOL_SIZE"),
        ({"TRAVIS_WORKER_HARD_TIMEOUT": "0s"}, "must be greater than zero"),
    ],
)
def test_invalid_values_name_the_variable_and_the_value(environ, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings({}, environ)


def test_invalid_flag_is_named_as_a_flag():
    with pytest.raises(ConfigError, match=r"invalid value 'x' for --pool-size"):
        load_settings({"pool_size": "x"}, {})


def test_invalid_value_fails_start_up_with_one_line_and_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "travis_worker", "--echo-config"],
        env={"TRAVIS_WORKER_HARD_TIMEOUT": "forever", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "travis-worker: invalid value 'forever' for TRAVIS_WORKER_HARD_TIMEOUT: "
        "invalid duration 'forever'\n"
    )


def test_provider_config_prefixes_and_unescaping():
    environ = {
        "TRAVIS_WORKER_FAKE_FOO": "bar",
        "TRAVIS_WORKER_FAKE_LOG_OUTPUT": "hello+world%0A",
        "FAKE_OVERRIDE": "plain",
        "TRAVIS_WORKER_FAKE_OVERRIDE": "prefixed",
        "TRAVIS_WORKER_FAKE_BROKEN": "100%zz",
        "TRAVIS_WORKER_FAKE_ACCOUNT_JSON": '{"a": "b+c%20"}',
        "TRAVIS_WORKER_GCE_PROJECT_ID": "other",
    }
    assert provider_config("fake", environ) == {
        "FOO": "bar",
        "LOG_OUTPUT": "hello world\n",
        "OVERRIDE": "plain",  # the unprefixed name wins, as in travis-ci/worker
        "BROKEN": "100%zz",
        "ACCOUNT_JSON": '{"a": "b+c%20"}',
    }
