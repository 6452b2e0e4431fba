"""Incremental framers shared by the protocols (h11 `ReceiveBuffer` style).

Each framer owns one buffer, the scan cursor (bytes already searched are never
searched again: a trickling or hostile sender costs O(bytes)), the resync on
garbage and the size cap.  The shapes cover what Traccar's 135 frame decoders
reuse:

* `DelimitedFramer` -- a start marker ... an end marker (`*`...`#`, `$$`...`\\r\\n`);
* `LineFramer`      -- no start marker, ends at any of some end bytes (`\\n`, `;`, `\\r`);
* `LengthFramer`    -- a fixed header whose length field (binary, or ASCII digits) gives
  the frame's size, optionally behind a magic prefix (`78 78`, `@@`, `$$`);
* `split_with`      -- a datagram cut by a TCP framer (UDP transports of framed protocols).

A frame is returned with its delimiters: the edge publishes the bytes as received and
decoders accept frames with or without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..base import Framer, FramingError


def _as_bytes(marker: bytes | int | None) -> bytes:
    if marker is None:
        return b""
    return bytes((marker,)) if isinstance(marker, int) else bytes(marker)


def garbage(buf: bytearray, cut: int) -> FramingError:
    """Drop buf[:cut] and return the (non-fatal) error that reports it."""
    junk = bytes(buf[:cut])
    del buf[:cut]
    return FramingError(f"{len(junk)} bytes outside a frame", discarded=junk, reason="garbage")


def oversized(buf: bytearray, need: int, max_frame: int) -> None:
    """Raise the fatal error for a frame announcing more than max_frame (the buffer is emptied into it)."""
    if need > max_frame:
        junk = bytes(buf)
        buf.clear()
        raise FramingError(
            f"length field announces {need} bytes (max {max_frame})",
            discarded=junk,
            fatal=True,
            reason="frame too large",
        )


def no_end_marker(buf: bytearray, max_frame: int) -> FramingError:
    """The fatal error for a frame still open past max_frame (the buffer is emptied into it)."""
    junk = bytes(buf)
    buf.clear()
    return FramingError(f"no end marker within {max_frame} bytes", discarded=junk, fatal=True, reason="frame too large")


def resync_cut(buf: bytearray, start: bytes, origin: int = 1) -> int:
    """Where garbage before the next `start` (searched from `origin`) ends; a trailing
    partial `start` is kept, it may be completed by the next bytes."""
    j = buf.find(start, origin)
    if j >= 0:
        return j
    keep = 0
    for n in range(min(len(start) - 1, len(buf)), 0, -1):
        if buf.endswith(start[:n]):
            keep = n
            break
    return len(buf) - keep


class DelimitedFramer(Framer):
    """Frames from a start marker to an end marker, both included (Carscop `*`...`^`,
    H02 `*`...`#`, Meitrack-style `$$`...`\\r\\n`).

    Bytes before a start marker are dropped and reported (`FramingError`, not fatal);
    a frame that grows past `max_frame` without its end marker is fatal.  `skip`
    lists bytes silently ignored between frames (e.g. CR/LF).
    """

    def __init__(self, start: bytes | int, end: bytes | int, max_frame: int, skip: bytes = b"\r\n") -> None:
        super().__init__(max_frame)
        self._start = _as_bytes(start)
        self._end = _as_bytes(end)
        self._skip = skip
        self._scan = len(self._start)  # where to resume searching for the end marker

    def next_frame(self) -> bytes | None:
        buf = self._buf
        i = 0
        while i < len(buf) and buf[i] in self._skip:
            i += 1
        if i:
            del buf[:i]
            self._scan = len(self._start)
        if not buf:
            return None
        start = self._start
        if not buf.startswith(start):
            if len(buf) < len(start) and start.startswith(buf):
                return None
            self._scan = len(start)
            raise garbage(buf, resync_cut(buf, start))
        end = buf.find(self._end, self._scan)
        if end < 0:
            self._scan = max(len(start), len(buf) - len(self._end) + 1)
            if len(buf) > self.max_frame:
                self._scan = len(start)
                raise no_end_marker(buf, self.max_frame)
            return None
        size = end + len(self._end)
        self._scan = len(start)
        if size > self.max_frame:
            frame = bytes(buf[:size])
            del buf[:size]
            raise FramingError(f"frame of {size} bytes", discarded=frame, fatal=True, reason="frame too large")
        frame = bytes(buf[:size])
        del buf[:size]
        return frame


class LineFramer(Framer):
    """Text frames that end at the first of `ends` (single bytes, e.g. ``b"\\n"`` or
    ``b"\\r\\n;"``), the end byte included.  `skip` bytes between frames are dropped
    silently (a `\\r\\n` pair after a `;`-terminated frame, keep-alive blanks)."""

    def __init__(self, max_frame: int, ends: bytes = b"\n", skip: bytes = b"\r\n") -> None:
        super().__init__(max_frame)
        self._ends = re.compile(b"[" + re.escape(ends) + b"]")
        self._skip = skip
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        i = 0
        while i < len(buf) and buf[i] in self._skip:
            i += 1
        if i:
            del buf[:i]
            self._scan = 0
        match = self._ends.search(buf, self._scan)
        if match is None:
            self._scan = len(buf)
            if len(buf) > self.max_frame:
                self._scan = 0
                raise no_end_marker(buf, self.max_frame)
            return None
        size = match.end()
        self._scan = 0
        frame = bytes(buf[:size])
        del buf[:size]
        if size > self.max_frame:
            raise FramingError(f"frame of {size} bytes", discarded=frame, fatal=True, reason="frame too large")
        return frame


#: a function of the first `header` bytes giving the whole frame's size (None: not a frame here)
SizeOf = Callable[[bytes], int | None]


def length_field(offset: int, size: int, adjust: int = 0, byteorder: str = "big", mask: int = -1) -> SizeOf:
    """Netty's LengthFieldBasedFrameDecoder rule: total = offset + size + value + adjust."""
    end = offset + size

    def size_of(header: bytes) -> int:
        value = int.from_bytes(header[offset:end], byteorder)  # type: ignore[arg-type]
        return end + (value & mask) + adjust

    return size_of


def ascii_length(offset: int, size: int, adjust: int = 0, base: int = 10) -> SizeOf:
    """A length written as `size` ASCII digits (decimal or hex) at `offset`."""
    end = offset + size

    def size_of(header: bytes) -> int | None:
        digits = header[offset:end]
        try:
            return end + int(digits, base) + adjust if digits.isalnum() else None
        except ValueError:
            return None

    return size_of


class LengthFramer(Framer):
    """Frames whose size is known once `header` bytes are in: `size_of(header)` (see
    `length_field`, `ascii_length`).  With `magic`, every frame starts with it and
    anything else is garbage up to the next `magic`; a size below `header` or a
    `trailer` that is not where the size says make the frame garbage too (resync)."""

    def __init__(
        self,
        max_frame: int,
        header: int,
        size_of: SizeOf,
        *,
        magic: bytes = b"",
        trailer: bytes = b"",
        skip: bytes = b"",
    ) -> None:
        super().__init__(max_frame)
        self._header = max(header, len(magic))
        self._size_of = size_of
        self._magic = magic
        self._trailer = trailer
        self._skip = skip

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if self._skip:
            i = 0
            while i < len(buf) and buf[i] in self._skip:
                i += 1
            if i:
                del buf[:i]
        if not buf:
            return None
        magic = self._magic
        if magic and not buf.startswith(magic):
            if len(buf) < len(magic) and magic.startswith(buf):
                return None
            raise garbage(buf, resync_cut(buf, magic))
        if len(buf) < self._header:
            return None
        total = self._size_of(bytes(buf[: self._header]))
        if total is None or total < max(self._header, len(magic) + len(self._trailer), 1):
            raise garbage(buf, resync_cut(buf, magic) if magic else len(buf))
        oversized(buf, total, self.max_frame)
        if len(buf) < total:
            return None
        if self._trailer and buf[total - len(self._trailer) : total] != self._trailer:
            raise garbage(buf, resync_cut(buf, magic) if magic else len(buf))
        frame = bytes(buf[:total])
        del buf[:total]
        return frame


def split_with(framer: Framer, datagram: bytes) -> list[bytes]:
    """The frames of one datagram cut by a TCP framer: all of it must frame."""
    framer.feed(datagram)
    frames: list[bytes] = []
    try:
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    except FramingError as exc:
        raise FramingError(exc.detail, discarded=datagram, reason=exc.reason) from exc
    if framer.buffered or not frames:
        raise FramingError("incomplete frame in datagram", discarded=datagram, reason="garbage")
    return frames
