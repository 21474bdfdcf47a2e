"""What this build of the worker is: version, git revision (and its link), build date.

travis-ci/worker stamps these into its binary at link time and shows `?` without them.
Python has no link step, so they come from, in this order:

1. `_build.json` in the package, written by setup.py when a wheel or the container image is
   built: from the TRAVIS_WORKER_BUILD_* variables (the Dockerfile's build args, since the
   image is built without `.git`), else from the git checkout being built;
2. the git checkout the package runs from (an editable install): HEAD and its commit date;
3. otherwise `unknown`.

The version is the package metadata's; the link is `<source URL>/tree/<revision>` as in
travis-ci/worker, the source URL being the metadata's `Source` project URL unless the build
names another. Everything is read once per process (`build_info()` is cached), so no job
ever waits for git.

This module uses the standard library only: setup.py loads it by path while building.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "travis-worker"
PACKAGE_DIR = Path(__file__).resolve().parent
STAMP_NAME = "_build.json"
UNKNOWN = "unknown"
# What the container image build passes on (Dockerfile build args → pip install's env).
BUILD_VARIABLES = {
    "revision": "TRAVIS_WORKER_BUILD_REVISION",
    "generated": "TRAVIS_WORKER_BUILD_DATE",
    "source_url": "TRAVIS_WORKER_SOURCE_URL",
}


@dataclass(frozen=True)
class BuildInfo:
    version: str
    """The package version, e.g. `0.1.0`."""
    revision: str
    """The full git commit id."""
    generated: str
    """When it was built (or committed, run from a checkout), RFC 3339 UTC."""
    source_url: str

    @property
    def version_string(self) -> str:
        """travis-ci/worker's VersionString: `v0.1.0`."""
        return f"v{self.version}"

    @property
    def revision_url(self) -> str:
        """travis-ci/worker's RevisionURLString: the commit on the source site."""
        if self.revision == UNKNOWN:
            return self.source_url
        return f"{self.source_url.rstrip('/')}/tree/{self.revision}"


def rfc3339_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_stamp(checkout: Path) -> dict[str, str]:
    """HEAD's commit id and date in `checkout` (its top level), or {} when it is none."""
    if not (checkout / ".git").exists():
        return {}
    try:
        found = subprocess.run(
            ["git", "-C", str(checkout), "log", "-1", "--format=%H %cI"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    revision, _, date = found.stdout.strip().partition(" ")
    if not revision or not date:
        return {}
    return {"revision": revision, "generated": rfc3339_utc(datetime.fromisoformat(date))}


def stamp_for_build(source_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """What a build writes into the package: the revision and date its variables name (a
    date defaults to now), else git's HEAD and commit date."""
    given = {key: environ[name] for key, name in BUILD_VARIABLES.items() if environ.get(name)}
    stamp = given if "revision" in given else {**git_stamp(source_dir), **given}
    stamp.setdefault("generated", rfc3339_utc(datetime.now(UTC)))
    return stamp


def write_stamp(package_dir: Path, stamp: Mapping[str, str]) -> Path:
    path = package_dir / STAMP_NAME
    path.write_text(json.dumps(dict(stamp), indent=2, sort_keys=True) + "\n")
    return path


def read_stamp(package_dir: Path) -> dict[str, str]:
    try:
        loaded = json.loads((package_dir / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(key): str(value) for key, value in loaded.items() if value}


def package_metadata() -> tuple[str, str]:
    """The installed distribution's version and `Source` project URL."""
    try:
        found = metadata.metadata(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN, ""
    urls = dict(
        entry.split(", ", 1) for entry in found.get_all("Project-URL") or [] if ", " in entry
    )
    return found["Version"] or UNKNOWN, urls.get("Source", "")


def read_build_info(package_dir: Path) -> BuildInfo:
    version, source_url = package_metadata()
    stamp = read_stamp(package_dir) or git_stamp(package_dir.parent)
    return BuildInfo(
        version=version,
        revision=stamp.get("revision", UNKNOWN),
        generated=stamp.get("generated", UNKNOWN),
        source_url=stamp.get("source_url", source_url),
    )


@cache
def build_info() -> BuildInfo:
    """This process's build, read once."""
    return read_build_info(PACKAGE_DIR)
