"""What backend tests share: sshd "VMs" (real OpenSSH on 127.x.y.z:22, needs root) and a
recorder of boot progress and script output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import need
from tests.fakes import sshvm
from travis_worker.backends.base import ProgressEntry


@pytest.fixture
async def vm_host() -> AsyncIterator[sshvm.VmHost]:
    need(sshvm.unavailable() is None, sshvm.unavailable() or "")
    host = sshvm.VmHost()
    try:
        yield host
    finally:
        await host.close()


@dataclass
class Recorder:
    """A Progress and an Output that keep what they get."""

    entries: list[ProgressEntry] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)

    async def __call__(self, entry: ProgressEntry) -> None:
        self.entries.append(entry)

    async def write(self, data: bytes) -> None:
        self.output.extend(data)

    @property
    def text(self) -> str:
        return "".join(entry.render() for entry in self.entries)

    @property
    def messages(self) -> list[str]:
        return [entry.message for entry in self.entries if entry.message != "."]
