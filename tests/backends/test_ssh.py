"""ssh.py against a real OpenSSH sshd "VM"."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.backends.conftest import Recorder
from tests.fakes.sshvm import random_loopback_address
from travis_worker.backends import ssh
from travis_worker.errors import InstanceLostError, StaleVMError

pytestmark = pytest.mark.usefixtures("root")


@pytest.fixture
async def vm(vm_host):
    key = ssh.SshKey.generate()
    machine = vm_host.create()
    machine.authorize(key.authorized_key)
    await machine.boot()
    return machine, key


async def test_upload_then_run_with_a_pty(vm):
    machine, key = vm
    connection = await ssh.connect(machine.address, key, timeout=5)
    await ssh.upload(connection, "build.sh", b"echo $TERM $(stty size) $(tty)\nexit 7\n")
    record = Recorder()
    assert await ssh.run(connection, "bash ~/build.sh", record) == 7
    assert record.output.startswith(b"xterm 40 80 /dev/pts/")
    assert (machine.home / "build.sh").read_bytes().startswith(b"echo $TERM")
    with pytest.raises(StaleVMError):
        await ssh.upload(connection, "build.sh", b"again\n")
    connection.close()


async def test_a_signal_counts_as_128_plus_its_number(vm):
    machine, key = vm
    connection = await ssh.connect(machine.address, key, timeout=5)
    assert await ssh.run(connection, "kill -TERM $$", Recorder()) == 128 + 15
    connection.close()


async def test_rsa_keys_work_too(vm_host):
    key = ssh.SshKey.generate("rsa")
    assert key.authorized_key.startswith("ssh-rsa ")
    machine = vm_host.create()
    machine.authorize(key.authorized_key)
    await machine.boot()
    connection = await ssh.connect(machine.address, key, timeout=5)
    assert await ssh.run(connection, "true", Recorder()) == 0
    connection.close()


async def test_connect_errors_are_quick_and_ours(vm):
    machine, _ = vm
    started = time.monotonic()
    with pytest.raises(ssh.SshConnectError, match="refused"):
        await ssh.connect(random_loopback_address(), ssh.SshKey.generate(), timeout=5)
    with pytest.raises(ssh.SshConnectError):  # sshd answers, but not to this key
        await ssh.connect(machine.address, ssh.SshKey.generate(), timeout=5)
    assert time.monotonic() - started < 3


async def test_lost_connection_mid_run(vm):
    machine, key = vm
    connection = await ssh.connect(machine.address, key, timeout=5)
    record = Recorder()
    run = asyncio.ensure_future(ssh.run(connection, "echo go; sleep 30", record))
    while b"go" not in record.output:
        await asyncio.sleep(0.02)
    await machine.power_off()
    with pytest.raises(InstanceLostError):
        await run


async def test_a_stuck_attempt_does_not_hold_up_the_next_one(vm_host):
    """An attempt that hangs (here: a TCP peer that never speaks SSH; on GCE: SYNs to a
    guest whose network is not up yet) must not delay noticing the sshd that comes up."""
    key = ssh.SshKey.generate()
    machine = vm_host.create()
    machine.authorize(key.authorized_key)
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, machine.address, 22)
    retries = 0

    async def on_retry() -> None:
        nonlocal retries
        retries += 1
        if held and not machine.running:
            silent.close()
            await machine.boot()

    started = time.monotonic()
    connection = await ssh.connect_when_ready(
        machine.address,
        key,
        dial_timeout=20,
        give_up_after=10,
        pauses=iter([0.2] * 100),
        on_retry=on_retry,
    )
    assert time.monotonic() - started < 3
    connection.close()
    for writer in held:
        writer.close()
