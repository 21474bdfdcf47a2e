"""Running `travis-worker doctor` against the real broker, the build API fake and the Compute
fake: the settings of a healthy host, and the doctor's lines."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.build_api import BuildApiFake
from tests.fakes.compute_api import ComputeFake
from travis_worker.cli.doctor import run_doctor
from travis_worker.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    status: int
    lines: list[str]
    stderr: str = ""

    def starting(self, status: str) -> list[str]:
        return [line for line in self.lines if line.startswith(f"{status} ")]

    def line_about(self, text: str) -> str:
        found = [line for line in self.lines if text in line]
        assert len(found) == 1, f"one line about {text!r} in:\n" + "\n".join(self.lines)
        return found[0]

    @property
    def failures(self) -> list[str]:
        return self.starting("FAIL")


def healthy_env(
    amqp_uri: str, queue_name: str, build_api: BuildApiFake, compute: ComputeFake
) -> dict[str, str]:
    """The settings of a host whose every check passes."""
    return {
        "TRAVIS_WORKER_AMQP_URI": amqp_uri,
        "TRAVIS_WORKER_QUEUE_NAME": queue_name,
        "TRAVIS_WORKER_BUILD_API_URI": build_api.url,
        "TRAVIS_WORKER_PROVIDER_NAME": "gce",
        "TRAVIS_WORKER_GCE_API_ENDPOINT": compute.endpoint,
        "TRAVIS_WORKER_GCE_PROJECT_ID": compute.project,
        "TRAVIS_WORKER_GCE_ZONES": "us-central1-a,us-central1-b",
    }


async def doctor(env: dict[str, str], seconds: float = 5.0) -> Outcome:
    """The doctor in this process (so the fakes, served by this event loop, can answer)."""
    out = io.StringIO()
    status = await run_doctor(load_settings({}, env), env, out, seconds=seconds)
    return Outcome(status, out.getvalue().splitlines())


async def doctor_command(env: dict[str, str], *args: str) -> Outcome:
    """`python -m travis_worker doctor ARGS` with exactly `env` (plus PATH)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "travis_worker", "doctor", *args,
        cwd=ROOT, env={"PATH": os.environ["PATH"], "NO_GCE_CHECK": "True", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 45)
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode().splitlines(), stderr.decode())


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
