"""Stamps the build into the package: `travis_worker/_build.json` with the git revision and
build date (see travis_worker/buildinfo.py). Everything else is in pyproject.toml."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent


def load_buildinfo() -> ModuleType:
    # By path: the package's dependencies are not installed while it is being built.
    spec = importlib.util.spec_from_file_location(
        "_travis_worker_buildinfo", SOURCE / "travis_worker" / "buildinfo.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


class StampedBuildPy(build_py):
    def run(self) -> None:
        super().run()
        # An editable install runs from the checkout and asks git itself: a stamp would go
        # stale with the next commit.
        if getattr(self, "editable_mode", False):
            return
        buildinfo = load_buildinfo()
        package_dir = Path(self.build_lib) / "travis_worker"
        buildinfo.write_stamp(package_dir, buildinfo.stamp_for_build(SOURCE, os.environ))


setup(cmdclass={"build_py": StampedBuildPy})
