"""Bringing one job VM up: insert (with zone fallback), wait for the insert operation, find
the VM's address, wait until SSH answers (travis-ci/worker `backend/gce.go`, with its progress
texts).

travis-ci/worker sleeps 15 s before the first operation check and polls every 3 s. Here the
operation is waited on with zoneOperations.wait, which GCE answers the moment it is DONE,
and SSH is probed at growing intervals from 0.1 s; the configured sleeps only cap those
intervals. That takes seconds off every job's start.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

from travis_worker import metrics
from travis_worker.backends.base import Progress, ProgressEntry, ProgressState
from travis_worker.backends.google.api import ComputeApi
from travis_worker.backends.google.api_types import (
    ComputeApiError,
    InstanceInfo,
    Operation,
    OperationError,
)
from travis_worker.backends.google.config import GceConfig
from travis_worker.backends.google.zones import ZoneChooser
from travis_worker.backends.ssh import Connection, SshConnectError, SshKey, connect_when_ready
from travis_worker.compat.durations import format_go_duration, truncate_to_millis
from travis_worker.errors import CapacityError, InstanceStartError

SUCCESS, FAILURE, NEUTRAL = ProgressState.SUCCESS, ProgressState.FAILURE, ProgressState.NEUTRAL
FIRST_PAUSE = 0.1
# SSH probes of a booting VM start at least this often (a refused connect costs nothing),
# so a VM is used within about half a second of its sshd coming up.
MAX_PROBE_PAUSE = timedelta(milliseconds=500)


class ZoneUnavailable(Exception):
    """The zone could not take the VM (no capacity, zonal quota); another zone may."""

    def __init__(self, zone: str, reason: str, hints: tuple[str, ...] = ()) -> None:
        super().__init__(f"{zone}: {reason}")
        self.hints = hints


def elapsed_text(since: float) -> str:
    """Seconds since `since` as Go prints a duration truncated to milliseconds."""
    return format_go_duration(truncate_to_millis(timedelta(seconds=time.monotonic() - since)))


def pauses(longest: timedelta) -> Iterator[float]:
    """0.1 s, 0.2 s, 0.4 s … capped at `longest` (at least 10 ms, never a busy loop)."""
    pause, cap = FIRST_PAUSE, max(longest.total_seconds(), 0.01)
    while True:
        yield min(pause, cap)
        pause *= 2


def observe(phase: str, zone: str, since: float) -> None:
    metrics.BOOT_PHASE.labels(phase=phase, backend="gce", zone=zone).observe(
        time.monotonic() - since
    )


def choose_ip(info: InstanceInfo, config: GceConfig) -> str:
    """The public IP when PUBLIC_IP and PUBLIC_IP_CONNECT are set and there is one, else the
    internal one."""
    if config.public_ip and config.public_ip_connect and info.nat_ip:
        return info.nat_ip
    if not info.network_ip:
        raise InstanceStartError("no IP address found")
    return info.network_ip


class VmBoot:
    """One VM on its way up. `zone` is where it may exist, so a failed start can delete it."""

    def __init__(self, api: ComputeApi, config: GceConfig, name: str, progress: Progress) -> None:
        self.api = api
        self.config = config
        self.name = name
        self.progress = progress
        self.zone: str | None = None
        self.started = time.monotonic()

    async def say(self, message: str, state: ProgressState | None = NEUTRAL, **flags: bool) -> None:
        await self.progress(ProgressEntry(message, state, **flags))

    async def insert(
        self,
        chooser: ZoneChooser,
        first_zone: str,
        *,
        pinned: bool,
        body_for: Callable[[str], Awaitable[dict[str, Any]]],
        usable: Callable[[str], bool],
    ) -> str:
        """Insert the VM and wait until GCE reports it created; returns its zone."""
        zone, tried = first_zone, set[str]()
        while True:
            tried.add(zone)
            self.zone = zone
            try:
                await self._insert_in(zone, await body_for(zone))
                return zone
            except ZoneUnavailable as exc:
                if pinned:
                    raise InstanceStartError(f"zone {exc} (the job asked for this zone)") from exc
                hints = exc.hints
                reason = str(exc)
            chooser.mark_failed(zone)
            following = chooser.next(tried, hints, usable)
            if following is None:
                raise InstanceStartError(f"no zone could take the instance; last: {reason}")
            await self.say(f"switching zones due to error, trying {following}")
            zone = following

    async def _insert_in(self, zone: str, body: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            # A fresh requestId per zone; the API layer resends the same one on retries,
            # so GCE never makes two VMs of one request.
            operation_name = await self.api.insert_instance(zone, body, str(uuid.uuid4()))
        except ComputeApiError as exc:
            await self.say("could not insert instance", FAILURE)
            if exc.out_of_capacity:
                raise ZoneUnavailable(zone, str(exc)) from exc
            if exc.rate_limited:
                raise CapacityError(f"rate limited: {exc}", reason="rate_limit") from exc
            if exc.quota_exceeded:
                raise CapacityError(f"quota exceeded: {exc}", reason="quota") from exc
            raise InstanceStartError(f"could not insert instance: {exc}") from exc
        observe("insert", zone, started)
        await self.say("inserted instance", SUCCESS)
        started = time.monotonic()
        operation = await self._wait(zone, operation_name)
        observe("operation_done", zone, started)
        if operation.errors:
            error = OperationError(operation.errors)
            await self.say("instance could not be inserted", FAILURE, interrupts=True)
            if error.zonal:
                raise ZoneUnavailable(zone, str(error), error.zones_available) from error
            if error.quota_exceeded:
                raise CapacityError(f"quota exceeded: {error}", reason="quota") from error
            raise InstanceStartError(f"instance could not be inserted: {error}") from error
        await self.say(
            f"instance is ready ({elapsed_text(self.started)})", SUCCESS, interrupts=True
        )

    async def _wait(self, zone: str, operation_name: str) -> Operation:
        await self.say("polling for instance insert completion...", continues=True)
        waits = pauses(self.config.boot_poll_sleep)
        while True:
            try:
                operation = await self.api.wait_operation(zone, operation_name)
            except ComputeApiError as exc:
                await self.say("could not check for instance insert", FAILURE, interrupts=True)
                raise InstanceStartError(f"could not check for instance insert: {exc}") from exc
            if operation.done:
                return operation
            if operation.errors:
                await self.say("error while waiting for instance insert", FAILURE, interrupts=True)
                error = OperationError(operation.errors)
                raise InstanceStartError(f"error while waiting for instance insert: {error}")
            await self.say(".", None)
            await asyncio.sleep(next(waits))

    async def locate(self, zone: str) -> InstanceInfo:
        try:
            return await self.api.get_instance(zone, self.name)
        except ComputeApiError as exc:
            raise InstanceStartError(f"could not look up the instance: {exc}") from exc

    async def reach(self, ip: str, key: SshKey) -> Connection:
        """Connect over SSH as soon as the VM's sshd answers and accepts our key.

        Gives up after UPLOAD_RETRIES × UPLOAD_RETRY_SLEEP (travis-ci/worker's upload
        retry budget), so a VM that never comes up fails the start well before the
        startup timeout would.
        """
        started = time.monotonic()
        config = self.config
        await self.say("waiting for ssh connectivity...", continues=True)
        try:
            connection = await connect_when_ready(
                ip,
                key,
                dial_timeout=config.ssh_dial_timeout.total_seconds(),
                give_up_after=config.upload_retries * config.upload_retry_sleep.total_seconds(),
                pauses=pauses(min(config.upload_retry_sleep, MAX_PROBE_PAUSE)),
                on_retry=lambda: self.say(".", None),
            )
        except SshConnectError as exc:
            await self.say("could not connect over ssh", FAILURE, interrupts=True)
            raise InstanceStartError(f"instance never accepted SSH: {exc}") from exc
        await self.say(
            f"ssh connectivity established ({elapsed_text(started)})", SUCCESS, interrupts=True
        )
        return connection
