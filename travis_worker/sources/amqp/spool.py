"""Messages the broker has not confirmed, kept on disk in order, so that neither an outage
nor the death of the worker process loses them.

A spool is a directory of segment files, each named by the sequence number of its first
message, so that listing them in name order lists the messages in the order they were
posted. A message is one line (`<seq> <job id> <AMQP type> <body>`; the body is JSON as Go
encodes it, which holds no raw newline), so a line cut short by a crash is recognised and
skipped. Next to each segment, `<segment>.done` holds how many of its bytes were confirmed;
a fully confirmed segment is deleted. Lines are written without fsync: they survive the
process, which is what a worker host loses, not necessarily the host itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 8 * 1024 * 1024
"""A segment is closed and a new one started past this size, so confirmed data is freed
in steps rather than at the end of a long outage."""
LOCK_FILE = "lock"


@dataclass
class Message:
    """One state update or log part on its way to the broker."""

    seq: int
    job_id: int
    event_type: str
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body)

    def line(self) -> bytes:
        return b"%d %d %s %s\n" % (self.seq, self.job_id, self.event_type.encode(), self.body)

    @classmethod
    def parse(cls, line: bytes) -> Message | None:
        """The message of a complete line, or None for a damaged one."""
        parts = line.rstrip(b"\n").split(b" ", 3)
        if len(parts) != 4 or not line.endswith(b"\n"):
            return None
        try:
            return cls(int(parts[0]), int(parts[1]), parts[2].decode(), parts[3])
        except ValueError:
            return None


@dataclass
class Segment:
    path: Path
    size: int = 0
    confirmed: int = 0
    """Bytes from the start whose messages the broker confirmed."""
    loaded: int = 0
    """Bytes from the start whose messages were handed out by `load`."""
    writer: IO[bytes] | None = field(default=None, repr=False)

    @property
    def marker(self) -> Path:
        return self.path.with_name(self.path.name + ".done")

    def close_writer(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def segment_name(seq: int) -> str:
    return f"{seq:020d}.spool"


class Spool:
    """A FIFO of messages on disk. Not thread-safe; used from the event loop only (each call
    is a few small reads or writes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._segments: list[Segment] = [self._open_existing(path) for path in self._paths()]
        self._loaded: deque[tuple[int, Segment, int]] = deque()
        """(seq, segment, end offset) of each message handed out and not yet confirmed."""
        self.messages = 0
        """Messages in the spool not yet confirmed (counted from its files at start)."""
        for segment in self._segments:
            self.messages += sum(1 for _ in self._read(segment, segment.confirmed, None))

    def _paths(self) -> list[Path]:
        return sorted(self.directory.glob("*.spool"))

    @staticmethod
    def _open_existing(path: Path) -> Segment:
        confirmed = 0
        with contextlib.suppress(OSError, ValueError):
            confirmed = int(path.with_name(path.name + ".done").read_text())
        return Segment(path, size=path.stat().st_size, confirmed=confirmed, loaded=confirmed)

    @property
    def empty(self) -> bool:
        return not self._segments

    @property
    def bytes_pending(self) -> int:
        return sum(segment.size - segment.confirmed for segment in self._segments)

    def append(self, message: Message) -> None:
        """Add `message` after everything in the spool."""
        tail = self._segments[-1] if self._segments else None
        if tail is None or tail.writer is None or tail.size >= SEGMENT_BYTES:
            if tail is not None:
                tail.close_writer()
            tail = self._new_segment(message.seq)
        self._write(tail, [message])

    def prepend(self, messages: list[Message]) -> None:
        """Add `messages`, older than everything in the spool, before it."""
        if not messages:
            return
        segment = self._new_segment(messages[0].seq, at_front=True)
        self._write(segment, messages)
        segment.close_writer()

    def load(self, limit: int) -> list[Message]:
        """Up to `limit` messages not handed out yet, oldest first."""
        found: list[Message] = []
        for segment in self._segments:
            if len(found) >= limit:
                break
            if segment.writer is not None:
                segment.writer.flush()
            for message, end in self._read(segment, segment.loaded, limit - len(found)):
                found.append(message)
                segment.loaded = end
                self._loaded.append((message.seq, segment, end))
        return found

    def confirm_through(self, seq: int) -> None:
        """Every message up to `seq` is confirmed: record it, and delete what is done."""
        touched: dict[int, Segment] = {}
        while self._loaded and self._loaded[0][0] <= seq:
            _, segment, end = self._loaded.popleft()
            segment.confirmed = end
            touched[id(segment)] = segment
            self.messages -= 1
        if self.messages <= 0:
            self.messages = 0
            for segment in list(self._segments):
                self._delete(segment)
            return
        for segment in touched.values():
            if segment.confirmed >= segment.size and segment.writer is None:
                self._delete(segment)
            else:
                tmp = segment.marker.with_name(segment.marker.name + ".tmp")
                tmp.write_text(str(segment.confirmed))
                tmp.replace(segment.marker)

    def rewind(self) -> None:
        """Forget what was handed out and not confirmed: `load` hands it out again."""
        self._loaded.clear()
        for segment in self._segments:
            segment.loaded = segment.confirmed

    def close(self) -> None:
        for segment in self._segments:
            segment.close_writer()
        # A tail whose every message was confirmed has no reason to outlive the process.
        for segment in list(self._segments):
            if segment.confirmed >= segment.size:
                self._delete(segment)

    # -- files ------------------------------------------------------------------------------

    def _new_segment(self, first_seq: int, *, at_front: bool = False) -> Segment:
        segment = Segment(self.directory / segment_name(first_seq))
        segment.writer = segment.path.open("ab")
        if at_front:
            self._segments.insert(0, segment)
        else:
            self._segments.append(segment)
        return segment

    def _write(self, segment: Segment, messages: list[Message]) -> None:
        assert segment.writer is not None
        data = b"".join(message.line() for message in messages)
        segment.writer.write(data)
        segment.size += len(data)
        self.messages += len(messages)

    def _read(self, segment: Segment, start: int, limit: int | None) -> list[tuple[Message, int]]:
        found: list[tuple[Message, int]] = []
        with segment.path.open("rb") as reader:
            reader.seek(start)
            offset = start
            for line in reader:
                if limit is not None and len(found) >= limit:
                    break
                if not line.endswith(b"\n"):
                    break  # a line still being written, or cut short by a crash
                offset += len(line)
                message = Message.parse(line)
                if message is None:
                    logger.error(
                        "skipping a damaged spool line",
                        extra={"fields": {"segment": segment.path.name, "offset": offset}},
                    )
                    continue
                found.append((message, offset))
        return found

    def _delete(self, segment: Segment) -> None:
        segment.close_writer()
        for path in (segment.path, segment.marker):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._segments.remove(segment)


class SpoolLock:
    """An exclusive lock on a spool directory, held while a process owns it: a worker that
    starts replays only the spools no living process holds."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = (self.directory / LOCK_FILE).open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
