"""Reading the deploy files: terraform parsed with python-hcl2, env files, known settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from travis_worker.backends import BACKENDS
from travis_worker.cleanup.config import ENV_KEYS as CLEANUP_ENV_KEYS
from travis_worker.config import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TF_DIR = DEPLOY / "terraform"
_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)


def tf_files() -> list[Path]:
    return sorted(TF_DIR.glob("*.tf"))


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle, serialization_options=_OPTIONS)
    return parsed


def blocks(kind: str) -> dict[str, Any]:
    """Every `variable`/`output`/`locals` entry of the module, by name."""
    found: dict[str, Any] = {}
    for path in tf_files():
        for entry in parse(path).get(kind, []):
            found.update(entry)
    return found


def resources(resource_type: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in tf_files():
        for entry in parse(path).get("resource", []):
            found.update(entry.get(resource_type, {}))
    return found


def env_file_keys(text: str) -> list[str]:
    """Keys of a docker --env-file: KEY=VALUE lines; `#` lines are comments."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [line.split("=", 1)[0] for line in lines]


def known_worker_keys() -> set[str]:
    """Every TRAVIS_WORKER_* variable the worker reads: general settings and GCE keys."""
    general = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    gce = {f"{ENV_PREFIX}GCE_{key}" for key in BACKENDS["gce"].help if "[" not in key}
    return general | gce


def is_known_worker_key(key: str) -> bool:
    # IMAGE_<X> keys are the env image selector's open-ended table (backends/google/config.py HELP).
    image_table = re.fullmatch(rf"{ENV_PREFIX}GCE_IMAGE_[A-Z0-9_]+", key) is not None
    return key in known_worker_keys() or image_table


def known_cleanup_keys() -> frozenset[str]:
    return CLEANUP_ENV_KEYS


def terraform() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        # Optional even in CI: terraform is not a Debian or PyPI package.
        pytest.skip("terraform binary not on PATH")
    return binary


def evaluate(tmp_path: Path, expression: str, variables: dict[str, Any]) -> Any:
    """Evaluate `expression` with terraform console against env.tf and variables.tf only
    (no provider is needed, so this works offline). Returns the decoded JSON value."""
    binary = terraform()
    module = tmp_path / "module"
    module.mkdir(exist_ok=True)
    for name in ("env.tf", "variables.tf", "worker.env"):
        shutil.copy(TF_DIR / name, module / name)
    shutil.copytree(TF_DIR / "templates", module / "templates", dirs_exist_ok=True)
    (module / "test.auto.tfvars.json").write_text(json.dumps(variables))
    env = {"PATH": "/usr/bin:/bin", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    init = subprocess.run(
        [binary, "init", "-backend=false", "-input=false"],
        cwd=module,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    console = subprocess.run(
        [binary, "console"],
        input=f"jsonencode(nonsensitive({expression}))\n",
        cwd=module,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert console.returncode == 0, console.stderr
    return json.loads(json.loads(console.stdout))
