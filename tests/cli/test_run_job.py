"""`travis-worker run-job`: the README's demo, through the real CLI."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def run_job(
    *args: str, env: dict[str, str] | None = None, open_files: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`travis-worker run-job ARGS`, started with a soft limit of `open_files` if given."""
    base = {"PATH": os.environ["PATH"], "TRAVIS_WORKER_INITIAL_SLEEP": "0s"}
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    result = subprocess.run(
        [sys.executable, "-m", "travis_worker", "run-job", *args],
        cwd=ROOT, env={**base, **(env or {})}, capture_output=True, timeout=50,
        preexec_fn=None if open_files is None else (
            lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, hard))
        ),
    )  # fmt: skip
    # Decoded by hand: text mode would turn the log's `\r` into newlines.
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def test_readme_example_prints_the_log_and_passes():
    result = run_job("examples/example-payload.json", "--script", "examples/build.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("travis_fold:start:worker_info\r\033[0K")
    assert "Hello World\n" in result.stdout
    assert result.stdout.endswith("Done. Your build exited with 0.\n")
    assert "job 721270 received" in result.stderr
    assert "job 721270 passed" in result.stderr


def test_the_worker_raises_its_soft_limit_of_open_files(tmp_path):
    """Hundreds of running jobs need more descriptors than the usual soft limit of 1024."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard > 256
    script = tmp_path / "limit.sh"
    script.write_text("echo soft limit $(ulimit -Sn)\n")  # the job inherits the worker's
    result = run_job("examples/example-payload.json", "--script", str(script), open_files=256)
    assert result.returncode == 0, result.stderr
    assert f"soft limit {hard}\n" in result.stdout


def test_failing_script_exits_1(tmp_path):
    script = tmp_path / "fail.sh"
    script.write_text("echo nope\nexit 1\n")
    result = run_job("examples/example-payload.json", "--script", str(script))
    assert result.returncode == 1
    assert "job 721270 failed" in result.stderr


def test_hard_timeout_exits_2_with_the_text(tmp_path):
    script = tmp_path / "slow.sh"
    script.write_text("sleep 30\n")
    payload = json.loads((ROOT / "examples/example-payload.json").read_text())
    payload["timeouts"]["hard_limit"] = None  # so the setting applies
    (tmp_path / "payload.json").write_text(json.dumps(payload))
    result = run_job(
        str(tmp_path / "payload.json"), "--script", str(script), "--hard-timeout", "1s"
    )
    assert result.returncode == 2
    assert "The job exceeded the maximum time limit for jobs" in result.stdout


def test_unusable_payload_is_one_clear_line(tmp_path):
    payload = tmp_path / "bad.json"
    payload.write_text(json.dumps({"job": {"id": "one"}}))
    result = run_job(str(payload), "--script", "examples/build.sh")
    assert result.returncode == 2
    assert result.stderr == (
        "travis-worker: unusable job payload: "
        'payload job.id must be an integer from 1 to 2^64-1, not "one"\n'
    )
    assert "Traceback" not in result.stderr


def test_a_payload_value_the_run_needs_but_cannot_use_errors_the_job(tmp_path):
    payload = tmp_path / "odd.json"
    payload.write_text(json.dumps({"job": {"id": 1}, "timeouts": {"hard_limit": -1}}))
    result = run_job(str(payload), "--script", "examples/build.sh")
    assert result.returncode == 2
    assert result.stdout == (
        "An error occurred while reading the job payload: "
        "timeouts.hard_limit must be at least 0 (got -1). The job was not run."
    )


def test_missing_payload_file(tmp_path):
    result = run_job(str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "cannot read payload" in result.stderr


def test_without_script_asks_the_build_api_and_says_when_it_is_not_set():
    result = run_job("examples/example-payload.json")
    assert result.returncode == 2
    assert "build-api-uri is not set" in result.stderr


def test_version_and_providers():
    version = subprocess.run(
        [sys.executable, "-m", "travis_worker", "--version"], capture_output=True, text=True
    )
    assert version.stdout.startswith("travis-worker v=")
    providers = subprocess.run(
        [sys.executable, "-m", "travis_worker", "--list-backend-providers"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert providers.stdout.split() == sorted(providers.stdout.split())
    assert {"fake", "gce", "local"} <= set(providers.stdout.split())


def test_help_includes_provider_help():
    result = subprocess.run(
        [sys.executable, "-m", "travis_worker", "--help"], capture_output=True, text=True
    )
    assert "--pool-size" in result.stdout
    assert "$[TRAVIS_WORKER_]{UPCASE_PROVIDER_NAME}_{UPCASE_UNDERSCORED_KEY}" in result.stdout
    assert "Fake provider help:" in result.stdout
