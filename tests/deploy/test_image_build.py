"""Build the Dockerfile for real with buildah and run the image.

Base images cannot be pulled here, so the base (Debian bookworm with python3, what the
official slim image offers) is made once with debootstrap and kept in buildah's storage as
BASE; later runs reuse it. Needs root, buildah and debootstrap (apt-get install buildah
debootstrap): skipped on a laptop without them, failed in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.deploy.support import REPO

BASE = "localhost/travis-worker-test-base:bookworm"
STORAGE = ["--storage-driver", "vfs"]
# The host's CA bundle and pip settings go into the base, so that pip inside the build
# trusts what pip on this host trusts (a TLS-inspecting proxy, for one).
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

pytestmark = pytest.mark.timeout(900)
BUILD_DATE = "2024-05-01T12:00:00Z"


@cache
def revision() -> str:
    """The checkout's HEAD, passed as the REVISION build arg as deploy/README.md shows."""
    need(shutil.which("git") is not None, "git (apt-get install git)")
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def buildah(*args: str, timeout: float = 600, check: bool = True) -> str:
    result = subprocess.run(
        ["buildah", *STORAGE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def make_base() -> None:
    rootfs = Path(tempfile.mkdtemp(prefix="travis-worker-base-"))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase",
             "--include=python3,python3-venv,python-is-python3,ca-certificates",
             "bookworm", str(rootfs), "http://deb.debian.org/debian"],
            capture_output=True, timeout=900, check=True,
        )  # fmt: skip
        if HOST_CA_BUNDLE.is_file():
            shutil.copy(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
            (rootfs / "etc/pip.conf").write_text(f"[global]\ncert = {HOST_CA_BUNDLE}\n")
        container = buildah("from", "scratch")
        try:
            mount = buildah("mount", container)
            subprocess.run(["cp", "-a", f"{rootfs}/.", mount], check=True, timeout=300)
            buildah("umount", container)
            buildah("commit", "-q", container, BASE)
        finally:
            buildah("rm", container, check=False)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    need(os.geteuid() == 0, "building images with buildah (vfs, chroot) needs root")
    need(shutil.which("buildah") is not None, "buildah (apt-get install buildah)")
    need(shutil.which("debootstrap") is not None, "debootstrap (apt-get install debootstrap)")
    if not buildah("images", "-q", BASE, check=False):
        make_base()
    tag = f"localhost/travis-worker:test-{uuid.uuid4().hex[:8]}"
    buildah(
        "bud", "--isolation", "chroot", "--format", "docker",
        "--build-arg", f"PYTHON_IMAGE={BASE}", "--build-arg", "VERSION=9.9.9-test",
        "--build-arg", f"REVISION={revision()}", "--build-arg", f"BUILD_DATE={BUILD_DATE}",
        "-t", tag, str(REPO),
    )  # fmt: skip
    try:
        yield tag
    finally:
        buildah("rmi", "-f", tag, check=False)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    name = buildah("from", image)
    try:
        yield name
    finally:
        buildah("rm", name, check=False)


def run(container: str, *command: str, env: dict[str, str] | None = None) -> str:
    options = [item for key, value in (env or {}).items() for item in ("--env", f"{key}={value}")]
    return buildah("run", "--isolation", "chroot", *options, container, "--", *command, timeout=120)


def test_image_config(image: str) -> None:
    inspected: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", image))
    config = inspected["Docker"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["travis-worker"]
    assert config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"]["Test"] == ["CMD", "travis-worker-healthcheck"]
    assert config["Labels"]["org.opencontainers.image.version"] == "9.9.9-test"
    assert config["Labels"]["org.opencontainers.image.revision"] == revision()


def test_the_image_holds_the_commands_and_no_build_tools(container: str) -> None:
    # Stamped into the package from the build args: the image has no .git to ask.
    assert run(container, "travis-worker", "--version").startswith(
        f"travis-worker v=0.1.0 rev={revision()} d={BUILD_DATE} py="
    )
    listing = run(container, "ls", "/opt/travis-worker/bin").split()
    assert {"travis-worker", "travis-worker-healthcheck", "travis-worker-fetch-secrets"} <= set(
        listing
    )
    assert "pip" not in listing
    assert run(container, "id", "-u") == "10001"
    # The worker's own user can write its spool (a host directory is mounted there).
    assert run(container, "stat", "-c", "%u", "/var/spool/travis-worker") == "10001"


def test_the_worker_is_healthy_and_drains_on_sigint(container: str, amqp_uri: str) -> None:
    # The control endpoint on a port of its own: chroot isolation shares the host network.
    script = (
        "travis-worker --provider-name fake --build-api-uri http://127.0.0.1:1/script "
        f"--queue-name builds.image-test-$$ --amqp-uri {amqp_uri} 2>/tmp/worker.log & "
        "pid=$!; healthy=no; "
        "for i in $(seq 60); do "
        "  if travis-worker-healthcheck 2>/dev/null; then healthy=yes; break; fi; sleep 0.5; "
        "done; "
        'kill -INT "$pid"; wait "$pid"; echo "healthy=$healthy exit=$?"'
    )
    port = 16000 + os.getpid() % 1000
    output = run(
        container,
        "sh",
        "-c",
        script,
        env={"TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR": f"0.0.0.0:{port}"},
    )
    assert output.splitlines()[-1] == "healthy=yes exit=0"
