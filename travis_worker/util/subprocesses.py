"""Running a helper program (hooks, the payload filter) with a time limit that is kept:
a program that runs over is killed and reaped, never left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from travis_worker.errors import WorkerError


class HelperFailed(WorkerError):
    """The program could not start, or ran over its time limit (and was killed)."""


@dataclass(frozen=True)
class Finished:
    exit_code: int
    stdout: bytes
    stderr: bytes


async def run_program(
    argv: Sequence[str], *, stdin: bytes | None = None, limit: float, merge_stderr: bool = False
) -> Finished:
    """Run `argv` (no shell), feed it `stdin`, and collect its output within `limit` seconds."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise HelperFailed(f"couldn't start {argv[0]!r}: {exc.strerror or exc}") from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise HelperFailed(f"{argv[0]!r} ran over its {limit:g} s limit and was killed") from None
    assert process.returncode is not None
    return Finished(process.returncode, stdout, stderr or b"")
