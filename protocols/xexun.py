"""Xexun TK102 / TK103 and their clones (Traccar `xexun`): a GPRMC sentence wrapped in a text line.

One report per line, no fixed header (PROTOCOLS.md sections 3 and 4)::

    [serial,phone,]GPRMC,hhmmss.sss,A|V,ddmm.mmmm,N|S,dddmm.mmmm,E|W,knots,course,ddmmyy,...*cs[\\r\\n]
        ,F|L,[status,] imei:<digits>,[sats,altitude,F:4.28V[/ADC1=0.76V/ADC2=0.00V],charging,length,crc,
        mcc,mnc,lac,cid[,12.3km]]

    150615123731,+33647384611,GPRMC,103731.636,A,4545.5266,N,00448.8259,E,21.12,276.01,150615,,,A*57,L,,
        imei:013949002026675,04,3522.9,F:3.72V,0,142,21744,208,01,0702,9C8C

* The *basic* form (TK102 firmware, Traccar's default framing) is the part from ``GPRMC`` (or
  ``GNRMC``) to the comma after the IMEI; the *full* form (TK103, ``xexun.extended``) is the
  whole line: a ``yymmddhhmmss`` serial and the SMS sender's number before the sentence,
  satellites, altitude, ``F|L:<volts>V`` power (``F`` full, ``L`` low) with optional
  ``/ADCn=<volts>V`` inputs, then cell data after the IMEI.  The decoder reads whatever part
  a frame holds, so either framing works; the ``full`` option (Traccar's second decoder
  argument) is accepted and names the framing a deployment uses.
* Coordinates are NMEA ``ddmm.mmmm`` but the degree digits may be missing or unpadded
  (``10.2368,E`` is 0 degrees 10.2368 minutes, ``811.299200,S`` 8 degrees): the minutes are
  the last two integer digits.  The longitude hemisphere may be empty (east).
* Speed is knots; date and time are UTC (the time keeps its milliseconds).  A sentence
  without a date (``GPRMC,.000,...``) takes the receive date.
* ``F``/``L`` after the checksum is the GPS signal (kept as ``signal``); the optional status
  text maps to alarms / ignition: ``help me`` sos, ``low battery``, ``move!`` movement,
  ``acc on``/``accstart`` and ``acc off``/``accstop`` ignition.
* The sentence checksum is not checked: units send placeholder values (``*00``, ``*68`` on
  unrelated sentences) and Traccar ignores it too.

The server never answers.  TCP only (Traccar serves no UDP port for Xexun).

Framing (TCP): a frame is ``GPRMC``/``GNRMC`` ... the comma after ``imei:<digits>``, as
Traccar's frame decoder cuts it.  The line text around frames (serial/phone before, cell
data after) is dropped silently when it is plain printable text of a line's size; anything
else before a sentence is reported as garbage.
"""

from __future__ import annotations

import re
from datetime import datetime

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
from .kit import alarms
from .kit.framing import garbage, no_end_marker
from .kit.readers import KNOTS, checked_coordinates, float_or_none, utc

TALKERS = (b"GPRMC", b"GNRMC")
IMEI_MARK = b"imei:"
MAX_FRAME = 1024
#: longest run of printable line text (serial, phone, trailing cell data) dropped silently
MAX_LINE_TEXT = 256
FULL_OPTION = "full"

_DIGITS = b"0123456789"
_FULL_HEAD = re.compile(rb"\d{12},[^,\r\n]{0,32},G[PN]RMC,")
_IMEI_FIELD = re.compile(rb"imei:\d{5,17},")
_POWER = re.compile(r"^([FL]):(\d+(?:\.\d+)?)V")
_ADC = re.compile(r"ADC(\d)=(\d+(?:\.\d+)?)V")
_KM = re.compile(r"^(\d+(?:\.\d+)?)km$")

STATUS_WORDS: dict[str, tuple[str | None, bool | None]] = {
    "acc on": (None, True),
    "accstart": (None, True),
    "acc off": (None, False),
    "accstop": (None, False),
    "help me!": (alarms.SOS, None),
    "help me": (alarms.SOS, None),
    "low battery": (alarms.LOW_BATTERY, None),
    "move!": (alarms.MOVEMENT, None),
    "moved!": (alarms.MOVEMENT, None),
}


_UNPRINTABLE = re.compile(rb"[^\x20-\x7e\r\n]")


def _printable(data: bytes | bytearray) -> bool:
    return _UNPRINTABLE.search(data) is None


def _last_unprintable(buf: bytes | bytearray, end: int) -> int:
    """Index of the last byte before `end` that is not line text, -1 if none."""
    last = -1
    for match in _UNPRINTABLE.finditer(buf, 0, end):
        last = match.start()
    return last


def _prefix_of(head: bytes, word: bytes) -> bool:
    n = min(len(head), len(word))
    return head[:n] == word[:n]


def _talker_at(buf: bytes | bytearray, start: int) -> int:
    """Index of the first GPRMC/GNRMC at or after `start`, -1 if none."""
    hits = [i for i in (buf.find(t, start) for t in TALKERS) if i >= 0]
    return min(hits) if hits else -1


class XexunFramer(Framer):
    """`GPRMC`/`GNRMC` ... `imei:<digits>,` frames; line text around them dropped."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0  # where to resume looking for the talker (start not found yet)
        self._start = -1  # talker position once found
        self._end_scan = 0  # where to resume looking for `imei:` / the comma after it
        self._mark = -1  # `imei:` position once found

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if self._start < 0:
            start = _talker_at(buf, self._scan)
            if start < 0:
                keep = max(len(t) for t in TALKERS) - 1
                self._scan = max(0, len(buf) - keep)
                bad = _last_unprintable(buf, len(buf))
                if bad >= 0 or self._scan > MAX_LINE_TEXT:
                    cut = max(bad + 1, self._scan)
                    self._scan = 0
                    raise garbage(buf, cut)
                return None
            if start:
                bad = _last_unprintable(buf, start)
                if bad >= 0 or start > MAX_LINE_TEXT:
                    self._scan = 0
                    raise garbage(buf, start)
                del buf[:start]
            self._start = 0
            self._scan = 0
            self._end_scan = len(TALKERS[0])
        mark = self._mark
        if mark < 0:
            mark = self._mark = buf.find(IMEI_MARK, max(self._start, self._end_scan - len(IMEI_MARK) + 1))
        end = buf.find(b",", max(mark + len(IMEI_MARK), self._end_scan)) if mark >= 0 else -1
        if end < 0:
            self._end_scan = len(buf)
            if len(buf) > self.max_frame:
                self._start = self._mark = -1
                raise no_end_marker(buf, self.max_frame)
            return None
        size = end + 1
        frame = bytes(buf[:size])
        del buf[:size]
        self._start = self._mark = -1
        self._end_scan = 0
        if size > self.max_frame:
            raise FramingError(f"frame of {size} bytes", discarded=frame, fatal=True, reason="frame too large")
        return frame


# --- detection ---------------------------------------------------------------------------


def _detect_full(head: bytes) -> Detection:
    """`yymmddhhmmss,phone,GPRMC,` (the full form)."""
    line = head.split(b"\n", 1)[0]
    if _FULL_HEAD.match(line):
        return Detection.YES
    if any(byte not in _DIGITS for byte in line[:12]):
        return Detection.NO
    if len(line) <= 12:
        return Detection.MORE if b"\n" not in head else Detection.NO
    if line[12:13] != b",":
        return Detection.NO
    phone_end = line.find(b",", 13)
    if phone_end < 0:
        return Detection.MORE if len(line) - 13 <= 32 and b"\n" not in head else Detection.NO
    rest = line[phone_end + 1 :]
    if any(_prefix_of(rest, t + b",") for t in TALKERS) and len(rest) < len(TALKERS[0]) + 1:
        return Detection.MORE if b"\n" not in head else Detection.NO
    return Detection.NO


def _detect_gpsless(head: bytes) -> Detection:
    """A full-form line whose GPS part is empty (`,phone,,L,, imei:...,F:4.28V,...`)."""
    line = head.split(b"\n", 1)[0]
    if _IMEI_FIELD.search(line) and re.search(rb",[FL]:\d+(?:\.\d+)?V", line):
        return Detection.YES
    if b"\n" in head or len(line) > 160:
        return Detection.NO
    return Detection.MORE if _printable(line) and b"GPRMC" not in line else Detection.NO


class XexunCodec(Codec):
    name = "xexun"
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME
    first_bytes = b"G" + _DIGITS + b","
    priority = 85  # digit-led / bare-NMEA text: after the specific signatures
    replies = False
    decoder_args = (None, FULL_OPTION)

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        first = head[0]
        if first == ord("G"):
            for talker in TALKERS:
                word = talker + b","
                if head.startswith(word):
                    return Detection.YES
                if _prefix_of(head, word):
                    return Detection.MORE
            return Detection.NO
        if first == ord(","):
            return _detect_gpsless(head)
        return _detect_full(head)

    def new_framer(self) -> Framer:
        return XexunFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        report = _parse(frame)
        alarm, _ = STATUS_WORDS.get(report.status.strip().lower(), (None, None))
        kind = "alarm" if alarm else ("position" if report.has_gps else "status")
        return FrameInfo(kind, report.imei, None)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        report = _parse(frame)
        try:
            record = report.record(ctx.received_at)
        except ValueError as exc:  # a digit field holding a non-ASCII digit
            raise DecodeError(f"malformed report: {exc}") from exc
        kind = "alarm" if record.alarms else ("position" if record.has_position else "status")
        return Decoded(kind, report.imei, [record])


# --- parsing -----------------------------------------------------------------------------


def _coordinate(value: str, hemisphere: str, negative: str) -> float:
    """NMEA minutes with however many degree digits (the minutes are the last two integer digits)."""
    whole, dot, fraction = value.partition(".")
    if not (whole.isdigit() and dot and fraction.isdigit()):
        raise DecodeError(f"bad coordinate {value!r}")
    degrees = int(whole[:-2]) if len(whole) > 2 else 0
    minutes = float(whole[-2:] + "." + fraction)
    result = degrees + minutes / 60
    return -result if hemisphere == negative else result


class _Report:
    __slots__ = ("extras", "has_gps", "imei", "prefix", "rmc", "signal", "status")

    def __init__(self) -> None:
        self.prefix: list[str] = []
        self.rmc: list[str] = []
        self.has_gps = False
        self.signal = ""
        self.status = ""
        self.imei = ""
        self.extras: list[str] = []

    def record(self, received_at: datetime | None) -> Record:
        record = Record()
        attrs = record.attributes
        if len(self.prefix) >= 2:
            attrs["serial"], attrs["number"] = self.prefix[-2], self.prefix[-1]
        if self.has_gps:
            _apply_rmc(record, self.rmc, received_at)
        else:
            record.fix_time = received_at
        if self.signal:
            attrs["signal"] = self.signal
        if self.status:
            attrs["status"] = self.status
            alarm, ignition = STATUS_WORDS.get(self.status.strip().lower(), (None, None))
            if alarm:
                record.alarms.append(alarm)
            if ignition is not None:
                record.ignition = ignition
        _apply_extras(record, self.extras)
        return record


def _parse(frame: bytes) -> _Report:
    if len(frame) > MAX_FRAME:
        raise DecodeError(f"frame of {len(frame)} bytes (max {MAX_FRAME})")
    text = frame.decode("latin-1").rstrip("\r\n")
    if not text.isascii():
        raise DecodeError("non-ASCII bytes in a Xexun report")
    report = _Report()
    hits = [i for i in (text.find("GPRMC,"), text.find("GNRMC,")) if i >= 0]
    talker = min(hits) if hits else -1
    if talker >= 0:
        report.prefix = text[:talker].split(",")[:-1]
        star = text.find("*", talker)
        if star < 0:
            raise DecodeError("GPRMC sentence without its checksum")
        report.rmc = text[talker + 6 : star].split(",")
        if len(report.rmc) < 9:
            raise DecodeError("GPRMC sentence with fewer than 9 fields")
        report.has_gps = True
        after = text[star + 3 :].lstrip("\r\n")
        tail = after.split(",")[1:] if after.startswith(",") else []
    else:
        fields = text.split(",")
        marks = [i for i, f in enumerate(fields) if f.strip() in ("F", "L")]
        if not marks:
            raise DecodeError("no GPRMC sentence and no signal field")
        report.prefix = fields[: marks[0]][:2]
        tail = fields[marks[0] :]
    imei_at = next((i for i, f in enumerate(tail) if f.strip().startswith("imei:")), -1)
    if imei_at < 1:
        raise DecodeError("no `imei:` field after the sentence")
    report.signal = tail[0].strip()
    if report.signal not in ("F", "L"):
        raise DecodeError(f"signal field {report.signal!r} is not F or L")
    if imei_at >= 2:
        report.status = tail[1]
    imei = tail[imei_at].strip()[5:]
    if not imei.isdigit():
        raise DecodeError(f"IMEI field {tail[imei_at]!r} is not digits")
    report.imei = imei
    report.extras = tail[imei_at + 1 :]
    return report


def _fix_time(time: str, date: str, received_at: datetime | None) -> datetime | None:
    hhmmss, _, fraction = time.partition(".")
    if len(hhmmss) != 6 or not hhmmss.isdigit():
        hhmmss = ""
    micros = round(float("0." + fraction) * 1e6) if fraction.isdigit() else 0
    if len(date) == 6 and date.isdigit():
        day, month, year = int(date[:2]), int(date[2:4]), int(date[4:])
    elif received_at is not None:
        day, month, year = received_at.day, received_at.month, received_at.year
    else:
        return None
    if not hhmmss:
        return utc(year, month, day) if date else received_at
    return utc(year, month, day, int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:]), micros)


def _apply_rmc(record: Record, rmc: list[str], received_at: datetime | None) -> None:
    time, valid, lat, lat_hem, lon, lon_hem, speed, course, date = rmc[:9]
    if valid not in ("A", "V") or lat_hem not in ("N", "S") or lon_hem not in ("E", "W", ""):
        raise DecodeError("malformed GPRMC fields")
    record.valid = valid == "A"
    record.latitude, record.longitude = checked_coordinates(
        _coordinate(lat, lat_hem, "S"), _coordinate(lon, lon_hem, "W")
    )
    knots = float_or_none(speed)
    if speed and knots is None:
        raise DecodeError(f"bad speed {speed!r}")
    record.speed = (knots or 0.0) * KNOTS
    record.course = float_or_none(course) or 0.0
    record.fix_time = _fix_time(time, date, received_at)


def _apply_extras(record: Record, extras: list[str]) -> None:
    """Full form after the IMEI: satellites, altitude, power[/ADCn], charging, length, crc, cell."""
    if not extras:
        return
    if extras[0].isdigit() and len(extras[0]) <= 3:  # a count, not a misplaced number
        record.satellites = int(extras[0])
    if len(extras) > 1 and (altitude := float_or_none(extras[1])) is not None:
        record.altitude = altitude
    if len(extras) > 2 and (power := _POWER.match(extras[2])):
        record.power = float(power.group(2))
        record.attributes["batteryState"] = power.group(1)
        for index, volts in _ADC.findall(extras[2]):
            record.attributes[f"adc{index}"] = volts
    cell = extras[6:10]
    if len(cell) == 4 and cell[0].isdigit() and cell[1].isdigit():
        try:
            lac, cid = int(cell[2], 16), int(cell[3], 16)
        except ValueError:
            lac = cid = -1
        if lac >= 0:
            record.attributes.update(mcc=cell[0], mnc=cell[1], lac=str(lac), cid=str(cid))
    if len(extras) > 10 and (km := _KM.match(extras[10])):
        record.odometer = float(km.group(1)) * 1000


CODEC = XexunCodec()
