"""Incremental framers shared by the protocols (h11 `ReceiveBuffer` style).

Each framer owns one buffer, the scan cursor (bytes already searched are never
searched again: a trickling or hostile sender costs O(bytes)), the resync on
garbage and the size cap.  The shapes cover what Traccar's 135 frame decoders
reuse:

* `DelimitedFramer` -- a start marker ... an end marker (`*`...`#`, `$$`...`\\r\\n`);
* `LineFramer`      -- no start marker, ends at any of some end bytes (`\\n`, `;`, `\\r`);
* `PairedFramer`    -- several start markers, each with its own end marker (`*`...`#` or `F8`...`F8`);
* `LengthFramer`    -- a fixed header whose length field (binary, or ASCII digits) gives
  the frame's size, optionally behind a magic prefix (`78 78`, `@@`, `$$`);
* `split_with`      -- a datagram cut by a TCP framer (UDP transports of framed protocols);
* `drain`           -- the frames a framer gives for some bytes (datagram splitters that keep a rest);
* `escape`, `unescape` -- byte stuffing by an escape byte and a code map (GoSafe, HuaSheng, Watch ...).

A frame is returned with its delimiters: the edge publishes the bytes as received and
decoders accept frames with or without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache

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


def drop_leading(buf: bytearray, skip: bytes) -> bool:
    """Drop the run of `skip` bytes (CR/LF, NUL keep-alives ...) at the start of `buf`;
    True when there was one (a framer then resets its scan cursor)."""
    i = 0
    while i < len(buf) and buf[i] in skip:
        i += 1
    if i:
        del buf[:i]
    return bool(i)


def take(buf: bytearray, size: int) -> bytes:
    """Remove and return the first `size` bytes of `buf` (a frame)."""
    frame = bytes(buf[:size])
    del buf[:size]
    return frame


def take_sized(buf: bytearray, total: int, max_frame: int) -> bytes | None:
    """The frame of `total` bytes at the start of `buf` once it is all in (None until
    then); fatal `oversized` when `total` exceeds `max_frame`."""
    oversized(buf, total, max_frame)
    if len(buf) < total:
        return None
    return take(buf, total)


def resync_cut(buf: bytearray, start: bytes | tuple[bytes, ...], origin: int = 1) -> int:
    """Where garbage before the next `start` (searched from `origin`) ends; a trailing
    partial `start` is kept, it may be completed by the next bytes.  With several starts
    (a tuple), the nearest one counts and the longest trailing partial is kept."""
    starts = (start,) if isinstance(start, (bytes, bytearray)) else start
    cuts = [j for j in (buf.find(s, origin) for s in starts) if j >= 0]
    if cuts:
        return min(cuts)
    keep = 0
    for s in starts:
        for n in range(min(len(s) - 1, len(buf)), keep, -1):
            if buf.endswith(s[:n]):
                keep = n
                break
    return len(buf) - keep


def partial_start(buf: bytearray, starts: tuple[bytes, ...]) -> bool:
    """True when `buf` is shorter than one of `starts` and may still become it."""
    return any(len(buf) < len(s) and s.startswith(buf) for s in starts)


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
        if drop_leading(buf, self._skip):
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
        return take(buf, size)


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
        if drop_leading(buf, self._skip):
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


class PairedFramer(Framer):
    """Frames of several kinds told by their start marker, each closed by its own end
    marker (GoSafe and Ulbotech: `*`...`#` text and `F8`...`F8` binary), both included:
    a `DelimitedFramer` with a table ``{start: end}``.  `skip` bytes between frames are
    dropped silently; other bytes before a start marker are garbage up to the next one."""

    def __init__(self, pairs: Mapping[bytes, bytes], max_frame: int, skip: bytes = b"\r\n") -> None:
        super().__init__(max_frame)
        self._pairs = dict(pairs)
        self._starts = tuple(self._pairs)
        self._skip = skip
        self._scan = 0  # where to resume searching for the end marker (0: from the start's end)

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if drop_leading(buf, self._skip):
            self._scan = 0
        if not buf:
            return None
        start = next((s for s in self._starts if buf.startswith(s)), None)
        if start is None:
            if partial_start(buf, self._starts):
                return None
            self._scan = 0
            raise garbage(buf, resync_cut(buf, self._starts))
        end_marker = self._pairs[start]
        end = buf.find(end_marker, max(self._scan, len(start)))
        if end < 0:
            self._scan = max(len(start), len(buf) - len(end_marker) + 1)
            if len(buf) > self.max_frame:
                self._scan = 0
                raise no_end_marker(buf, self.max_frame)
            return None
        size = end + len(end_marker)
        self._scan = 0
        frame = take(buf, size)
        if size > self.max_frame:
            raise self.too_large(frame)
        return frame

    def too_large(self, frame: bytes) -> FramingError:
        """The fatal error for a whole frame longer than `max_frame` (a subclass may word it)."""
        return FramingError(f"frame of {len(frame)} bytes", discarded=frame, fatal=True, reason="frame too large")


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
    `length_field`, `ascii_length`).  With `magic` (one prefix, or a tuple of prefixes such
    as Castel's `@@`/`$$`), every frame starts with one and anything else is garbage up to
    the next; a size below `header`, below `minimum` or a `trailer` that is not where the
    size says make the frame garbage too (resync)."""

    def __init__(
        self,
        max_frame: int,
        header: int,
        size_of: SizeOf,
        *,
        magic: bytes | tuple[bytes, ...] = b"",
        trailer: bytes = b"",
        skip: bytes = b"",
        minimum: int = 0,
    ) -> None:
        super().__init__(max_frame)
        self._magics: tuple[bytes, ...] = (magic,) if isinstance(magic, bytes) and magic else tuple(magic or ())
        longest = max((len(m) for m in self._magics), default=0)
        self._header = max(header, longest)
        self._size_of = size_of
        self._trailer = trailer
        self._skip = skip
        self._minimum = max(self._header, longest + len(trailer), 1, minimum)

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if self._skip:
            drop_leading(buf, self._skip)
        if not buf:
            return None
        magics = self._magics
        if magics and not buf.startswith(magics):
            if partial_start(buf, magics):
                return None
            raise garbage(buf, resync_cut(buf, magics))
        if len(buf) < self._header:
            return None
        total = self._size_of(bytes(buf[: self._header]))
        if total is None or total < self._minimum:
            raise garbage(buf, resync_cut(buf, magics) if magics else len(buf))
        oversized(buf, total, self.max_frame)
        if len(buf) < total:
            return None
        if self._trailer and buf[total - len(self._trailer) : total] != self._trailer:
            raise garbage(buf, resync_cut(buf, magics) if magics else len(buf))
        return take(buf, total)


def drain(framer: Framer, data: bytes, datagram: bytes | None = None) -> list[bytes]:
    """Feed `data` to `framer` and return every frame it then gives.  A framing error is
    raised again with the whole `datagram` (default: `data`) as what was discarded: one
    bad frame rejects the datagram.  What stays buffered is the caller's to judge."""
    framer.feed(data)
    frames: list[bytes] = []
    try:
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    except FramingError as exc:
        raise FramingError(exc.detail, discarded=data if datagram is None else datagram, reason=exc.reason) from exc
    return frames


def split_with(framer: Framer, datagram: bytes, what: str = "frame") -> list[bytes]:
    """The frames of one datagram cut by a TCP framer: all of it must frame (`what` names
    the unit in the error for a datagram that ends inside one)."""
    frames = drain(framer, datagram)
    if framer.buffered or not frames:
        raise FramingError(f"incomplete {what} in datagram", discarded=datagram, reason="garbage")
    return frames


#: byte stuffing: escape code (the byte after the escape byte) -> the plain byte it stands for
Codes = Mapping[int, int]


def unescape(data: bytes | bytearray, escape: int, codes: Codes, *, keep_unknown: bool = False) -> bytes:
    """Undo byte stuffing: `escape` + code becomes ``codes[code]``.  An escape with an
    unknown code is dropped with its code (GoSafe, Ulbotech, HuaSheng, JT600) or, with
    `keep_unknown`, kept as is (Watch); an escape as the last byte is kept."""
    if escape not in data:
        return bytes(data)
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == escape and i + 1 < n:
            plain = codes.get(data[i + 1])
            if plain is not None:
                out.append(plain)
            elif keep_unknown:
                out.append(byte)
                i += 1
                continue
            i += 2
            continue
        out.append(byte)
        i += 1
    return bytes(out)


def escape(data: bytes | bytearray, escape: int, codes: Codes) -> bytes:
    """Byte stuffing, the inverse of `unescape`: every plain byte of `codes` becomes
    `escape` + its code (in one pass: inserted bytes are never escaped again)."""
    pattern, table = _stuffing(escape, tuple(sorted(codes.items())))
    return pattern.sub(lambda m: table[m.group()[0]], bytes(data))


@lru_cache(maxsize=64)
def _stuffing(escape: int, codes: tuple[tuple[int, int], ...]) -> tuple[re.Pattern[bytes], dict[int, bytes]]:
    table = {plain: bytes((escape, code)) for code, plain in codes}
    return re.compile(b"[" + b"".join(re.escape(bytes((plain,))) for plain in table) + b"]"), table
