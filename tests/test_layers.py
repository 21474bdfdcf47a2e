"""The rooms of the README's architecture and their floors: a module imports only rooms on
lower floors (or its own room), and each outside system's library is imported only by the
room that speaks to it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "travis_worker"

# Bottom to top. A room is a top-level module or package of travis_worker.
FLOORS: list[set[str]] = [
    {"__init__", "buildinfo", "compat", "errors"},
    {"util"},
    {"job", "config", "logs", "metrics"},
    {"contracts"},
    {"sources", "buildscript", "backends", "telemetry", "profiling"},
    {"processor", "cleanup"},
    {"remote"},
    {"app"},
    {"cli"},
    {"__main__"},
]
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
# From the floor below, the pipeline sees only the backend contract and cancellations.
PROCESSOR_MAY_USE = {"travis_worker.backends.base", "travis_worker.sources.cancellation"}
# Each library of an outside system, and the only places that may import it.
LIBRARY_ROOMS = {
    "aio_pika": ("travis_worker/sources/amqp/",),
    "asyncssh": ("travis_worker/backends/ssh.py",),
    "google.cloud": ("travis_worker/backends/google/", "travis_worker/telemetry/"),
    "redis": ("travis_worker/backends/google/ratelimit.py",),
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def room_of(path: Path) -> str:
    first = path.relative_to(PACKAGE).parts[0]
    return first.removesuffix(".py")


def imported(path: Path) -> set[str]:
    """Every module `path` imports; `from travis_worker import metrics` counts as
    `travis_worker.metrics`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "travis_worker":
                for alias in node.names:
                    if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir():
                        found.add(f"travis_worker.{alias.name}")
    return found


def target_room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.mark.timeout(10)
def test_every_room_has_a_floor():
    rooms = {room_of(path) for path in modules()}
    assert rooms <= set(FLOOR), f"rooms without a floor: {rooms - set(FLOOR)}"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_or_stay_in_the_room(path: Path):
    room = room_of(path)
    upward = sorted(
        module
        for module in imported(path)
        if module.split(".")[0] == "travis_worker"
        and target_room(module) != room
        and FLOOR[target_room(module)] >= FLOOR[room]
    )
    assert upward == [], f"{room} (floor {FLOOR[room]}) imports upwards or sideways"


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE / "processor").rglob("*.py")),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_the_pipeline_sees_only_contracts_from_below(path: Path):
    below = {
        module
        for module in imported(path)
        if module.split(".")[0] == "travis_worker"
        and FLOOR[target_room(module)] == FLOOR["sources"]
    }
    assert below <= PROCESSOR_MAY_USE


@pytest.mark.timeout(10)
@pytest.mark.parametrize("library", sorted(LIBRARY_ROOMS))
def test_each_outside_library_stays_in_its_room(library: str):
    allowed = LIBRARY_ROOMS[library]
    users = {
        str(path.relative_to(PACKAGE.parent))
        for path in modules()
        if any(module == library or module.startswith(f"{library}.") for module in imported(path))
    }
    strays = {user for user in users if not user.startswith(allowed)}
    assert strays == set()
