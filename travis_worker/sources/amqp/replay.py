"""The spools of workers that died: published before this worker takes its first job.

Each worker process owns one directory under the spool root (`<host>.<pid>.<time>`), locked
while it lives and removed when it stops with nothing left unconfirmed. A directory that no
living process locks is what a killed worker could not send: its log parts go first, then
its state updates (so a job's log is complete before the hub hears it finished), each in
the order they were posted, with their original part numbers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from travis_worker import metrics
from travis_worker.errors import ConfigError
from travis_worker.sources.amqp.outbox import (
    PUBLISH_WINDOW,
    RETRY_INITIAL_SECONDS,
    RETRY_MAX_SECONDS,
    Publish,
    publish_window,
)
from travis_worker.sources.amqp.spool import Spool, SpoolLock

logger = logging.getLogger(__name__)

LOGS, STATES = "log", "state"
ORDER = (LOGS, STATES)


@asynccontextmanager
async def own_spool_directory(root: Path) -> AsyncIterator[Path]:
    """This process's spool directory, locked while the block runs; removed afterwards
    unless something is left in it for the next worker."""
    # Unique even for a container restarted with the same PID and host name.
    stamp = time.strftime("%Y%m%dT%H%M%S")
    directory = root / f"{socket.gethostname()}.{os.getpid()}.{stamp}.{uuid.uuid4().hex[:6]}"
    lock = SpoolLock(directory)
    try:
        locked = lock.acquire()
    except OSError as exc:
        raise ConfigError(f"cannot use spool directory {root}: {exc.strerror or exc}") from exc
    if not locked:
        raise ConfigError(f"spool directory {directory} is locked by another process")
    try:
        yield directory
    finally:
        if not any(directory.glob("*/*.spool")):
            shutil.rmtree(directory, ignore_errors=True)
        lock.release()


async def replay_orphans(root: Path, publishers: dict[str, Publish]) -> int:
    """Publish every spool under `root` that no living worker holds; returns how many
    messages went out."""
    total = 0
    for directory in _directories(root):
        lock = SpoolLock(directory)
        if not lock.acquire():
            continue  # a living worker's own spool
        try:
            counts = {name: await _drain(directory / name, publishers[name]) for name in ORDER}
            shutil.rmtree(directory, ignore_errors=True)
        finally:
            lock.release()
        if any(counts.values()):
            logger.info(
                "replayed the spool of an earlier worker",
                extra={
                    "fields": {
                        "spool": str(directory),
                        "log_parts": counts[LOGS],
                        "state_updates": counts[STATES],
                    }
                },
            )
        total += sum(counts.values())
    metrics.SPOOL_REPLAYED.inc(total)
    return total


def _directories(root: Path) -> list[Path]:
    return sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []


async def _drain(directory: Path, publish: Publish) -> int:
    """Publish what `directory`'s spool holds, until the broker confirmed all of it."""
    spool = Spool(directory)
    sent = 0
    confirmed: set[int] = set()
    pause = RETRY_INITIAL_SECONDS
    try:
        while True:
            loaded = spool.load(PUBLISH_WINDOW)
            if not loaded:
                return sent
            window = [message for message in loaded if message.seq not in confirmed]
            results = await publish_window(publish, window)
            failures = [error for error in results if error is not None]
            for message, error in zip(window, results, strict=True):
                if error is None:
                    confirmed.add(message.seq)
                    sent += 1
            if not failures:
                spool.confirm_through(loaded[-1].seq)
                confirmed.clear()
                pause = RETRY_INITIAL_SECONDS
                continue
            # Confirm the prefix that went out; the rest is handed out again after a pause.
            prefix = [m.seq for m in loaded]
            done = next((i for i, seq in enumerate(prefix) if seq not in confirmed), len(prefix))
            if done:
                spool.confirm_through(prefix[done - 1])
            spool.rewind()
            logger.warning(
                "broker did not take replayed messages, retrying",
                extra={"fields": {"err": str(failures[0]), "retry_in": pause}},
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)
    finally:
        spool.close()
