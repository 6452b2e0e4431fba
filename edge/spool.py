"""The edge's spool: every record Kafka confirmed, kept on local disk until the worker stored it.

The embedded broker (noida-db) confirms a produce from memory and writes its state to disk about
once a second, so a `kill -9` of the broker loses what it confirmed since.  The edge therefore
appends each confirmed record to the spool *before* the device gets its ack (one `write` per
batch; without fsync a record survives the kill of any process, not a power cut -- set
`TRACKPIPE_SPOOL_FSYNC=1` for that), and keeps it until the worker's consumer group committed
past its offset (the worker commits only after its rows are in ClickHouse).  When the broker
comes back with less than it confirmed, or the edge starts and finds segments of an earlier run,
those records are published again; re-delivered frames collapse in the store's
ReplacingMergeTrees.  With a real Kafka the spool is off: its `acks=all` is durable.

Layout: `<dir>/<seq>.spool` segment files of entries

    u32 length | u8 topic length | topic | i32 partition | i64 offset | u16 key length | key | value

(`length` counts what follows it).  A torn last entry -- the edge killed inside a write -- was never
acknowledged and is skipped when read.  Segments roll every `roll_seconds` or `roll_bytes`; a closed
segment is deleted once every (topic, partition) in it is committed past its highest offset.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("trackpipe.edge.spool")

_LENGTH = struct.Struct("<I")
_WHERE = struct.Struct("<iqH")  # partition, offset, key length

TopicPartition = tuple[str, int]


class SpoolError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Entry:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def encode(topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> bytes:
    name = topic.encode()
    key = key or b""
    body = b"".join((bytes((len(name),)), name, _WHERE.pack(partition, offset, len(key)), key, value))
    return _LENGTH.pack(len(body)) + body


def _lock(directory: Path) -> int:
    """An exclusive lock on `directory` (its `lock` file, which then names this pid); -1 when
    another process holds it."""
    lock_path = directory / "lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def read_segment(path: Path) -> Iterator[Entry]:
    """The entries of one segment file; a torn or garbled tail ends it (logged)."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            break
        (length,) = _LENGTH.unpack_from(data, pos)
        end = pos + 4 + length
        if end > len(data) or length < 1 + _WHERE.size:
            break
        n = data[pos + 4]
        head = pos + 5 + n
        if head + _WHERE.size > end:
            break
        partition, offset, key_len = _WHERE.unpack_from(data, head)
        key_at = head + _WHERE.size
        if key_at + key_len > end:
            break
        topic = data[pos + 5 : head].decode(errors="replace")
        key = data[key_at : key_at + key_len] or None
        yield Entry(topic, partition, offset, key, data[key_at + key_len : end])
        pos = end
    if pos < len(data):
        log.warning("%s: %d bytes of a torn entry at the end skipped (never acknowledged)", path, len(data) - pos)


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    size: int = 0
    opened: float = 0.0
    highest: dict[TopicPartition, int] = field(default_factory=dict)

    def covered_by(self, committed: dict[TopicPartition, int]) -> bool:
        return all(committed.get(tp, -1) > offset for tp, offset in self.highest.items())


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        roll_seconds: float = 2.0,
        roll_bytes: int = 8 << 20,
        max_bytes: int = 1 << 30,
        fsync: bool = False,
        adopt: tuple[Path, ...] = (),
    ) -> None:
        self.directory = directory
        self.adopt = adopt  # other edges' spool directories this one takes over (none running)
        self.roll_seconds = roll_seconds
        self.roll_bytes = roll_bytes
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._closed: list[_Segment] = []  # oldest first
        self._current: _Segment | None = None
        self._fd = -1
        self._lock_fd = -1
        self._adopted_fds: list[int] = []
        self._pending = bytearray()
        self._closed_bytes = 0
        self.recorded = 0  # entries written since start
        self.released = 0  # segments deleted since start

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> list[Path]:
        """Lock the directory and start a new segment; returns the segments an earlier run left
        (to publish again, then `discard`), those of the adopted directories after its own (an
        adopted directory another edge holds is left to it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.directory)
        if self._lock_fd < 0:
            holder = (self.directory / "lock").read_text().strip() or "?"
            raise SpoolError(f"spool {self.directory} is in use by another edge (pid {holder})")
        left = sorted(self.directory.glob("*.spool"))
        self._next_seq = max((int(p.stem) for p in left if p.stem.isdigit()), default=0) + 1
        for other in self.adopt:
            fd = _lock(other)
            if fd < 0:
                log.info("spool %s is held by a running edge: left to it", other)
                continue
            self._adopted_fds.append(fd)
            taken = sorted(other.glob("*.spool"))
            if taken:
                log.warning("spool: taking over %d segment(s) of %s", len(taken), other)
            left += taken
        self._start_segment()
        return left

    def close(self) -> None:
        """Write what is pending and let go (segments stay for the next start)."""
        if self._fd >= 0:
            self.flush()
            os.close(self._fd)
            self._fd = -1
            if self._current is not None and self._current.size == 0:
                self._current.path.unlink(missing_ok=True)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        for fd in self._adopted_fds:
            os.close(fd)
        self._adopted_fds = []

    # -- writing ----------------------------------------------------------------------------

    def record(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        """One confirmed record; on disk at the next `flush` (which comes before any ack)."""
        segment = self._current
        assert segment is not None, "spool not open"
        self._pending += encode(topic, partition, offset, key, value)
        tp = (topic, partition)
        if offset > segment.highest.get(tp, -1):
            segment.highest[tp] = offset
        self.recorded += 1

    def flush(self) -> None:
        if not self._pending or self._fd < 0:
            return
        segment = self._current
        assert segment is not None
        size = len(self._pending)
        while self._pending:  # a regular file takes it in one write; a short write is finished
            del self._pending[: os.write(self._fd, self._pending)]
        if self.fsync:
            os.fsync(self._fd)
        segment.size += size
        if segment.size >= self.roll_bytes:
            self.roll()

    def roll(self) -> None:
        """Close the current segment (if it holds anything) and start the next."""
        self.flush()
        segment = self._current
        if segment is None or segment.size == 0:
            return
        os.close(self._fd)
        self._closed.append(segment)
        self._closed_bytes += segment.size
        self._start_segment()

    def _start_segment(self) -> None:
        seq = self._next_seq
        self._next_seq += 1
        path = self.directory / f"{seq:012d}.spool"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._current = _Segment(seq, path, opened=time.monotonic())

    # -- releasing --------------------------------------------------------------------------

    def release(self, committed: dict[TopicPartition, int]) -> int:
        """Delete the closed segments whose every record the consumer group committed past;
        roll the current one once it is old enough to be released next time."""
        kept: list[_Segment] = []
        deleted = 0
        for segment in self._closed:
            if segment.covered_by(committed):
                segment.path.unlink(missing_ok=True)
                self._closed_bytes -= segment.size
                deleted += 1
            else:
                kept.append(segment)
        self._closed = kept
        self.released += deleted
        current = self._current
        if current is not None and current.size and time.monotonic() - current.opened >= self.roll_seconds:
            self.roll()
        return deleted

    def take_all(self) -> list[Path]:
        """Roll, and hand over every closed segment (to publish again after the broker lost
        records): they are forgotten here; the caller deletes each with `discard` once its
        records were confirmed again (and so spooled anew)."""
        self.roll()
        paths = [segment.path for segment in self._closed]
        self._closed = []
        self._closed_bytes = 0
        return paths

    @staticmethod
    def discard(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # -- figures ----------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        current = self._current.size if self._current else 0
        return self._closed_bytes + current + len(self._pending)

    @property
    def segments(self) -> int:
        return len(self._closed) + (1 if self._current and self._current.size else 0)

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes
