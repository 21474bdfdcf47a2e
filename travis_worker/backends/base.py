"""The contract between the pipeline and a compute backend.

A backend is one file with a Provider (one per worker process) whose `start()` returns an
Instance (one per job). Errors follow `travis_worker.errors`: BackendError subclasses requeue
the job, JobAbortError errors it with a message for the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Protocol

# Output is re-exported: backends write script output into it.
from travis_worker.contracts import Output as Output
from travis_worker.job import StartAttributes


class ProgressState(Enum):
    SUCCESS = "✓ "
    FAILURE = "✗ "
    NEUTRAL = "• "


@dataclass(frozen=True)
class ProgressEntry:
    """One line of boot progress, rendered into the job log with `--progress-type text`.

    `state=None` is a raw entry (the message alone, e.g. a polling dot). `continues` leaves
    the line open for raw entries; `interrupts` starts on a fresh line.
    """

    message: str
    state: ProgressState | None = ProgressState.NEUTRAL
    continues: bool = False
    interrupts: bool = False

    def render(self) -> str:
        if self.state is None:
            return self.message
        head = ("\r\n" if self.interrupts else "") + self.state.value
        tail = "" if self.continues else "\r\n"
        return f"{head}{self.message}{tail}"


class Progress(Protocol):
    """Receives boot progress. The pipeline passes a no-op one unless progress is enabled."""

    async def __call__(self, entry: ProgressEntry) -> None: ...


async def no_progress(entry: ProgressEntry) -> None:
    """A Progress that drops every entry."""


@dataclass(frozen=True)
class ProviderContext:
    """What the worker tells a provider about itself at construction."""

    hostname: str
    """The worker host name (labels, instance descriptions)."""

    config: Mapping[str, str]
    """The provider's own keys (`TRAVIS_WORKER_<PROVIDER>_<KEY>` with the prefix removed)."""


class Instance(Protocol):
    """One job's machine. Created by `Provider.start`, deleted by `stop`."""

    @property
    def id(self) -> str:
        """Backend identifier, reported as `meta.instance_id` (GCE: the instance name)."""
        ...

    @property
    def image_name(self) -> str: ...

    @property
    def zone(self) -> str:
        """Where the instance runs (a GCE zone), or "": a label of the boot-phase metrics."""
        ...

    @property
    def startup_duration(self) -> timedelta:
        """Time from the start request until the instance could take an upload."""
        ...

    @property
    def supports_progress(self) -> bool: ...

    async def upload_script(self, script: bytes, progress: Progress) -> None:
        """Place the build script on the instance. Raises ScriptUploadError (StaleVMError
        when a script is already there)."""
        ...

    async def run_script(self, output: Output) -> int:
        """Run the uploaded script, streaming its output into `output` as it comes, and
        return its exit code. Raises InstanceLostError (or another BackendError) when the
        script could not run to its end. Cancelling the call stops the script."""
        ...

    async def stop(self) -> None:
        """Stop and delete the instance. Safe to call more than once."""
        ...


class Provider(Protocol):
    """A compute backend."""

    @property
    def supports_progress(self) -> bool: ...

    async def setup(self) -> None:
        """Once, before the first job: resolve and check everything static."""
        ...

    async def has_capacity(self) -> bool:
        """Whether a start could get an instance now. Asked while the worker is paused after
        a CapacityError; a backend without quotas or rate limits answers True."""
        ...

    async def start(self, attrs: StartAttributes, progress: Progress) -> Instance:
        """Create an instance for one job. Returns only when it accepts an upload.

        Raises InstanceStartError (requeue; CapacityError when the cloud has no room) or
        JobAbortError (errored, message to the user).
        The caller bounds the call with `startup-timeout`.
        """
        ...

    async def close(self) -> None:
        """Release clients and connections at shutdown."""
        ...
