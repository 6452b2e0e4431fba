"""Bofan PT502 / PT500 / PT501 / PT600 trackers (Traccar `pt502`).  TCP only.

Text lines, each ending at the first CR or LF, optionally behind a 5-byte binary wrapper
``BF FB xx <total length, 2 bytes LE>`` (one wrapper may carry several lines)::

    $<type>,<id>,hhmmss.sss,A|V,ddmm.mmmm,N|S,dddmm.mmmm,E|W,[knots],[course],ddmmyy,,[,][x]/
        <inputs 0/1...>,<outputs 0/1...>/[adc hex,adc hex...]/<odometer m>[/[rfid]/<state 3 hex>]...

    type   POS (position), PHO<size>[-<n>] (a photo of <size> bytes announced), or an alarm code:
           IN1 SOS, GOF geofence, TOW tow, HDA hard acceleration, HDB hard braking,
           FDA fatigue driving, SKA vibration, PMA movement, CPA power cut (others: DFR ...)
    state  battery (high nibble), rssi, satellites (one hex digit each)

    $FUS<imei>,<firmware>,<hardware>       firmware report (no position)
    BF FB xx LL LL $PHD<offset>,<size>,<binary JPEG chunk> CR LF
                                           photo data: framed by the wrapper's length

Photo transfer: on ``$PHO<size>`` (size > 0) the server asks for the first chunk with
``#PHD0,<min(size, 960)>\\r\\n``; later chunks depend on how much the connection has
received, so the edge (which keeps that state) must ask for them: `photo_request` builds the
command.  Photo chunks carry no device id and decode to no record.

The framer drops the binary wrapper (it only repeats the length) and returns the text line
with its terminator; ``$PHD`` frames are returned from the ``$`` to the wrapper's end.
Speeds are knots (converted to km/h), the odometer metres.
"""

from __future__ import annotations

import re

from .base import (
    Codec,
    Context,
    Decoded,
    DecodeError,
    Detection,
    FrameInfo,
    Framer,
    Record,
)
from .kit import alarms as A
from .kit.framing import drop_leading, garbage, no_end_marker, oversized
from .kit.readers import KNOTS, checked_coordinates, ddmm, ddmmyy_hhmmss, decimal

WRAPPER = b"\xbf\xfb"
WRAPPER_LEN = 5
PHOTO_DATA = b"$PHD"
MAX_CHUNK = 960
MAX_FRAME = 32 * 1024  # Traccar's large-frame limit (photo chunks)
LINE_ENDS = b"\r\n"

TYPE_ALARMS = {
    "IN1": A.SOS,
    "GOF": A.GEOFENCE,
    "TOW": A.TOW,
    "HDA": A.ACCELERATION,
    "HDB": A.BRAKING,
    "FDA": A.FATIGUE_DRIVING,
    "SKA": A.VIBRATION,
    "PMA": A.MOVEMENT,
    "CPA": A.POWER_CUT,
}

_FIELDS = (
    re.compile(rb"\$(?:PHO\d{0,9}(?:-\d{1,4})?|[A-Z][A-Z0-9]{2})"),  # POS, PHO<size>-<n>, alarm codes
    re.compile(rb"\d{1,20}"),
    re.compile(rb"\d{6}\.\d{3}"),
    re.compile(rb"[AV]"),
)
_FIELD_PREFIXES = (
    re.compile(rb"(\$(?:PHO\d{0,9}(?:-\d{0,4})?|[A-Z][A-Z0-9]{0,2})?)?"),
    re.compile(rb"\d{0,20}"),
    re.compile(rb"\d{0,5}|\d{6}(\.\d{0,3})?"),
    re.compile(rb"[AV]?"),
)
_FUS = re.compile(rb"\$FUS\d{1,20},")
_PHD = re.compile(rb"\$PHD\d{1,9},\d{1,9},")
#: heads that may still grow into a `$FUS<id>,` / `$PHD<n>,<size>,` line
_FUS_PHD_PREFIX = re.compile(rb"\$(?:F(?:U(?:S\d{0,20})?)?|P(?:H(?:D\d{0,9}(?:,\d{0,9})?)?)?)?")
_TAIL = re.compile(r"(\d\d)(\d\d)(\d\d),,,?.?/([01]+),([01]+)/([^/]*)/(\d+)(?:/([^/]*)/([0-9A-Fa-f]{3}))?")


def _detect_text(head: bytes) -> Detection:
    if not head:
        return Detection.MORE
    if head[0] != ord("$"):
        return Detection.NO
    if _FUS.match(head) or _PHD.match(head):
        return Detection.YES
    if _FUS_PHD_PREFIX.fullmatch(head):
        return Detection.MORE
    parts = head.split(b",")
    for i, part in enumerate(parts):
        if i == len(_FIELDS):
            return Detection.YES
        if i < len(parts) - 1:
            if not _FIELDS[i].fullmatch(part):
                return Detection.NO
        elif not _FIELD_PREFIXES[i].fullmatch(part):
            return Detection.NO
    return Detection.MORE


def _detect(head: bytes) -> Detection:
    if head[:1] == WRAPPER[:1]:
        if len(head) >= 2 and head[1] != WRAPPER[1]:
            return Detection.NO
        if len(head) <= WRAPPER_LEN:
            return Detection.MORE
        return _detect_text(head[WRAPPER_LEN:])
    return _detect_text(head)


class Pt502Framer(Framer):
    """Wrapper-aware line framer (see the module docstring)."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if drop_leading(buf, LINE_ENDS):
            self._scan = 0
        if not buf:
            return None
        if buf[0] == WRAPPER[0]:
            if len(buf) < 2:
                return None
            if buf[1] != WRAPPER[1]:
                self._scan = 0
                raise garbage(buf, _resync(buf))
            if len(buf) < WRAPPER_LEN + len(PHOTO_DATA):
                return None
            if buf[WRAPPER_LEN : WRAPPER_LEN + 4] == PHOTO_DATA:
                total = int.from_bytes(buf[3:5], "little")
                if total < WRAPPER_LEN + len(PHOTO_DATA) + 2:
                    self._scan = 0
                    raise garbage(buf, _resync(buf))
                oversized(buf, total, self.max_frame)
                if len(buf) < total:
                    return None
                frame = bytes(buf[WRAPPER_LEN:total])
                del buf[:total]
                self._scan = 0
                return frame
            del buf[:WRAPPER_LEN]
            self._scan = 0
            return self.next_frame()
        if buf[0] != ord("$"):
            self._scan = 0
            raise garbage(buf, _resync(buf))
        end = -1
        for j in range(self._scan, len(buf)):
            if buf[j] in LINE_ENDS:
                end = j
                break
        if end < 0:
            self._scan = len(buf)
            if len(buf) > self.max_frame:
                self._scan = 0
                raise no_end_marker(buf, self.max_frame)
            return None
        frame = bytes(buf[: end + 1])
        del buf[: end + 1]
        self._scan = 0
        return frame


def _resync(buf: bytearray) -> int:
    """Garbage runs up to the next `$` or wrapper start (at least one byte)."""
    cuts = [j for j in (buf.find(b"$", 1), buf.find(WRAPPER[:1], 1)) if j > 0]
    return min(cuts) if cuts else len(buf)


def _text(frame: bytes) -> bytes:
    if frame.startswith(WRAPPER) and len(frame) > WRAPPER_LEN:
        frame = frame[WRAPPER_LEN:]
    return frame


def photo_request(offset: int, remaining: int) -> bytes:
    """The server's request for the next photo chunk."""
    return f"#PHD{offset},{min(remaining, MAX_CHUNK)}\r\n".encode()


def _photo_size(type_: str) -> int:
    digits = type_[3:].split("-")[0]
    return int(digits) if digits.isascii() and digits.isdigit() else 0


def decode_position(text: str) -> tuple[str, str, Record]:
    f = text.split(",", 11)
    if len(f) < 12:
        raise DecodeError("position line with fewer than 11 fields")
    type_, device_id = f[0][1:], f[1]
    if not (device_id.isascii() and device_id.isdigit()):
        raise DecodeError(f"bad id {device_id!r}")
    time, validity = f[2], f[3]
    if not re.fullmatch(r"\d{6}\.\d{3}", time) or validity not in ("A", "V"):
        raise DecodeError("bad time/validity")
    for value, pattern in ((f[4], r"\d{3,4}\.\d{4}"), (f[6], r"\d{3,5}\.\d{4}")):
        if not re.fullmatch(pattern, value):
            raise DecodeError(f"bad coordinate {value!r}")
    if f[5] not in ("N", "S") or f[7] not in ("E", "W"):
        raise DecodeError("bad hemisphere")
    tail = _TAIL.match(",".join(f[10:]))
    if tail is None:
        raise DecodeError("bad date/input block")
    fix_time = ddmmyy_hhmmss(tail.group(1) + tail.group(2) + tail.group(3), time[:6])
    if fix_time is None:
        raise DecodeError("not a real instant")
    record = Record(fix_time=fix_time.replace(microsecond=int(time[7:]) * 1000), valid=validity == "A")
    record.latitude, record.longitude = checked_coordinates(ddmm(f[4], f[5]), ddmm(f[6], f[7]))
    record.speed = decimal(f[8], 0.0) * KNOTS
    record.course = decimal(f[9], 0.0)
    alarm = TYPE_ALARMS.get(type_)
    if alarm:
        record.alarms.append(alarm)
    record.attributes["input"] = str(int(tail.group(4), 2))
    record.attributes["output"] = str(int(tail.group(5), 2))
    if tail.group(6):
        for n, value in enumerate(tail.group(6).split(","), start=1):
            if not re.fullmatch(r"[0-9A-Fa-f]{1,8}", value):
                raise DecodeError(f"bad adc {value!r}")
            record.attributes[f"adc{n}"] = str(int(value, 16))
    record.odometer = float(int(tail.group(7)))
    if tail.group(8):
        record.attributes["driverUniqueId"] = tail.group(8)
    if tail.group(9):
        state = int(tail.group(9), 16)
        record.battery = float(state >> 8)
        record.attributes["rssi"] = str(state >> 4 & 0xF)
        record.satellites = state & 0xF
    return type_, device_id, record


def _kind(type_: str) -> str:
    if type_ in TYPE_ALARMS:
        return "alarm"
    if type_.startswith("PHD") or type_.startswith("FUS"):
        return "other"
    return "position"


class Pt502Codec(Codec):
    name = "pt502"
    first_bytes = b"$\xbf"
    priority = 40
    replies = True
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        return _detect(head[:64])

    def new_framer(self) -> Framer:
        return Pt502Framer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        text = _text(frame)
        if text.startswith(PHOTO_DATA):
            return FrameInfo("other", None, None)
        if text.startswith(b"$FUS"):
            match = re.match(rb"\$FUS(\d+),", text)
            if match is None:
                raise DecodeError("bad $FUS line")
            return FrameInfo("status", match.group(1).decode(), None)
        line = text.rstrip(LINE_ENDS).decode("latin-1")
        type_, device_id, _ = decode_position(line)
        reply = None
        if type_.startswith("PHO"):
            size = _photo_size(type_)
            reply = photo_request(0, size) if size > 0 else None
        return FrameInfo(_kind(type_), device_id, reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        text = _text(frame)
        if text.startswith(PHOTO_DATA):
            return Decoded("other", None, [])
        line = text.rstrip(LINE_ENDS).decode("latin-1")
        if line.startswith("$FUS"):
            match = re.fullmatch(r"\$FUS(\d+),([^,]*)(?:,([^,]*))?", line)
            if match is None:
                raise DecodeError("bad $FUS line")
            record = Record(fix_time=ctx.received_at)
            record.attributes["versionFw"] = match.group(2)
            if match.group(3):
                record.attributes["versionHw"] = match.group(3)
            return Decoded("status", match.group(1), [record])
        if not line.startswith("$"):
            raise DecodeError("not a PT502 line ($...)")
        type_, device_id, record = decode_position(line)
        return Decoded(_kind(type_), device_id, [record])


CODEC = Pt502Codec()
