"""A RabbitMQ node of a test's own (own node name, ports and data directory), for tests that
stop, restart or block the broker: the node every other test uses is never disturbed.

The Debian scripts run the server as the `rabbitmq` user, so its directory belongs to it.
A node starts in about 4 s and keeps its data across a stop and start, as a real broker
restart does.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def available() -> str | None:
    """Why a private node cannot run here, or None."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server is not installed"
    try:
        import pwd

        pwd.getpwnam("rabbitmq")
    except KeyError:
        return "there is no rabbitmq user"
    return None


class PrivateBroker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"travis-worker-test-{uuid.uuid4().hex[:8]}@localhost"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        shutil.chown(directory, "rabbitmq", "rabbitmq")
        for path in directory.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        base = self.directory
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self) -> None:
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self._env(), check=True, timeout=60,
            capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while not answers(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"private RabbitMQ node did not start; see {self.directory}/log")
            time.sleep(0.2)

    def stop(self) -> None:
        self.ctl("stop")
        deadline = time.monotonic() + START_SECONDS
        while answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args], env=self._env(), check=True, timeout=60,
            capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout


@contextmanager
def private_broker() -> Iterator[PrivateBroker]:
    """A started node, stopped (and its files removed) when the block ends. Its directory is
    not under pytest's tmp_path, which the `rabbitmq` user cannot enter."""
    directory = Path(tempfile.mkdtemp(prefix="travis-worker-rabbit-"))
    broker = PrivateBroker(directory)
    broker.start()
    try:
        yield broker
    finally:
        if answers(broker.port):
            broker.stop()
        shutil.rmtree(directory, ignore_errors=True)
