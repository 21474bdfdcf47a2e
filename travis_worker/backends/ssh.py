"""SSH to job VMs with asyncssh: keys, connecting, uploading the build script, running it.

Errors leave this module as our own types (ARCHITECTURE habit 3): SshConnectError when
no session could be opened, StaleVMError / ScriptUploadError from `upload`, and
InstanceLostError from `run` when the connection died before the script ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import asyncssh

from travis_worker.contracts import Output
from travis_worker.errors import (
    BackendError,
    InstanceLostError,
    ScriptUploadError,
    StaleVMError,
)

USER = "travis"
# A VM that vanishes without a TCP reset (preempted, network gone) is noticed after
# KEEPALIVE_INTERVAL × KEEPALIVE_COUNT of silence instead of after the hard timeout.
KEEPALIVE_INTERVAL = 15.0
KEEPALIVE_COUNT = 4
# travis-build output is written for an 80×40 xterm; the Go worker asks for the same PTY.
TERM_TYPE = "xterm"
TERM_SIZE = (80, 40)
READ_SIZE = 64 * 1024
MAX_PROBES = 4

Connection = asyncssh.SSHClientConnection


class SshConnectError(BackendError):
    """No SSH session could be opened (refused, timed out, authentication failed)."""


@dataclass(frozen=True)
class SshKey:
    """A key pair made by the worker: the private half logs in, the public half goes into
    each VM's `~travis/.ssh/authorized_keys` via the startup script."""

    private: asyncssh.SSHKey
    authorized_key: str
    """One authorized_keys line, ending in a newline (`ssh-ed25519 AAAA…\\n`)."""

    @classmethod
    def generate(cls, kind: Literal["ed25519", "rsa"] = "ed25519") -> SshKey:
        # ed25519 by default: fast to make and to check. RSA (2048 bits, as travis-ci/worker)
        # for images whose sshd predates ed25519.
        if kind == "rsa":
            private = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
        else:
            private = asyncssh.generate_private_key("ssh-ed25519")
        line = private.export_public_key("openssh").decode().strip()
        return cls(private=private, authorized_key=f"{line}\n")


async def connect(host: str, key: SshKey, *, timeout: float, port: int = 22) -> Connection:
    """Open an SSH connection as `travis` within `timeout` seconds (TCP and handshake).

    The host key is not checked: each VM is new, and its address was just handed out by
    the cloud API for the instance this worker created.
    """
    try:
        async with asyncio.timeout(timeout):
            return await asyncssh.connect(
                host,
                port,
                username=USER,
                client_keys=[key.private],
                known_hosts=None,
                agent_path=None,
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=KEEPALIVE_COUNT,
            )
    except TimeoutError as exc:
        raise SshConnectError(f"ssh {USER}@{host}: timed out after {timeout:g}s") from exc
    except (OSError, asyncssh.Error) as exc:
        raise SshConnectError(f"ssh {USER}@{host}: {describe(exc)}") from exc


async def connect_when_ready(
    host: str,
    key: SshKey,
    *,
    dial_timeout: float,
    give_up_after: float,
    pauses: Iterator[float],
    on_retry: Callable[[], Awaitable[None]] | None = None,
) -> Connection:
    """Connect to a VM that is still booting, as soon as its sshd takes our key.

    A new attempt starts after each pause even while earlier ones still wait for an
    answer (at most MAX_PROBES at once): before the guest's network is up, a SYN gets no
    reply and the kernel resends it only after 1 s, then 3 s, so one attempt at a time
    would notice a ready VM seconds late. Raises the last SshConnectError after
    `give_up_after` seconds.
    """
    started = time.monotonic()
    probes: set[asyncio.Task[Connection]] = set()
    last_error: SshConnectError | None = None
    try:
        while True:
            if len(probes) < MAX_PROBES:
                probes.add(asyncio.ensure_future(connect(host, key, timeout=dial_timeout)))
            next_probe = time.monotonic() + next(pauses)
            while (remaining := next_probe - time.monotonic()) > 0:
                if not probes:
                    await asyncio.sleep(remaining)
                    break
                done, _ = await asyncio.wait(
                    probes, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                for probe in done:
                    probes.discard(probe)
                    error = probe.exception()
                    if error is None:
                        return probe.result()
                    if not isinstance(error, SshConnectError):
                        raise error
                    last_error = error
            if time.monotonic() - started > give_up_after:
                raise last_error or SshConnectError(f"ssh {USER}@{host}: no answer")
            if on_retry is not None:
                await on_retry()
    finally:
        for probe in probes:
            probe.cancel()
        for result in await asyncio.gather(*probes, return_exceptions=True):
            if isinstance(result, asyncssh.SSHClientConnection):
                result.close()


def describe(exc: BaseException) -> str:
    """A one-line reason for an asyncssh or socket error."""
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # "Connection refused", not asyncio's wording
    return str(exc) or type(exc).__name__


async def upload(connection: Connection, path: str, data: bytes) -> None:
    """Write `data` to `path` (relative to the home directory) over SFTP.

    A file already there means the VM ran a job before: StaleVMError, never overwritten.
    """
    try:
        async with connection.start_sftp_client() as sftp:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.lstat(path)
                raise StaleVMError()
            async with sftp.open(path, "wb") as remote:
                await remote.write(data)
    except (OSError, asyncssh.Error) as exc:
        raise ScriptUploadError(f"couldn't upload {path}: {describe(exc)}") from exc


async def run(connection: Connection, command: str, output: Output) -> int:
    """Run `command` on a PTY, writing its output into `output` as it arrives; return its
    exit status. Cancelling the call closes the session, which hangs up the command.

    Raises InstanceLostError when the connection ends before the command reported an exit
    status: the script did not complete, so the job deserves another run.
    """
    try:
        process = await connection.create_process(
            command, term_type=TERM_TYPE, term_size=TERM_SIZE, encoding=None
        )
    except (OSError, asyncssh.Error) as exc:
        raise InstanceLostError(f"couldn't start {command!r}: {describe(exc)}") from exc
    try:
        while chunk := await process.stdout.read(READ_SIZE):
            await output.write(chunk)
        await process.wait_closed()
    except (OSError, asyncssh.Error) as exc:
        reason = describe(exc)
        raise InstanceLostError(f"connection lost while running the script: {reason}") from exc
    finally:
        process.close()
    return exit_status(process)


def exit_status(process: Any) -> int:
    """The remote exit status. A command killed by a signal counts 128 + the signal's
    number, as in a shell (and in Go's ssh package); a session that closed without any
    status means the connection was lost."""
    if process.exit_status is not None and process.exit_status >= 0:
        return int(process.exit_status)
    if process.exit_signal is not None:
        name = str(process.exit_signal[0])
        number = getattr(signal.Signals, f"SIG{name}", None)
        return 128 + (int(number) if number is not None else 0)
    raise InstanceLostError("the session ended without an exit status")
