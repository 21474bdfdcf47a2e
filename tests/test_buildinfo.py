"""The build's version, revision and date: from the stamp a build writes into the package,
else from the git checkout the package runs from; never travis-ci/worker's `?`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import need
from travis_worker.buildinfo import (
    UNKNOWN,
    build_info,
    package_metadata,
    read_build_info,
    stamp_for_build,
    write_stamp,
)

REPO = Path(__file__).resolve().parents[1]
COMMIT_DATE = "2024-05-01T14:00:00+02:00"


def git(checkout: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_COMMITTER_DATE": COMMIT_DATE,
        "GIT_AUTHOR_DATE": COMMIT_DATE,
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    found = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, env=env, check=True
    )
    return found.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout holding a `travis_worker` package directory, one commit deep."""
    need(shutil.which("git") is not None, "git (apt-get install git)")
    (tmp_path / "travis_worker").mkdir()
    (tmp_path / "travis_worker" / "__init__.py").write_text("")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_a_stamped_package_shows_its_stamp(tmp_path: Path) -> None:
    write_stamp(tmp_path, {"revision": "0123abc", "generated": "2024-01-02T03:04:05Z"})
    info = read_build_info(tmp_path)
    version, source = package_metadata()
    assert info.version == version != UNKNOWN
    assert (info.revision, info.generated) == ("0123abc", "2024-01-02T03:04:05Z")
    assert info.revision_url == f"{source}/tree/0123abc"
    assert info.version_string == f"v{version}"


def test_a_stamp_may_name_another_source(tmp_path: Path) -> None:
    write_stamp(tmp_path, {"revision": "beef", "source_url": "https://git.example.com/w/"})
    assert read_build_info(tmp_path).revision_url == "https://git.example.com/w/tree/beef"


def test_a_checkout_shows_its_head_and_commit_date(checkout: Path) -> None:
    info = read_build_info(checkout / "travis_worker")
    assert info.revision == git(checkout, "rev-parse", "HEAD")
    assert info.generated == "2024-05-01T12:00:00Z"


def test_without_stamp_or_checkout_it_says_unknown(tmp_path: Path) -> None:
    (tmp_path / "travis_worker").mkdir()
    info = read_build_info(tmp_path / "travis_worker")
    assert (info.revision, info.generated) == (UNKNOWN, UNKNOWN)
    assert info.revision_url == package_metadata()[1]
    assert "?" not in (info.revision, info.generated, info.revision_url)


def test_a_build_stamps_its_variables_else_git(checkout: Path, tmp_path: Path) -> None:
    head = git(checkout, "rev-parse", "HEAD")
    assert stamp_for_build(checkout, {}) == {"revision": head, "generated": "2024-05-01T12:00:00Z"}
    given = {"TRAVIS_WORKER_BUILD_REVISION": "0123abc", "TRAVIS_WORKER_BUILD_DATE": "2024-06-01"}
    assert stamp_for_build(checkout, given) == {"revision": "0123abc", "generated": "2024-06-01"}
    elsewhere = stamp_for_build(tmp_path / "travis_worker", {})
    assert set(elsewhere) == {"generated"}  # the build's own time, and no revision


def test_this_process_knows_the_checkout_it_runs_from() -> None:
    need(shutil.which("git") is not None, "git (apt-get install git)")
    need((REPO / ".git").exists(), "the tests run from a git checkout")
    info = build_info()
    assert info.revision == git(REPO, "rev-parse", "HEAD")
    assert info.revision_url.endswith(f"/tree/{info.revision}")


@pytest.mark.timeout(300)
def test_a_built_wheel_carries_the_stamp(tmp_path: Path) -> None:
    need(shutil.which("git") is not None, "git (apt-get install git)")
    need((REPO / ".git").exists(), "the tests run from a git checkout")
    # The working tree's files (not the last commit's) in a checkout of their own.
    source = tmp_path / "source"
    for name in git(REPO, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    git(source, "init", "-q")
    git(source, "add", ".")
    git(source, "commit", "-q", "-m", "the working tree")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source, capture_output=True, timeout=280, check=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("travis_worker-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        stamp = json.loads(archive.read("travis_worker/_build.json"))
    assert stamp["revision"] == git(source, "rev-parse", "HEAD")
    assert stamp["generated"].endswith("Z")
