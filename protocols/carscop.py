"""Carscop CCTR-8xx 2G trackers (CCTR-620/800/802/808..., Chainway CW701/801; Traccar `carscop`).

ASCII frames, ``*`` ... ``^``, no separators inside the position block (PROTOCOLS.md section 1)::

    * YYMMDDhhmmss  U<letter><2 digits>  body  [position]  ^
      header         command
    position = hhmmss  A|V  ddmm.mmmm N|S  dddmm.mmmm E|W  speed  YYMMDD  ddd.dd  [8 state chars  L odometer]
               GPS time fix  latitude       longitude       1-3.1-3 GPS date course

    *040331141830UB05123456789012345061825A2934.0133N10627.2544E000.0040331309.6200000000L000000^

Commands: ``UB00`` heartbeat (body ``HSO``, no position), ``UB05`` login (body = the 15-char
device id, the only frame carrying it), ``UB04`` answer to a poll (9-char body, kept as
``data``), ``UA0x`` alarm (free text, mapped to alarms by keywords and kept as
``alarmText``), ``UD00`` live point, ``UD04`` buffered point uploaded late (``archive``).
Any other ``U[A-Z]dd`` is accepted and decoded as far as it goes.

The speed field is ``ddd.d`` on most units but ``d.ddd`` on the CW801, so the position
block is parsed right to left, anchored on the fixed-width date and course.

Times: the GPS ``hhmmss`` + ``YYMMDD`` is the fix time, UTC.  The header is the device
clock (it follows the unit's ``TIMEZONE`` setting, UTC+8 out of the box, UTC with the
Plaspy set-up); it is kept as ``deviceTime`` and used, read as UTC, only when a frame
carries no usable GPS time.

Units (no vendor document exists; decisions, overridable per deployment through
``Context.options``):

* speed -- **knots** by default, as Traccar decodes it (so figures match a Traccar
  installation the fleet migrates from), and the one public odometer trace (issue #2505)
  fits knots better than km/h.  ``carscop.speed_unit = kmh`` switches to km/h, the TK103
  family's unit.
* odometer -- the 6 decimal digits after ``L`` are read as **metres** (Traccar's reading);
  ``carscop.odometer_scale`` gives metres per unit (``10`` if a drive test says so).  The
  raw digits are always kept as ``odometerRaw``.

The server never answers (Traccar sends nothing and units work with it).  Over UDP a
datagram may hold one frame with or without its ``^`` or several ``^``-terminated frames.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

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
from .kit.framing import DelimitedFramer

START = ord("*")
END = ord("^")
LINE_BREAKS = b"\r\n"

# --- fixed layout ------------------------------------------------------------------
HEADER_END = 13  # "*" + YYMMDDhhmmss
COMMAND_END = 17  # + "U" letter digit digit
SIGNATURE_LEN = COMMAND_END
DEVICE_ID_LEN = 15  # UB05 body
GPS_TIME_LEN = 6
LAT_LEN = 9  # ddmm.mmmm
LON_LEN = 10  # dddmm.mmmm
DATE_LEN = 6
COURSE_LEN = 6  # ddd.dd
STATE_LEN = 8
MAX_SPEED_DIGITS = 3
ODOMETER_MARK = "L"

HEARTBEAT = "UB00"
LOGIN = "UB05"
BUFFERED = "UD04"
ALARM_FAMILY = "UA"
POSITION_FAMILY = "UD"  # every UDxx carries a position block

# --- units ---------------------------------------------------------------------------
KNOT_KMH = 1.852
SPEED_UNIT_OPTION = "carscop.speed_unit"
ODOMETER_SCALE_OPTION = "carscop.odometer_scale"
SPEED_UNITS = {"knots": KNOT_KMH, "kmh": 1.0}
DEFAULT_SPEED_UNIT = "knots"

# Alarm text keywords (matched as word prefixes, case-insensitive, hyphens ignored so
# that "2Hi-jack" reads as "hijack"), in report order.
ALARM_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("sos", "sos"),
    ("hijack", "sos"),
    ("shock", "vibration"),
    ("vibrat", "vibration"),
    ("overspeed", "overspeed"),
    ("speed", "overspeed"),
    ("geofence", "geofenceExit"),
    ("fence", "geofenceExit"),
    ("move", "movement"),
    ("battery", "lowBattery"),
    ("power", "powerCut"),
)
GENERAL_ALARM = "general"
_WORD = re.compile(r"[a-z]+")


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _is_decimal(text: str, whole: int, fraction: int) -> bool:
    """`text` is exactly `whole` digits, a dot and `fraction` digits."""
    return len(text) == whole + 1 + fraction and text[whole] == "." and _is_digits(text.replace(".", "", 1))


#: the whole signature, for heads that hold all of it (`_signature` checks shorter ones byte by byte)
_SIGNATURE = re.compile(rb"\*[0-9]{12}U[A-Z][0-9]{2}")


def _signature(head: bytes) -> Detection:
    """`*` + 12 digits + `U` + capital letter + 2 digits, as far as `head` goes."""
    if len(head) >= SIGNATURE_LEN:
        return Detection.YES if _SIGNATURE.match(head) else Detection.NO
    for i, byte in enumerate(head[:SIGNATURE_LEN]):
        if i == 0:
            ok = byte == START
        elif i < HEADER_END or i >= HEADER_END + 2:
            ok = 0x30 <= byte <= 0x39
        elif i == HEADER_END:
            ok = byte == 0x55  # "U"
        else:
            ok = 0x41 <= byte <= 0x5A
        if not ok:
            return Detection.NO
    return Detection.YES if len(head) >= SIGNATURE_LEN else Detection.MORE


def _kind(command: str) -> str:
    if command == HEARTBEAT:
        return "heartbeat"
    if command == LOGIN:
        return "login"
    if command == BUFFERED:
        return "batch"
    if command.startswith(ALARM_FAMILY):
        return "alarm"
    if command.startswith(POSITION_FAMILY) or command == "UB04":
        return "position"
    return "other"


def alarms_from_text(text: str) -> list[str]:
    """Normalized alarms named by a free alarm text ('general' when none is recognised)."""
    words = _WORD.findall(text.lower().replace("-", ""))
    found: list[str] = []
    for keyword, alarm in ALARM_KEYWORDS:
        if alarm not in found and any(word.startswith(keyword) for word in words):
            found.append(alarm)
    return found or [GENERAL_ALARM]


def _datetime(date: str, time: str) -> datetime | None:
    """YYMMDD + hhmmss as UTC, None when not a real instant."""
    if not (_is_digits(date) and _is_digits(time) and len(date) == DATE_LEN and len(time) == GPS_TIME_LEN):
        return None
    try:
        return datetime(
            2000 + int(date[:2]),
            int(date[2:4]),
            int(date[4:]),
            int(time[:2]),
            int(time[2:4]),
            int(time[4:]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _coordinate(value: str, hemisphere: str, negative: str, degree_digits: int, limit: int) -> float:
    degrees = int(value[:degree_digits])
    minutes = float(value[degree_digits:])
    if degrees > limit or minutes >= 60:
        raise DecodeError(f"coordinate out of range: {value}{hemisphere}")
    result = degrees + minutes / 60
    return -result if hemisphere == negative else result


class _Position:
    """The position block of one frame, split right to left."""

    __slots__ = (
        "body",
        "course",
        "date",
        "lat",
        "lat_hem",
        "lon",
        "lon_hem",
        "odometer",
        "speed",
        "state",
        "time",
        "valid",
    )

    def __init__(self, rest: str) -> None:
        """Raise ValueError when `rest` does not end with a position block."""
        s = rest
        self.state = self.odometer = None
        mark = s.rfind(ODOMETER_MARK)
        if mark >= STATE_LEN and _is_digits(s[mark + 1 :]) and _is_digits(s[mark - STATE_LEN : mark]):
            self.state, self.odometer = s[mark - STATE_LEN : mark], s[mark + 1 :]
            s = s[: mark - STATE_LEN]
        self.course, self.date = s[-COURSE_LEN:], s[-COURSE_LEN - DATE_LEN : -COURSE_LEN]
        if not (_is_decimal(self.course, 3, 2) and _is_digits(self.date) and len(self.date) == DATE_LEN):
            raise ValueError("no course/date")
        head = s[: -COURSE_LEN - DATE_LEN]
        hem = max(head.rfind("E"), head.rfind("W"))
        self.speed = head[hem + 1 :]
        whole, dot, fraction = self.speed.partition(".")
        if not (dot and 0 < len(whole) <= MAX_SPEED_DIGITS and 0 < len(fraction) <= MAX_SPEED_DIGITS):
            raise ValueError("no speed")
        if not _is_digits(whole + fraction):
            raise ValueError("no speed")
        lon_start = hem - LON_LEN
        lat_start = lon_start - 1 - LAT_LEN
        time_start = lat_start - 1 - GPS_TIME_LEN
        if time_start < 0:
            raise ValueError("short position block")
        self.lon_hem, self.lon = head[hem], head[lon_start:hem]
        self.lat_hem, self.lat = head[lon_start - 1], head[lat_start : lon_start - 1]
        self.valid = head[lat_start - 1]
        self.time = head[time_start : lat_start - 1]
        if not (
            _is_decimal(self.lon, 5, 4)
            and _is_decimal(self.lat, 4, 4)
            and self.lat_hem in "NS"
            and self.valid in "AV"
            and _is_digits(self.time)
        ):
            raise ValueError("malformed position block")
        self.body = head[:time_start]


def _options(options: Mapping[str, str]) -> tuple[float, float]:
    """(km/h per speed unit, metres per odometer unit) from the deployment options."""
    unit = options.get(SPEED_UNIT_OPTION, DEFAULT_SPEED_UNIT)
    if unit not in SPEED_UNITS:
        raise DecodeError(f"{SPEED_UNIT_OPTION} must be one of {sorted(SPEED_UNITS)}, not {unit!r}", reason="config")
    raw_scale = options.get(ODOMETER_SCALE_OPTION, "1")
    try:
        scale = float(raw_scale)
    except ValueError:
        scale = -1.0
    if not scale > 0:
        raise DecodeError(f"{ODOMETER_SCALE_OPTION} must be a positive number, not {raw_scale!r}", reason="config")
    return SPEED_UNITS[unit], scale


def _text(frame: bytes) -> str:
    """The frame as text without its terminator; DecodeError unless it starts with the signature."""
    end = len(frame)
    while end and frame[end - 1] in b"^\r\n":
        end -= 1
    if _signature(frame[:end]) is not Detection.YES:
        raise DecodeError("not a Carscop frame (*YYMMDDhhmmssU<A-Z>dd)")
    return frame[:end].decode("latin-1")


class CarscopCodec(Codec):
    name = "carscop"
    first_bytes = b"*"
    priority = 10
    replies = False
    transports = frozenset({"tcp", "udp"})
    max_frame = 1024  # Traccar's delimiter limit; real frames are under 120 bytes

    def detect(self, head: bytes, transport: str) -> Detection:
        return _signature(head)

    def new_framer(self) -> Framer:
        return DelimitedFramer(START, END, self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        """`^`-terminated frames; the last one may lack its `^`.  Anything that is not a
        frame rejects the whole datagram."""
        frames = []
        for piece in datagram.split(b"^"):
            piece = piece.strip(LINE_BREAKS)
            if not piece:
                continue
            if piece[0] != START or len(piece) > self.max_frame:
                raise FramingError("datagram holds bytes outside a frame", discarded=datagram, reason="garbage")
            frames.append(piece + b"^")
        if not frames:
            raise FramingError("empty datagram", discarded=datagram, reason="garbage")
        return frames

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if _signature(frame) is not Detection.YES:
            raise DecodeError("not a Carscop frame (*YYMMDDhhmmssU<A-Z>dd)")
        command = frame[HEADER_END:COMMAND_END].decode("ascii")
        device_id = None
        if command == LOGIN:
            raw_id = frame[COMMAND_END : COMMAND_END + DEVICE_ID_LEN]
            if len(raw_id) < DEVICE_ID_LEN or END in raw_id:
                raise DecodeError("login frame without a 15-character device id")
            device_id = raw_id.decode("latin-1")
        return FrameInfo(_kind(command), device_id, None)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        text = _text(frame)
        speed_factor, odometer_scale = _options(ctx.options)
        header, command, rest = text[1:HEADER_END], text[HEADER_END:COMMAND_END], text[COMMAND_END:]
        device_clock = _datetime(header[:6], header[6:])
        kind = _kind(command)
        try:
            position: _Position | None = _Position(rest)
        except ValueError:
            position = None
        if position is None and command.startswith(POSITION_FAMILY):
            raise DecodeError(f"{command} frame without a position block")
        body = position.body if position else rest

        device_id = None
        if command == LOGIN:
            if len(body) < DEVICE_ID_LEN:
                raise DecodeError("login frame without a 15-character device id")
            device_id = body[:DEVICE_ID_LEN]
        is_alarm = command.startswith(ALARM_FAMILY)
        extra = "" if command in (HEARTBEAT, LOGIN) else body
        if position is None and not is_alarm and not extra:
            return Decoded(kind, device_id, [])

        record = Record(fix_time=device_clock, archive=command == BUFFERED)
        record.attributes["command"] = command
        if device_clock is not None:
            record.attributes["deviceTime"] = device_clock.replace(tzinfo=None).isoformat()
        if is_alarm:
            record.alarms = alarms_from_text(body)
            record.attributes["alarmText"] = body
        elif extra:
            record.attributes["data"] = extra
        if position is not None:
            _apply_position(record, position, speed_factor, odometer_scale)
            if kind == "other":
                kind = "position"
        return Decoded(kind, device_id, [record])


def _apply_position(record: Record, pos: _Position, speed_factor: float, odometer_scale: float) -> None:
    fix_time = _datetime(pos.date, pos.time)
    if fix_time is not None:
        record.fix_time = fix_time
    record.valid = pos.valid == "A"
    record.latitude = _coordinate(pos.lat, pos.lat_hem, "S", 2, 90)
    record.longitude = _coordinate(pos.lon, pos.lon_hem, "W", 3, 180)
    record.speed = float(pos.speed) * speed_factor
    record.course = float(pos.course)
    if pos.state is not None and pos.odometer is not None:
        record.attributes["state"] = pos.state
        record.attributes["odometerRaw"] = pos.odometer
        record.odometer = int(pos.odometer) * odometer_scale


CODEC = CarscopCodec()
