"""deploy/terraform/templates/stop-container.sh, the worker unit's ExecStop.

The "container" is a real process that reacts to signals like the worker: SIGINT drains
(exits after a while), SIGTERM stops at once. Stand-ins for `docker` and `systemctl` map
`docker kill/inspect/wait` onto that process, so the script's signals and timing are real.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.deploy.support import TF_DIR

SCRIPT = TF_DIR / "templates" / "stop-container.sh"

CONTAINER = textwrap.dedent(
    """
    import signal, sys, time
    log, drain_seconds, obey_term = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "yes"
    deadline = None
    def on_int(*_):
        global deadline
        open(log, "a").write("SIGINT\\n")
        deadline = time.monotonic() + drain_seconds
    def on_term(*_):
        open(log, "a").write("SIGTERM\\n")
        if obey_term:
            sys.exit(0)
    signal.signal(signal.SIGINT, on_int)
    signal.signal(signal.SIGTERM, on_term)
    open(log, "a").write("started\\n")
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.05)
    """
)

FAKE_DOCKER = textwrap.dedent(
    """\
    #!{python}
    import os, sys, time
    pid = int(open(os.environ["CONTAINER_PID_FILE"]).read())
    def alive():
        try:
            state = open(f"/proc/{{pid}}/stat").read().split(")")[-1].split()[0]
        except OSError:
            return False
        return state != "Z"
    command = sys.argv[1]
    open(os.environ["DOCKER_CALLS"], "a").write(" ".join(sys.argv[1:]) + "\\n")
    if command == "inspect":
        if not alive():
            sys.exit(1)
        print("true")
    elif command == "kill":
        signal_name = next(a for a in sys.argv if a.startswith("--signal=")).split("=")[1]
        if alive():
            import signal
            os.kill(pid, getattr(signal, signal_name))
    elif command == "wait":
        while alive():
            time.sleep(0.05)
        print(0)
    """
)


class Host:
    """A fake host: one running "container", docker and systemctl stand-ins."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.signals = tmp_path / "signals.log"
        self.docker_calls = tmp_path / "docker.log"
        self.docker = tmp_path / "docker"
        self.docker.write_text(FAKE_DOCKER.format(python=sys.executable))
        self.docker.chmod(0o755)
        self.systemctl = tmp_path / "systemctl"
        self.container: asyncio.subprocess.Process | None = None

    async def start_container(self, drain_seconds: float, obey_term: bool = True) -> None:
        self.container = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CONTAINER, str(self.signals), str(drain_seconds),
            "yes" if obey_term else "no",
        )  # fmt: skip
        (self.tmp_path / "pid").write_text(str(self.container.pid))
        await eventually(lambda: self.signals.exists())

    def system_state(self, state: str) -> None:
        self.systemctl.write_text(f"#!/bin/sh\necho {state}\n")
        self.systemctl.chmod(0o755)

    async def stop(self, drain: int, shutdown_drain: int) -> tuple[int, float]:
        env = {
            **os.environ,
            "DOCKER": str(self.docker),
            "SYSTEMCTL": str(self.systemctl),
            "REQUEUE_SECONDS": "1",
            "CONTAINER_PID_FILE": str(self.tmp_path / "pid"),
            "DOCKER_CALLS": str(self.docker_calls),
        }
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            "sh", str(SCRIPT), "travis-worker", str(drain), str(shutdown_drain), env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        code = await asyncio.wait_for(process.wait(), 30)
        return code, time.monotonic() - started

    def received(self) -> list[str]:
        return [line for line in self.signals.read_text().splitlines() if line != "started"]

    def kills(self) -> list[str]:
        lines = self.docker_calls.read_text().splitlines() if self.docker_calls.exists() else []
        return [line.split()[1] for line in lines if line.startswith("kill")]


async def eventually(check: Callable[[], bool | Awaitable[bool]], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    fake = Host(tmp_path)
    fake.system_state("running")
    try:
        yield fake
    finally:
        if fake.container is not None and fake.container.returncode is None:
            fake.container.kill()
            await fake.container.wait()


async def test_a_drain_that_finishes_in_time_is_all_it_takes(host: Host) -> None:
    await host.start_container(drain_seconds=0.5)

    code, elapsed = await host.stop(drain=10, shutdown_drain=1)

    assert code == 0
    assert host.received() == ["SIGINT"]
    assert host.kills() == ["--signal=SIGINT"]
    assert elapsed < 5


async def test_a_drain_that_overruns_is_cut_short_with_sigterm(host: Host) -> None:
    await host.start_container(drain_seconds=60)

    code, elapsed = await host.stop(drain=1, shutdown_drain=1)

    assert code == 0
    assert host.received() == ["SIGINT", "SIGTERM"]
    assert 1 <= elapsed < 5


async def test_host_shutdown_uses_the_short_budget(host: Host) -> None:
    host.system_state("stopping")
    await host.start_container(drain_seconds=60)

    code, elapsed = await host.stop(drain=600, shutdown_drain=1)

    assert (code, host.received()) == (0, ["SIGINT", "SIGTERM"])
    assert elapsed < 5, "the long drain budget was used during shutdown"


async def test_a_container_ignoring_sigterm_is_killed(host: Host) -> None:
    await host.start_container(drain_seconds=60, obey_term=False)

    code, _ = await host.stop(drain=1, shutdown_drain=1)

    assert code == 0
    assert host.kills() == ["--signal=SIGINT", "--signal=SIGTERM", "--signal=SIGKILL"]
    assert host.container is not None
    assert await asyncio.wait_for(host.container.wait(), 5) == -9


async def test_a_zero_budget_skips_the_drain(host: Host) -> None:
    await host.start_container(drain_seconds=60)

    code, _ = await host.stop(drain=0, shutdown_drain=0)

    assert (code, host.received()) == (0, ["SIGTERM"])


async def test_nothing_to_do_when_the_container_is_not_running(host: Host) -> None:
    await host.start_container(drain_seconds=0)
    assert host.container is not None
    host.container.send_signal(2)
    await host.container.wait()

    code, _ = await host.stop(drain=10, shutdown_drain=1)

    assert code == 0
    assert host.kills() == []
