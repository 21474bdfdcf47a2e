"""`--echo-config`: the effective configuration as travis-ci/worker prints it, secrets
redacted."""

from __future__ import annotations

from datetime import UTC, datetime

from travis_worker.cli.echo import echo_config, go_quote
from travis_worker.config import load_settings


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
