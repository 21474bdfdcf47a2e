"""The worker's error tree. The type of an error decides the fate of the job.

    WorkerError
    ├── ConfigError              invalid settings; the process refuses to start
    ├── BrokerError              the broker never answered at start-up
    ├── PayloadError             a delivery that cannot be a job; rejected, never requeued
    ├── JobAbortError            user-facing: the message goes to the job log, job `errored`
    ├── BuildScriptError         the build API failed; job `errored` with the generic text
    ├── LogClosedError           a write after the job log was closed
    ├── AckError                 the final state went out, the acknowledgement did not
    └── BackendError             infrastructure trouble; the job is requeued (`reset`)
        ├── InstanceStartError   the VM could not be started in time
        │   └── CapacityError    the cloud has no room: quota used up, rate limited
        ├── ScriptUploadError    the script could not be placed on the VM
        │   └── StaleVMError     the VM already held a build script
        └── InstanceLostError    the VM went away mid-script (preempted, SSH dropped)

Third-party exceptions are translated at the boundary (`raise BackendError(...) from exc`),
so nothing above `backends/` catches google, asyncssh or aio-pika types.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base of every error the worker raises on purpose."""


class ConfigError(WorkerError):
    """A setting has an invalid value. The message names the variable and the value."""


class BrokerError(WorkerError):
    """The message broker could not be reached when the worker started."""


class PayloadError(WorkerError):
    """A job delivery is unusable: unparsable JSON, a wrong type, or no job id."""


class JobAbortError(WorkerError):
    """The job cannot run because of its own configuration.

    `user_message` is written to the job log verbatim before the job finishes `errored`.
    """

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class BuildScriptError(WorkerError):
    """The build API did not return a script.

    `recoverable` is False for 4xx answers: retrying cannot help, so the job errors at once.
    """

    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


class LogClosedError(WorkerError):
    """A write to a job log that was already closed."""


class AckError(WorkerError):
    """The job's final state was published but its delivery could not be acknowledged
    (the channel died). The broker redelivers it and the source drops that redelivery."""


class BackendError(WorkerError):
    """An infrastructure failure. The job did not get a fair run and is requeued."""


class InstanceStartError(BackendError):
    """The instance could not be created or did not become reachable."""


class CapacityError(InstanceStartError):
    """The cloud refused the instance for want of capacity (`reason`: `quota` or
    `rate_limit`): every job would fail the same way, so the worker pauses taking jobs
    until the provider says it has capacity again."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ScriptUploadError(BackendError):
    """The build script could not be uploaded to the instance."""


class StaleVMError(ScriptUploadError):
    """The instance already held a `build.sh`: it is not fresh and must not be reused."""

    def __init__(self) -> None:
        super().__init__("previous build artifacts found on stale vm")


class InstanceLostError(BackendError):
    """The instance went away while the script ran (preemption, dropped connection)."""
