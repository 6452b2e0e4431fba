"""Reusable incremental framers.  Each keeps a scan offset so that bytes already
searched are never searched again (a trickling sender costs O(bytes))."""

from __future__ import annotations

from .base import Framer, FramingError


class DelimitedFramer(Framer):
    """Frames that start with one marker byte and end with another, e.g. Carscop
    `*`...`^`, H02 text `*`...`#`, JT808 `7E`...`7E`.

    Bytes before a start marker are dropped and reported (`FramingError`, not
    fatal); a frame that grows past `max_frame` without its end marker is fatal.
    `skip` lists bytes silently ignored between frames (e.g. CR/LF).
    """

    def __init__(self, start: int, end: int, max_frame: int, skip: bytes = b"\r\n") -> None:
        super().__init__(max_frame)
        self._start = start
        self._end = end
        self._skip = skip
        self._scan = 1  # where to resume searching for the end marker

    def next_frame(self) -> bytes | None:
        buf = self._buf
        # drop separators between frames
        i = 0
        while i < len(buf) and buf[i] in self._skip:
            i += 1
        if i:
            del buf[:i]
            self._scan = 1
        if not buf:
            return None
        if buf[0] != self._start:
            j = buf.find(self._start)
            cut = len(buf) if j < 0 else j
            junk = bytes(buf[:cut])
            del buf[:cut]
            self._scan = 1
            raise FramingError(f"{len(junk)} bytes outside a frame", discarded=junk, reason="garbage")
        end = buf.find(self._end, self._scan)
        if end < 0:
            self._scan = max(1, len(buf))
            if len(buf) > self.max_frame:
                self._scan = 1
                raise no_end_marker(buf, self.max_frame)
            return None
        frame = bytes(buf[: end + 1])
        del buf[: end + 1]
        self._scan = 1
        if len(frame) > self.max_frame:
            raise FramingError(f"frame of {len(frame)} bytes", discarded=frame, fatal=True, reason="frame too large")
        return frame


def oversized(buf: bytearray, need: int, max_frame: int) -> None:
    """Raise the fatal error for a length-prefixed frame announcing more than max_frame."""
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
