"""Settings read as travis-ci/worker reads them, and refused clearly when wrong."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from travis_worker.config import load_settings, provider_config
from travis_worker.echo import echo_config, go_quote
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


def test_echo_config_format_and_redaction():
    settings = load_settings(
        {},
        {
            "TRAVIS_WORKER_AMQP_URI": "amqp://user:s3cret@rabbit.example.com:5672/vhost",
            "TRAVIS_WORKER_BUILD_API_URI": "https://tokentoken@build.example.com/script",
            "TRAVIS_WORKER_BUILD_CACHE_S3_SECRET_ACCESS_KEY": "AKIASECRET",
            "TRAVIS_WORKER_LIBRATO_TOKEN": "lib-token",
            "TRAVIS_WORKER_PROVIDER_NAME": "gce",
            "TRAVIS_WORKER_HOSTNAME": 'host"with\nodd',
        },
    )
    keys = {"ACCOUNT_JSON": '{"private_key": "x"}', "ZONES": "us-central1-a",
            "RATE_LIMIT_REDIS_URL": "redis://:pw@redis:6379/0"}  # fmt: skip
    text = echo_config(settings, keys, now=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))
    lines = text.splitlines()
    assert lines[0] == "# travis-worker env config generated 2024-05-01 12:00:00.123456 +0000 UTC"
    assert (
        'export TRAVIS_WORKER_AMQP_URI="amqp://user:REDACTED@rabbit.example.com:5672/vhost"'
        in lines
    )
    assert 'export TRAVIS_WORKER_BUILD_API_URI="https://REDACTED@build.example.com/script"' in lines
    assert 'export TRAVIS_WORKER_BUILD_CACHE_S3_SECRET_ACCESS_KEY="REDACTED"' in lines
    assert 'export TRAVIS_WORKER_LIBRATO_TOKEN="REDACTED"' in lines
    assert 'export TRAVIS_WORKER_HARD_TIMEOUT="50m0s"' in lines
    assert 'export TRAVIS_WORKER_AMQP_INSECURE="false"' in lines
    assert 'export TRAVIS_WORKER_HOSTNAME="host\\"with\\nodd"' in lines
    assert 'export TRAVIS_WORKER_GCE_ACCOUNT_JSON="REDACTED"' in lines
    assert 'export TRAVIS_WORKER_GCE_RATE_LIMIT_REDIS_URL="redis://:REDACTED@redis:6379/0"' in lines
    assert "s3cret" not in text and "tokentoken" not in text and "AKIASECRET" not in text
    names = [line.split("=")[0].removeprefix("export TRAVIS_WORKER_") for line in lines[1:]]
    names = names[: names.index("")]
    # Sorted by flag name, as Go sorts them: `log-format` before `logs-amqp-uri`.
    assert names == sorted(names, key=lambda name: name.lower().replace("_", "-"))
    assert not any("REMOTE_CONTROLLER" in line or "HEARTBEAT_URL" in line for line in lines)
    assert lines[-1] == "# end travis-worker env config"
    assert lines[lines.index("") + 1] == "# travis-worker provider config:"


def test_go_quote():
    assert go_quote('a"b\\c\td\x01é') == '"a\\"b\\\\c\\td\\x01é"'


def test_urls_lose_their_credentials_before_they_are_shown():
    from travis_worker.redact import redact_url

    assert redact_url("https://user:pw@host/hb") == "https://user:REDACTED@host/hb"
    assert redact_url("https://tok@host/x", username_is_secret=True) == "https://REDACTED@host/x"
    assert redact_url("https://host/x") == "https://host/x"
