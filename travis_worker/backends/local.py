"""The `local` backend: the build script runs as a local process, one work dir per job.

For development, demos and smoke tests, not isolation: the script runs as the worker's user.
Better than travis-ci/worker's local backend on purpose: the exit code decides the state
(Go requeues every non-zero exit), the whole process group is killed on cancel or timeout
(Go leaves it running), the work dir is removed afterwards, and the script gets a clean
environment instead of the worker's (which holds broker credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from datetime import timedelta
from pathlib import Path

from travis_worker.backends.base import Output, Progress, ProviderContext
from travis_worker.errors import ScriptUploadError, StaleVMError
from travis_worker.job import StartAttributes

# A script gets this long to exit after SIGTERM before its process group is SIGKILLed.
KILL_GRACE_SECONDS = 5.0
READ_SIZE = 64 * 1024
DRAIN_SECONDS = 1.0


def script_environment(home: Path) -> dict[str, str]:
    """What a local build sees: enough to run bash, nothing of the worker's secrets."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "xterm",
        "USER": os.environ.get("USER", "travis"),
        "SHELL": "/bin/bash",
    }


class LocalInstance:
    image_name = ""
    zone = ""
    supports_progress = False
    startup_duration = timedelta(0)

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.script_path = work_dir / "build.sh"
        self.id = f"local:{self.script_path}"

    async def upload_script(self, script: bytes, progress: Progress) -> None:
        if self.script_path.exists():
            raise StaleVMError()
        try:
            self.script_path.write_bytes(script)
        except OSError as exc:
            raise ScriptUploadError(f"couldn't write {self.script_path}: {exc}") from exc

    async def run_script(self, output: Output) -> int:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(self.script_path),
            cwd=self.work_dir,
            env=script_environment(self.work_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, so we can kill all of it
        )
        reader = asyncio.ensure_future(_copy_output(process, output))
        try:
            code = await process.wait()
            # Background processes the script left behind may hold the pipe open: give the
            # output a moment to drain, then end the rest of the group.
            await asyncio.wait({reader}, timeout=DRAIN_SECONDS)
        finally:
            await _kill_group(process)
            reader.cancel()
        return code if code >= 0 else 128 - code

    async def stop(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self.work_dir, True)


async def _copy_output(process: asyncio.subprocess.Process, output: Output) -> None:
    assert process.stdout is not None
    while chunk := await process.stdout.read(READ_SIZE):
        await output.write(chunk)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the script's process group, then SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    if process.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class LocalProvider:
    supports_progress = False

    def __init__(self, scripts_dir: str) -> None:
        self._scripts_dir = scripts_dir

    async def setup(self) -> None:
        if self._scripts_dir:
            await asyncio.to_thread(Path(self._scripts_dir).mkdir, parents=True, exist_ok=True)

    async def has_capacity(self) -> bool:
        """A local process needs no cloud quota."""
        return True

    async def start(self, attrs: StartAttributes, progress: Progress) -> LocalInstance:
        work_dir = tempfile.mkdtemp(
            prefix=f"travis-job-{attrs.job_id}-", dir=self._scripts_dir or None
        )
        return LocalInstance(Path(work_dir))

    async def close(self) -> None:
        """Nothing to release."""


def create_provider(context: ProviderContext) -> LocalProvider:
    return LocalProvider(context.config.get("SCRIPTS_DIR", ""))
