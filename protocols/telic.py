"""Telic / Picotrack trackers (SBL, Picotrack Endurance ...; Traccar `telic`).

Framing (Traccar's TelicFrameDecoder): a frame either starts with a little-endian u32
length below 1024 followed by that many bytes (the text and its NUL), or it is plain text
ended by a NUL byte (the first four bytes are then ASCII digits, a "length" far above 1024)::

    63 00 00 00 "003020339325,190317083052,...,0406" 00
    "0026203393|226|10|002004010" 00

Position record, comma separated::

    dddd id(6|15 digits) event(1-2 digits), event time(ddmmyyhhmmss), n, fix time(ddmmyyhhmmss),
    longitude, latitude, fix(1 = invalid), speed km/h, course, [satellites], 7 fields ..., battery, ...

    003020339325,190317083052,0,180317103127,259924,445133,3,0,0,9,,,93,12210141,,0010,00,40,240,0,0406

Coordinates are integers: 1e-6 degrees when written with 8+ (longitude) / 7+ (latitude)
digits, 1e-4 degrees otherwise.  Events: 1 power on, 2 SOS, 5 power off, 7/8 geofence
enter/exit, 11/12 ignition on/off, 22 low battery, 25 movement.

``<dddd><id>|mcc|mnc|...`` records (sent on connect) carry no position.  The server never
answers.
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
    FramingError,
    Record,
)
from .kit import alarms, keys
from .kit.framing import no_end_marker
from .kit.readers import ddmmyy_hhmmss

LENGTH_LIMIT = 1024  # below: a binary length prefix; above: the first bytes are text
MAX_FRAME = 4096
EVENT_ALARMS = {
    1: alarms.POWER_ON,
    2: alarms.SOS,
    5: alarms.POWER_OFF,
    7: alarms.GEOFENCE_ENTER,
    8: alarms.GEOFENCE_EXIT,
    22: alarms.LOW_BATTERY,
    25: alarms.MOVEMENT,
}
IGNITION_EVENTS = {11: True, 12: False}

_RECORD = re.compile(r"\d{4}(\d{6}|\d{15})(\d{1,2}),\d{12},\d+,(\d{12}),(-?\d+),(-?\d+),(\d),(\d+),(\d+),(\d*),(.*)")
_SIGNATURE = re.compile(rb"\d{4}(?:\d{6}|\d{15})\d{1,2},\d{12},\d+,\d{12},-?\d+,-?\d+,\d,")
_STATUS = re.compile(rb"\d{10,19}[A-Za-z0-9_]*\|\d{1,4}\|\d{1,4}\||\d{10}(?:\d{9})?[A-Z]{4}\d{4},")
_ID = re.compile(r"\d{4}(\d{15}|\d{6})")


def _text(frame: bytes) -> str:
    if len(frame) >= 4 and int.from_bytes(frame[:4], "little") < LENGTH_LIMIT:
        frame = frame[4:]
    return frame.rstrip(b"\x00\r\n").decode("latin-1")


def _text_detect(text: bytes) -> Detection:
    if _SIGNATURE.match(text) or _STATUS.match(text):
        return Detection.YES
    # a prefix of either shape: digits, then a comma- or pipe-led tail
    if re.fullmatch(rb"\d{0,21}", text):
        return Detection.MORE
    if re.fullmatch(rb"\d{10,19}[A-Za-z0-9_]{0,20}(?:\|\d{0,4}(?:\|\d{0,4})?)?", text):
        return Detection.MORE
    partial = rb"\d{11,21},(?:\d{0,12}(?:,(?:\d*(?:,(?:\d{0,12}(?:,(?:-?\d*(?:,(?:-?\d*(?:,\d?)?)?)?)?)?)?)?)?)?)?"
    return Detection.MORE if re.fullmatch(partial, text) else Detection.NO


class TelicFramer(Framer):
    """Length-prefixed frames (u32 LE < 1024, header dropped as Traccar does) or NUL-ended text."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        while True:
            if len(buf) < 4:
                return None
            length = int.from_bytes(buf[:4], "little")
            if length < LENGTH_LIMIT:
                self._scan = 0
                if length == 0:
                    del buf[:4]
                    continue
                if len(buf) < 4 + length:
                    return None
                frame = bytes(buf[4 : 4 + length])
                del buf[: 4 + length]
                return frame
            end = buf.find(b"\x00", self._scan)
            if end < 0:
                self._scan = len(buf)
                if len(buf) > self.max_frame:
                    self._scan = 0
                    raise no_end_marker(buf, self.max_frame)
                return None
            self._scan = 0
            frame = bytes(buf[: end + 1])
            del buf[: end + 1]
            if end > self.max_frame:
                raise FramingError(f"frame of {end} bytes", discarded=frame, fatal=True, reason="frame too large")
            if end > 0:
                return frame


def _coordinate(value: str, precise: bool, limit: float) -> float:
    degrees = int(value) / (1_000_000 if precise else 10_000)
    if abs(degrees) > limit:
        raise DecodeError(f"coordinate out of range: {value}")
    return degrees


class TelicCodec(Codec):
    name = "telic"
    # Text records start with a digit (a unit's first frame is the NUL-ended `|` record).  A
    # length-prefixed frame starts with its length's low byte; to keep the first-byte index
    # narrow only the record sizes Telic units send (92-102, 106-119 bytes: the captures are
    # 99-101) are indexed, skipping the signature bytes of others (`g` GL200 `i` imei: `x` GT06).
    first_bytes = b"0123456789" + bytes(range(0x5C, 0x67)) + bytes(range(0x6A, 0x78))
    priority = 85
    replies = False
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if 0x30 <= head[0] <= 0x39:
            return _text_detect(head[:120])
        # binary length prefix: small LE u32, then the text
        prefix = head[:4]
        if (len(prefix) > 1 and prefix[1] > 3) or any(b for b in prefix[2:4]):
            return Detection.NO
        if len(head) < 4:
            return Detection.MORE
        length = int.from_bytes(prefix, "little")
        if length < 20:
            return Detection.NO
        verdict = _text_detect(head[4 : 4 + min(length, 120)])
        if verdict is Detection.MORE and len(head) >= 4 + length:
            return Detection.NO
        return verdict

    def new_framer(self) -> Framer:
        return TelicFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        text = _text(frame)
        match = _ID.match(text)
        if not match:
            raise DecodeError("not a Telic record (dddd + device id ...)")
        full = _RECORD.fullmatch(text)
        if full:
            event = int(full.group(2))
            kind = "alarm" if event in EVENT_ALARMS else "position"
            return FrameInfo(kind, full.group(1), None)
        return FrameInfo("status", match.group(1) if "|" in text or "," in text else None, None)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes")
        text = _text(frame)
        match = _RECORD.fullmatch(text)
        if not match:
            ident = _ID.match(text)
            if ident is None:
                raise DecodeError("not a Telic record (dddd + device id ...)")
            return Decoded("status", ident.group(1), [])
        device_id, event_text, when, lon, lat, fix, speed, course, sats, rest = match.groups()
        event = int(event_text)
        record = Record(fix_time=ddmmyy_hhmmss(when[:6], when[6:]))
        if record.fix_time is None:
            raise DecodeError(f"bad fix time {when}")
        record.attributes[keys.EVENT] = str(event)
        if event in EVENT_ALARMS:
            record.alarms.append(EVENT_ALARMS[event])
        record.ignition = IGNITION_EVENTS.get(event)
        precise = len(lon.lstrip("-")) >= 8 and len(lat.lstrip("-")) >= 7
        record.longitude = _coordinate(lon, precise, 180)
        record.latitude = _coordinate(lat, precise, 90)
        record.valid = fix != "1"
        record.speed = float(speed)
        record.course = float(course)
        if sats:
            record.satellites = int(sats)
        tail = rest.split(",")
        if len(tail) > 7 and tail[7].isdecimal():
            record.battery = float(tail[7])
        kind = "alarm" if record.alarms else "position"
        return Decoded(kind, device_id, [record])


CODEC = TelicCodec()
