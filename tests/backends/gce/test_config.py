"""TRAVIS_WORKER_GCE_* settings: names and defaults of travis-ci/worker, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from travis_worker.backends import BACKENDS
from travis_worker.backends.google.config import GceConfig, parse_gce_config
from travis_worker.config import provider_config
from travis_worker.errors import ConfigError


def test_defaults_are_the_go_workers():
    config = parse_gce_config({})
    assert config == GceConfig()
    assert (config.machine_type, config.premium_machine_type) == ("n1-standard-2", "n1-standard-4")
    assert (config.disk_size, config.disk_size_windows, config.network) == (20, 20, "default")
    assert config.boot_poll_sleep == timedelta(seconds=3)
    assert config.boot_pre_poll_sleep == timedelta(seconds=15)
    assert config.stop_pre_poll_sleep == timedelta(seconds=15)
    assert (config.upload_retries, config.upload_retry_sleep) == (120, timedelta(seconds=1))
    assert config.ssh_dial_timeout == timedelta(seconds=5)
    assert (config.image_default, config.image_selector_type) == ("travis-ci.+", "env")
    assert (config.public_ip, config.public_ip_connect, config.preemptible) == (True, True, False)
    assert (config.auto_implode, config.skip_stop_poll) == (True, False)
    assert (config.rate_limit_max_calls, config.rate_limit_duration) == (10, timedelta(seconds=1))
    assert config.backoff_retry_max == timedelta(minutes=1)
    assert config.ssh_key_type == "ed25519"
    assert config.zones == () and config.region == ""


def test_values_from_the_environment():
    keys = provider_config(
        "gce",
        {
            "TRAVIS_WORKER_GCE_ZONES": "us-east1-b,us-east1-c",
            "TRAVIS_WORKER_GCE_ZONE": "europe-west1-b",
            "TRAVIS_WORKER_GCE_DISK_SIZE": "50",
            "GCE_MACHINE_TYPE": "n2-standard-8",  # the plain name wins, as in Go
            "TRAVIS_WORKER_GCE_MACHINE_TYPE": "n1-standard-1",
            "TRAVIS_WORKER_GCE_BOOT_POLL_SLEEP": "1.5s",
            "TRAVIS_WORKER_GCE_PREEMPTIBLE": "yes",
            "TRAVIS_WORKER_GCE_PUBLIC_IP": "off",
            "TRAVIS_WORKER_GCE_SKIP_STOP_POLL": "t",
            "TRAVIS_WORKER_GCE_IMAGE_PROJECT_ID": "images",
            "TRAVIS_WORKER_GCE_PROJECT_ID": "jobs",
            "TRAVIS_WORKER_GCE_SUBNETWORK": "jobs+subnet",
        },
    )
    config = parse_gce_config(keys)
    assert config.zones == ("us-east1-b", "us-east1-c")
    assert (config.disk_size, config.disk_size_windows) == (50, 50)
    assert config.machine_type == "n2-standard-8"
    assert config.boot_poll_sleep == timedelta(seconds=1.5)
    assert (config.preemptible, config.public_ip, config.skip_stop_poll) == (True, False, True)
    assert config.images_project == "images"
    assert config.subnetwork == "jobs subnet"


def test_deprecated_zone_is_used_without_zones():
    assert parse_gce_config({"ZONE": "us-west1-a"}).zones == ("us-west1-a",)


def test_lenient_booleans_are_lenient():
    for text in ("yes", "on", "1", "boo", "99", "a", "fafafaf", "true"):
        assert parse_gce_config({"PREEMPTIBLE": text}).preemptible is True
    for text in ("0", "off", "no", "false", ""):
        assert parse_gce_config({"PUBLIC_IP": text}).public_ip is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("AUTO_IMPLODE", "maybe"),
        ("SKIP_STOP_POLL", "yes"),
        ("BOOT_POLL_SLEEP", "3"),
        ("UPLOAD_RETRY_SLEEP", "-1s"),
        ("UPLOAD_RETRIES", "-4"),
        ("DISK_SIZE", "big"),
        ("RATE_LIMIT_MAX_CALLS", "1.5"),
        ("IMAGE_SELECTOR_TYPE", "tag"),
        ("SSH_KEY_TYPE", "dsa"),
    ],
)
def test_invalid_values_name_the_variable_and_the_value(key, value):
    with pytest.raises(ConfigError) as caught:
        parse_gce_config({key: value})
    assert f"TRAVIS_WORKER_GCE_{key}" in str(caught.value)
    assert repr(value) in str(caught.value)


def test_api_selector_needs_a_url():
    with pytest.raises(ConfigError, match="IMAGE_SELECTOR_URL"):
        parse_gce_config({"IMAGE_SELECTOR_TYPE": "api"})


def test_account_json_inline_or_file(tmp_path):
    account = {"client_email": "w@p.iam.gserviceaccount.com", "private_key": "-----BEGIN"}
    assert parse_gce_config({"ACCOUNT_JSON": json.dumps(account)}).account_info == account
    path = tmp_path / "account.json"
    path.write_text(json.dumps(account))
    assert parse_gce_config({"ACCOUNT_JSON": str(path)}).account_info == account


def test_account_json_errors_do_not_echo_secrets(tmp_path):
    secret = '{"client_email": "x", "private_key": "SECRET-KEY" '
    with pytest.raises(ConfigError) as caught:
        parse_gce_config({"ACCOUNT_JSON": secret})
    assert "SECRET" not in str(caught.value) and "ACCOUNT_JSON" in str(caught.value)
    with pytest.raises(ConfigError, match="private_key"):
        parse_gce_config({"ACCOUNT_JSON": '{"client_email": "x"}'})
    with pytest.raises(ConfigError, match="cannot read"):
        parse_gce_config({"ACCOUNT_JSON": str(tmp_path / "missing.json")})


def test_image_table_drops_every_image_prefix():
    config = parse_gce_config(
        {"IMAGE_DIST_XENIAL": "x", "IMAGE_ALIAS_FOO": "f", "IMAGE_DEFAULT": "d", "ZONES": "z"}
    )
    assert config.image_table == {"dist_xenial": "x", "alias_foo": "f", "default": "d"}


def test_help_is_registered_without_importing_google():
    assert "TRAVIS_WORKER" not in "".join(BACKENDS["gce"].help)
    assert {"ZONES", "API_ENDPOINT", "UPLOAD_RETRIES"} <= set(BACKENDS["gce"].help)
    code = (
        "import sys, travis_worker.backends; "
        "print(any(m.startswith('google') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
