"""What `travis-worker doctor` reports: one finding per line, each check under its own time
limit. Checks live next to the rooms they exercise (broker, build API, GCE); this vocabulary
sits low enough for all of them to use it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from travis_worker.errors import ConfigError


class Status(Enum):
    OK = "ok"
    FAIL = "FAIL"
    WARN = "warn"
    """Could not tell (an optional API out of reach); does not fail the run."""
    SKIP = "skip"
    """Does not apply (another provider, a check that failed before); does not fail the run."""


@dataclass(frozen=True)
class Finding:
    status: Status
    text: str

    def line(self) -> str:
        return f"{self.status.value:<5} {self.text}"


def ok(text: str) -> Finding:
    return Finding(Status.OK, text)


def fail(text: str) -> Finding:
    return Finding(Status.FAIL, text)


def warn(text: str) -> Finding:
    return Finding(Status.WARN, text)


def skip(text: str) -> Finding:
    return Finding(Status.SKIP, text)


@dataclass(frozen=True)
class Check:
    subject: str
    """What is checked, e.g. `broker amqp://guest:REDACTED@host/`: the line when it fails
    without saying more (time limit, invalid settings)."""
    run: Callable[[], Awaitable[list[Finding]]]


def settled(subject: str, finding: Finding) -> Check:
    """A check whose finding is known without asking anything (it does not apply, or its
    settings are missing)."""

    async def known() -> list[Finding]:
        return [finding]

    return Check(subject, known)


async def run_check(check: Check, seconds: float) -> list[Finding]:
    """The check's findings; a check that overruns `seconds` or breaks is one failure line,
    so a dead host or a surprise never stops the other checks."""
    try:
        async with asyncio.timeout(seconds):
            return await check.run()
    except TimeoutError:
        return [fail(f"{check.subject}: no answer within {seconds:g}s")]
    except ConfigError as exc:
        return [fail(f"{check.subject}: {exc}")]
    except Exception as exc:  # a doctor reports what it did not foresee instead of crashing
        return [fail(f"{check.subject}: unexpected {type(exc).__name__}: {exc}")]
