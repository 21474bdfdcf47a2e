"""One job VM on GCE once it answers SSH: upload the script, run it, delete the VM.

The SSH connection that proved the VM reachable at start is kept and reused for the upload
and the run, so no second handshake stands between "VM ready" and "script running".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from travis_worker.backends.base import Output, Progress, ProgressEntry, ProgressState
from travis_worker.backends.google.api import ComputeApi
from travis_worker.backends.google.api_types import ComputeApiError, OperationError
from travis_worker.backends.google.boot import observe, pauses
from travis_worker.backends.google.config import GceConfig
from travis_worker.backends.ssh import Connection, SshConnectError, SshKey, connect, run, upload
from travis_worker.errors import BackendError, InstanceLostError, ScriptUploadError, StaleVMError

logger = logging.getLogger(__name__)

SCRIPT_PATH = "build.sh"  # relative to the home directory of `travis`
RUN_COMMAND = "bash ~/build.sh"
# Deleting gets its own time, apart from the job's: a VM left behind costs money until the
# reaper or its maxRunDuration removes it.
DELETE_SECONDS = 300.0
DELETE_RETRY_PAUSE = 5.0


class Cleanups:
    """Background deletions that must outlive the job that started them (and its
    cancellation); the provider waits for them at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, what))
        return task

    def _finished(self, task: asyncio.Task[None], what: str) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "cleanup failed", extra={"fields": {"what": what, "err": str(task.exception())}}
            )

    async def wait(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


async def delete_vm(api: ComputeApi, config: GceConfig, zone: str, name: str) -> None:
    """Delete a VM and, unless SKIP_STOP_POLL, wait until GCE has deleted it."""
    async with asyncio.timeout(DELETE_SECONDS):
        while True:
            try:
                operation_name = await api.delete_instance(zone, name)
                break
            except ComputeApiError as exc:
                if not exc.retryable:
                    raise
                logger.warning("retrying instance deletion", extra={"fields": {"err": str(exc)}})
                await asyncio.sleep(DELETE_RETRY_PAUSE)
        if operation_name is None or config.skip_stop_poll:
            return
        waits = pauses(config.stop_poll_sleep)
        while True:
            operation = await api.wait_operation(zone, operation_name)
            if operation.done:
                break
            await asyncio.sleep(next(waits))
        if operation.errors:
            raise BackendError(f"instance deletion failed: {OperationError(operation.errors)}")


class GceInstance:
    """A running job VM (the `Instance` contract of `backends.base`)."""

    def __init__(
        self,
        *,
        api: ComputeApi,
        config: GceConfig,
        key: SshKey,
        cleanups: Cleanups,
        name: str,
        zone: str,
        numeric_id: int,
        ip: str,
        image_name: str,
        startup_duration: timedelta,
        connection: Connection,
    ) -> None:
        self._api = api
        self._config = config
        self._key = key
        self._cleanups = cleanups
        self.name = name
        self.zone = zone
        self.numeric_id = numeric_id
        self.ip = ip
        self._image_name = image_name
        self._startup_duration = startup_duration
        self._connection: Connection | None = connection
        self._stopping: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.name

    @property
    def image_name(self) -> str:
        return self._image_name

    @property
    def startup_duration(self) -> timedelta:
        return self._startup_duration

    @property
    def supports_progress(self) -> bool:
        return True

    async def _connected(self) -> Connection:
        if self._connection is None or self._connection.is_closed():
            timeout = self._config.ssh_dial_timeout.total_seconds()
            self._connection = await connect(self.ip, self._key, timeout=timeout)
        return self._connection

    def _forget_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def upload_script(self, script: bytes, progress: Progress) -> None:
        started = time.monotonic()
        failures = 0
        while True:
            try:
                await upload(await self._connected(), SCRIPT_PATH, script)
                break
            except StaleVMError:
                await progress(
                    ProgressEntry(
                        "existing script detected", ProgressState.FAILURE, interrupts=True
                    )
                )
                raise
            except (ScriptUploadError, SshConnectError) as exc:
                self._forget_connection()
                failures += 1
                if failures > self._config.upload_retries:
                    raise ScriptUploadError(f"couldn't upload the script: {exc}") from exc
                await progress(ProgressEntry(".", None))
                await asyncio.sleep(self._config.upload_retry_sleep.total_seconds())
        observe("upload", self.zone, started)
        await progress(ProgressEntry("uploaded script", ProgressState.SUCCESS))

    async def run_script(self, output: Output) -> int:
        try:
            connection = await self._connected()
        except SshConnectError as exc:
            raise InstanceLostError(f"couldn't reconnect to run the script: {exc}") from exc
        try:
            code = await run(connection, RUN_COMMAND, output)
        except InstanceLostError as exc:
            if await self._preempted():
                raise InstanceLostError("instance was preempted") from exc
            raise
        # A preempted VM's guest shuts down and hangs the script up: it ends "normally" by a
        # signal, but did not complete, and the job deserves another run.
        if await self._preempted():
            raise InstanceLostError("instance was preempted")
        return code

    async def _preempted(self) -> bool:
        if not self._config.preemptible:
            return False
        try:
            preempted = await self._api.was_preempted(self.numeric_id)
        except ComputeApiError as exc:
            logger.warning("couldn't check for preemption", extra={"fields": {"err": str(exc)}})
            return False
        if preempted:
            logger.warning("instance was preempted", extra={"fields": {"instance": self.name}})
        return preempted

    async def stop(self) -> None:
        if self._stopping is None:
            self._forget_connection()
            deletion = delete_vm(self._api, self._config, self.zone, self.name)
            self._stopping = self._cleanups.spawn(deletion, f"delete {self.name}")
        await asyncio.shield(self._stopping)
