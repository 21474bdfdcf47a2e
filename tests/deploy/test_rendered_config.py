"""What the hosts actually get: env.tf evaluated by terraform (offline, no provider) and the
rendered cloud-configs and env files checked."""

from __future__ import annotations

import base64
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.deploy.support import (
    env_file_keys,
    evaluate,
    is_known_worker_key,
    known_cleanup_keys,
)

IMAGE = "us-docker.pkg.dev/ci-project/ci/travis-worker:0.1.0"
BASE = {
    "project": "ci-project",
    "worker_docker_self_image": IMAGE,
    "amqp_uri": "amqps://worker:s3cret@rabbit.example.com/travis",
    "build_api_uri": "https://token@build.example.com/script",
    "job_image_default": "travis-ci-garnet-trusty.+",
}


def cloud_config(text: str) -> dict[str, Any]:
    need(importlib.util.find_spec("yaml") is not None, "PyYAML parses the rendered cloud-config")
    import yaml

    assert text.startswith("#cloud-config\n")
    parsed: dict[str, Any] = yaml.safe_load(text)
    return parsed


def written(config: dict[str, Any], path: str) -> str:
    entry = next(item for item in config["write_files"] if item["path"] == path)
    if entry.get("encoding") == "b64":
        return base64.b64decode(entry["content"]).decode()
    return str(entry["content"])


def unit_lines(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{key}=")]


def test_worker_env_file_holds_known_settings_and_variables_win(tmp_path: Path) -> None:
    variables = {**BASE, "worker_env": {"TRAVIS_WORKER_GCE_UPLOAD_RETRIES": "10"}}
    env_file = evaluate(tmp_path, "local.worker_env_file", variables)

    keys = env_file_keys(env_file)
    assert all(is_known_worker_key(key) for key in keys), keys
    lines = env_file.splitlines()
    assert "TRAVIS_WORKER_AMQP_URI=amqps://worker:s3cret@rabbit.example.com/travis" in lines
    assert "TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR=0.0.0.0:6060" in lines
    assert "TRAVIS_WORKER_HARD_TIMEOUT=50m" in lines
    # Provider values are URL-unescaped by the worker: "+" must arrive as %2B.
    assert "TRAVIS_WORKER_GCE_IMAGE_DEFAULT=travis-ci-garnet-trusty.%2B" in lines
    # With --env-file the last line of a key wins: the variable's, after worker.env's.
    retries = [line for line in lines if line.startswith("TRAVIS_WORKER_GCE_UPLOAD_RETRIES=")]
    assert retries == [
        "TRAVIS_WORKER_GCE_UPLOAD_RETRIES=300",
        "TRAVIS_WORKER_GCE_UPLOAD_RETRIES=10",
    ]
    assert "TRAVIS_WORKER_GCE_SUBNETWORK" not in keys, "empty values are left out"


def test_worker_cloud_config_runs_the_container_and_drains_on_stop(tmp_path: Path) -> None:
    config = cloud_config(evaluate(tmp_path, "local.worker_cloud_config", BASE))

    unit = written(config, "/etc/systemd/system/travis-worker.service")
    (start,) = unit_lines(unit, "ExecStart")
    drain = 50 * 60 + 300
    assert start.startswith("/usr/bin/docker run --rm --name=travis-worker --network=host")
    assert f"--stop-timeout={drain}" in start
    assert "--env-file=/etc/default/travis-worker" in start
    # The spool outlives the container, so the next worker replays what this one could not.
    assert "--volume=/var/lib/travis-worker/spool:/var/spool/travis-worker" in start
    assert any("chown 10001:10001 /var/lib/travis-worker/spool" in line
               for line in unit_lines(unit, "ExecStartPre"))  # fmt: skip
    assert start.endswith(f" {IMAGE}")
    assert unit_lines(unit, "ExecStop") == [
        f"/etc/travis-worker/stop-container.sh travis-worker {drain} 60"
    ]
    assert int(unit_lines(unit, "TimeoutStopSec")[0]) > drain + 30
    assert unit_lines(unit, "Restart") == ["on-failure"]
    assert any("docker-credential-gcr configure-docker --registries=us-docker.pkg.dev" in line
               for line in unit_lines(unit, "ExecStartPre"))  # fmt: skip
    assert "systemctl start travis-worker.service" in config["runcmd"]
    env_file = written(config, "/etc/default/travis-worker")
    assert "TRAVIS_WORKER_QUEUE_NAME=builds.trusty" in env_file.splitlines()
    stop_script = written(config, "/etc/travis-worker/stop-container.sh")
    assert (
        stop_script
        == (Path(__file__).parents[2] / "deploy/terraform/templates/stop-container.sh").read_text()
    )


def test_secrets_come_from_secret_manager_and_never_reach_metadata(tmp_path: Path) -> None:
    variables = {
        **BASE,
        "amqp_uri": "",
        "worker_secret_env": {"TRAVIS_WORKER_AMQP_URI": "amqp-uri@3"},
    }
    text = evaluate(tmp_path, "local.worker_cloud_config", variables)
    config = cloud_config(text)

    unit = written(config, "/etc/systemd/system/travis-worker.service")
    fetch = [line for line in unit_lines(unit, "ExecStartPre") if "fetch-secrets" in line]
    assert len(fetch) == 1
    assert f"--entrypoint=travis-worker-fetch-secrets {IMAGE} --project=ci-project" in fetch[0]
    assert "TRAVIS_WORKER_AMQP_URI=amqp-uri@3 > /run/travis-worker/secrets.env" in fetch[0]
    assert "--env-file=/run/travis-worker/secrets.env" in unit_lines(unit, "ExecStart")[0]
    assert "TRAVIS_WORKER_AMQP_URI" not in env_file_keys(
        written(config, "/etc/default/travis-worker")
    )


def test_honeytail_runs_only_with_a_dataset(tmp_path: Path) -> None:
    without = cloud_config(evaluate(tmp_path, "local.worker_cloud_config", BASE))
    assert not [item for item in without["write_files"] if "honeytail" in item["path"]]

    variables = {**BASE, "honeycomb_dataset": "workers", "honeycomb_writekey": "key123"}
    config = cloud_config(evaluate(tmp_path, "local.worker_cloud_config", variables))
    conf = written(config, "/etc/honeytail/honeytail.conf")
    assert re.search(r"^WriteKey = key123$", conf, re.MULTILINE)
    assert re.search(r"^Dataset = workers$", conf, re.MULTILINE)
    assert "systemctl start honeytail.service" in config["runcmd"]


def test_cleanup_cloud_config_runs_the_reaper_with_known_settings(tmp_path: Path) -> None:
    variables = {**BASE, "cleanup_dry_run": True, "cleanup_instance_max_age": "4h"}
    config = cloud_config(evaluate(tmp_path, "local.cleanup_cloud_config", variables))

    env_file = written(config, "/etc/default/travis-worker-cleanup")
    assert set(env_file_keys(env_file)) <= known_cleanup_keys()
    assert "TRAVIS_WORKER_CLEANUP_DRY_RUN=true" in env_file.splitlines()
    assert "TRAVIS_WORKER_CLEANUP_INSTANCE_MAX_AGE=4h" in env_file.splitlines()
    unit = written(config, "/etc/systemd/system/travis-worker-cleanup.service")
    (start,) = unit_lines(unit, "ExecStart")
    assert start.endswith(f" {IMAGE} cleanup"), "the cleanup image defaults to the worker's"
    assert '--health-cmd="travis-worker-healthcheck 127.0.0.1:9090"' in start


@pytest.mark.parametrize("minutes", [50, 120])
def test_drain_budget_follows_the_hard_timeout(tmp_path: Path, minutes: int) -> None:
    variables = {**BASE, "hard_timeout_minutes": minutes}
    assert evaluate(tmp_path, "local.drain_seconds", variables) == minutes * 60 + 300
