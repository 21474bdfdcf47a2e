"""The rooms of ARCHITECTURE.md: a module that speaks to one outside system (SSH, a rate
limit) imports only the vocabulary below it, never the rooms built on top of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "travis_worker"
# The rooms that sit above the "one outside system each" modules.
UPPER_ROOMS = ("backends", "processor", "amqp", "remote", "cleanup", "app", "cli")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.timeout(10)
@pytest.mark.parametrize("module", ["ssh.py", "ratelimit.py"])
def test_outside_system_modules_do_not_import_upwards(module: str) -> None:
    upward = {
        name
        for name in imported_modules(PACKAGE / module)
        for room in UPPER_ROOMS
        if name == f"travis_worker.{room}" or name.startswith(f"travis_worker.{room}.")
    }
    assert upward == set()
