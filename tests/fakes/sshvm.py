"""Test "VMs": real OpenSSH sshd processes, each on its own loopback address.

Every address in 127.0.0.0/8 is local, so each VM gets its own `127.x.y.z:22`, like a real
VM has its own IP. Each sshd runs in a private mount namespace in which the VM's own
directory is bind-mounted over `/home/travis`, so `~/build.sh` of one VM is not that of
another. Powering a VM off kills every process of its namespace (sshd, sessions, scripts).

Needs root (port 22, user creation, mount namespaces) and `/usr/sbin/sshd`; `unavailable()`
says why not. Processes are started under `setpriv --pdeathsig KILL`, so an sshd dies with
the test process even when that is killed hard; `VmHost.close()` (also run at exit) powers
off whatever is left.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import fcntl
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
USER = "travis"
HOME = Path("/home") / USER
_USER_LOCK = Path(tempfile.gettempdir()) / "travis-worker-tests-user.lock"
_LIVE_HOSTS: set[VmHost] = set()

# Only the client's key is checked; everything that could slow a login (DNS, PAM, motd) is off.
_SSHD_CONFIG = """\
{listen}
Port 22
HostKey {host_key}
PidFile {directory}/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers {user}
Subsystem sftp internal-sftp
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel INFO
"""


def unavailable() -> str | None:
    """Why sshd VMs cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "sshd test VMs need root"
    for tool in (str(SSHD), "unshare", "setpriv", "useradd", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"sshd test VMs need {tool} (apt-get install -y openssh-server)"
    return None


def ensure_travis_user() -> None:
    """Create the unlocked login user `travis` once; safe when several test runs race."""
    with _USER_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", USER], check=True)
        # useradd leaves the password "!" (locked), and sshd without PAM refuses a locked
        # account even for key logins; "*" means "no password" but unlocked.
        if _shadow_password(USER).startswith("!"):
            subprocess.run(["usermod", "-p", "*", USER], check=True)
        HOME.mkdir(exist_ok=True)


def _shadow_password(user: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == user:
            return rest.partition(":")[0]
    return ""


def _mount_namespace(pid: int | str) -> str:
    return str(Path(f"/proc/{pid}/ns/mnt").readlink())


def _pids_in_namespace(namespace: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if _mount_namespace(entry.name) == namespace:
                pids.append(int(entry.name))
    return pids


def random_loopback_address() -> str:
    """A 127.x.y.z address that nothing listens on port 22 of, away from 127.0.0.0/16."""
    while True:
        address = f"127.{random.randint(64, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((address, 22))
            except OSError:
                continue
        return address


class SshVm:
    """One VM: an sshd on `address`:22 whose `/home/travis` is `home`."""

    def __init__(
        self, host: VmHost, address: str, directory: Path, extra_addresses: tuple[str, ...] = ()
    ) -> None:
        self.host = host
        self.address = address
        self.addresses = (address, *extra_addresses)
        """Every address sshd listens on (a VM with a public IP answers on both)."""
        self.directory = directory
        self.home = directory / "home"
        self.ready_at: float | None = None
        """`time.monotonic()` when sshd started listening (None until then)."""
        self.log: collections.deque[str] = collections.deque(maxlen=200)
        self._process: asyncio.subprocess.Process | None = None
        self._namespace: str | None = None
        self._namespace_fd: int | None = None
        """Holds the namespace open while it is ours: a namespace's number is handed to a new
        one once the last reference is gone, and power_off must never take another VM's
        processes for this one's."""
        self._drain: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def authorize(self, authorized_keys: str) -> None:
        """Write `~travis/.ssh/authorized_keys`, as the startup script does in a real VM."""
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(authorized_keys)
        uid, gid = self.host.travis_ids
        for path in (self.home, ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(path, uid, gid)

    async def boot(self) -> None:
        """Start sshd and return once it listens (within 10 s)."""
        if self.running:
            return
        config = self.directory / "sshd_config"
        config.write_text(
            _SSHD_CONFIG.format(
                listen="\n".join(f"ListenAddress {address}" for address in self.addresses),
                host_key=self.host.host_key,
                directory=self.directory,
                user=USER,
            )
        )
        script = 'mount --bind "$0" "$1" && exec "$2" -D -e -f "$3"'
        self._process = await asyncio.create_subprocess_exec(
            *("setpriv", "--pdeathsig", "KILL", "unshare", "--mount", "--propagation", "private"),
            *("sh", "-c", script, str(self.home), str(HOME), str(SSHD), str(config)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        listening: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drain = asyncio.create_task(self._read_log(listening))
        try:
            await asyncio.wait_for(asyncio.shield(listening), 10.0)
        except BaseException:
            await self.power_off()
            # Powered off mid-boot (e.g. a VM deleted while it boots): sshd's exit is ours,
            # not news; mark it seen so asyncio does not report it as never retrieved.
            if listening.done() and not listening.cancelled():
                listening.exception()
            raise
        try:
            self._namespace_fd = os.open(f"/proc/{self._process.pid}/ns/mnt", os.O_RDONLY)
            namespace = _mount_namespace(self._process.pid)
        except OSError:
            await self.power_off()
            raise
        # The namespace decides what power_off kills: it must never be the test's own.
        if namespace == _mount_namespace("self"):
            await self.power_off()
            raise RuntimeError("sshd VM did not get its own mount namespace")
        self._namespace = namespace

    async def _read_log(self, listening: asyncio.Future[None]) -> None:
        assert self._process is not None and self._process.stderr is not None
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if "Server listening on" in line and not listening.done():
                self.ready_at = time.monotonic()
                listening.set_result(None)
        if not listening.done():
            problem = f"sshd on {self.address} exited: {list(self.log)}"
            listening.set_exception(RuntimeError(problem))

    async def drop_sessions(self) -> None:
        """Kill every SSH session (and what it runs) but keep sshd: a dropped connection."""
        if self._namespace is None or self._process is None:
            return
        for pid in _pids_in_namespace(self._namespace):
            if pid != self._process.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    async def power_off(self) -> None:
        """Kill sshd and everything started through it. Safe to call more than once."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._namespace is not None:
            for _ in range(50):
                pids = _pids_in_namespace(self._namespace)
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                await asyncio.sleep(0.01)
        elif process.returncode is None:
            # Only without a namespace: Popen.kill() polls first, and reaping a child that
            # the namespace kill already ended would steal its status from asyncio.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)
        self._namespace = None
        if self._namespace_fd is not None:
            os.close(self._namespace_fd)
            self._namespace_fd = None

    def power_off_now(self) -> None:
        """Synchronous last resort for interpreter exit."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        for pid in _pids_in_namespace(self._namespace) if self._namespace else [process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class VmHost:
    """Makes VMs under one temporary directory and powers all of them off on `close()`."""

    def __init__(self) -> None:
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        ensure_travis_user()
        entry = pwd.getpwnam(USER)
        self.travis_ids = (entry.pw_uid, entry.pw_gid)
        self.base = Path(tempfile.mkdtemp(prefix="travis-worker-vms-"))
        self.host_key = self.base / "ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
            check=True,
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.vms: list[SshVm] = []
        _LIVE_HOSTS.add(self)

    def create(self, address: str | None = None, extra_addresses: tuple[str, ...] = ()) -> SshVm:
        """A powered-off VM with a fresh home and its own address(es)."""
        address = address or random_loopback_address()
        directory = self.base / f"vm-{address}"
        directory.mkdir()
        vm = SshVm(self, address, directory, extra_addresses)
        vm.home.mkdir()
        os.chown(vm.home, *self.travis_ids)
        self.vms.append(vm)
        return vm

    async def close(self) -> None:
        await asyncio.gather(*(vm.power_off() for vm in self.vms), return_exceptions=True)
        self.vms.clear()
        shutil.rmtree(self.base, ignore_errors=True)
        _LIVE_HOSTS.discard(self)

    def close_now(self) -> None:
        for vm in self.vms:
            vm.power_off_now()
        shutil.rmtree(self.base, ignore_errors=True)


@atexit.register
def _power_off_leftovers() -> None:
    for host in list(_LIVE_HOSTS):
        host.close_now()
