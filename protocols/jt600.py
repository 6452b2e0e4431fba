"""Jointech JT600 / JT701 / JT709 trackers (Traccar `jt600`).  Two frame families on one port.

Binary, big-endian, `$` + BCD id::

    24 | id (5 B BCD) | type(1) | len(2) | records | index(1)                 short format
    24 | id (5 B BCD) | protocol(1) | type(1) | len(2) | records | index(1)   long format (byte 8 = 00)

The whole frame is `len` + 10 bytes.  The high nibble of `type` is the data version
(1, 2, 3) of the short format.  Every record starts with a 17-byte location::

    dd mm yy hh mm ss (BCD, UTC) | lat ddmmmmmm (8 BCD digits) | lon dddmmmmmm (9 digits)
    + flags nibble (bit0 valid, bit1 north, bit2 east) | speed (2 BCD digits) | course / 2

followed by 10 bytes in the short format (v1: satellites, power, flags, altitude, cell id,
LAC, RSSI; v2: fuel high byte, 4 status bytes, odometer km, fuel low byte; v3: bit-packed
fuel1-3, odometer, status) or, in the long format, odometer (km, 4), satellites, vehicle id
(4), status word (alarms; bit5 asks for an answer), battery % (FF = charging), cell id,
LAC, RSSI [+ geofence id and reserved bytes for protocols 17/19].

Text, ``(`` + 10-digit id + ``,`` + type ... ``)``; the framer undoes the escapes
``=15`` -> ``(``, ``=14`` -> ``)``, ``=11`` -> ``,``, ``=00`` -> ``=``:

* ``W01`` position: lon dddmm.mmmm,E|W, lat ddmm.mmmm,N|S, A|V, ddmmyy, hhmmss, speed (km/h),
  course, power, GPS signal, GSM signal, alert type;
* ``U01``/``U02``/``U03``/``U06`` (JT701): [alarm,] ddmmyy, hhmmss, T|F, lat, N|S, lon, E|W
  (decimal degrees), speed (mph), course, satellites, battery %, status bits, cell id, LAC,
  GSM signal, odometer (km), index.  U02 is an alarm report, U03 a blind-area (stored) point;
* ``P45`` (JT709 lock event): ddmmyy, hhmmss, lat, N|S, lon, E|W, A|V, speed (mph), course,
  event source, unlock check, RFID, password check, wrong-password count, index;
* ``WLNET,5`` sensor report: after the 6th comma a binary location and a sensor block
  (battery, RSSI, temperature, humidity).

Replies: binary frames whose status asks for it -> ``(P35)`` (protocol < 0x19) or
``(P69,0,<index>)``; U01-U03 -> ``(S39)``, U06 -> ``(S20)``, P45 -> ``(P69,0,<index>)``.

Binary speed: km/h per the project's protocol notes (Traccar stores the raw figure as
knots); ``jt600.binary_speed = knots`` reads it as knots instead.
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
from .kit import framing
from .kit.framing import garbage, no_end_marker, split_with, take_sized
from .kit.readers import KNOTS, MPH, Reader, ddmm, utc

BINARY = ord("$")
TEXT = ord("(")
TEXT_END = ord(")")
ESCAPE = ord("=")
UNESCAPE = {0x15: ord("("), 0x14: ord(")"), 0x11: ord(","), 0x00: ord("=")}
MAX_FRAME = 4096
LOCATION_LEN = 17
SHORT_RECORD = 27
SHORT_HEADER = 9
LONG_HEADER = 10
SPEED_OPTION = "jt600.binary_speed"

REPLY_P35 = b"(P35)"
REPLY_S39 = b"(S39)"
REPLY_S20 = b"(S20)"

LONG_STATUS_ALARMS = ((1, A.GEOFENCE_ENTER), (2, A.GEOFENCE_EXIT), (3, A.POWER_CUT), (4, A.VIBRATION))
LONG_STATUS_ALARMS_HIGH = ((11, A.LOW_BATTERY), (14, A.FAULT))
RESPONSE_BIT = 5

_W01 = re.compile(
    r"\((\d+),W01,(\d{5}\.\d{4}),([EW]),(\d{4}\.\d{4}),([NS]),([AV]),"
    r"(\d{6}),(\d{6}),(\d+),(\d+),(\d+),(\d+),(\d+),(\d+),"
)
_U0X = re.compile(
    r"\((\d+),(U\d\d),(?:\d+,)?(\d{6}),(\d{6}),([TF]),(\d+\.\d+),([NS]),(\d+\.\d+),([EW]),(\d+\.?\d*),(\d+),(\d+),"
    r"(\d+)%,([01]+),(\d+),(\d+),(\d+),(\d+),(\d+)"
)
_P45 = re.compile(
    r"\((\d+),P45,(\d{6}),(\d{6}),(\d+\.\d+),([NS]),(\d+\.\d+),([EW]),([AV]),(\d+),(\d+),(\d+),\d+,(\d+),\d+,\d+,(\d+)"
)


def unescape(raw: bytes | bytearray) -> bytes:
    return framing.unescape(raw, ESCAPE, UNESCAPE)


def escape(text: bytes) -> bytes:
    """The inverse of `unescape` for the inside of a text frame."""
    return framing.escape(text, ESCAPE, UNESCAPE)


# ------------------------------------------------------------------ binary layout


def is_long(head: bytes | bytearray) -> bool:
    return len(head) > 8 and head[8] == 0


def binary_size(head: bytes | bytearray) -> int | None:
    if len(head) < 10:
        return None
    at = 8 if is_long(head) else 7
    return int.from_bytes(head[at : at + 2], "big") + 10


def _bcd_ok(raw: bytes | bytearray) -> bool:
    return all(b >> 4 <= 9 and b & 0xF <= 9 for b in raw)


def _bcd(raw: bytes | bytearray) -> int:
    return int(bytes(raw).hex()) if raw else 0


def _location_ok(loc: bytes | bytearray) -> bool:
    """A plausible 17-byte location: BCD date/time/coordinates in range."""
    if len(loc) < LOCATION_LEN or not _bcd_ok(loc[:14]) or loc[14] >> 4 > 9:
        return False
    day, month, _, hour, minute, second = (_bcd(loc[i : i + 1]) for i in range(6))
    if not (day <= 31 and month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return False
    lat = _bcd(loc[6:10])
    return lat // 1_000_000 <= 90 and lat % 1_000_000 < 600_000


class _Binary:
    __slots__ = ("device_id", "index", "long", "protocol", "records_raw", "version")

    def __init__(self, frame: bytes) -> None:
        total = binary_size(frame)
        if total is None or frame[:1] != b"$":
            raise DecodeError("not a JT600 binary frame")
        if total > len(frame):
            raise DecodeError(f"length field announces {total} bytes, {len(frame)} present")
        frame = frame[:total]
        if not _bcd_ok(frame[1:6]):
            raise DecodeError("device id is not BCD")
        self.device_id = frame[1:6].hex().lstrip("0") or "0"
        self.long = is_long(frame)
        if self.long:
            self.protocol = frame[6]
            self.version = frame[7] >> 4
            start = LONG_HEADER
        else:
            self.protocol = 0
            self.version = frame[6] >> 4
            start = SHORT_HEADER
        self.records_raw = frame[start:-1]
        self.index = frame[-1]


def _location(r: Reader, speed_factor: float) -> Record:
    raw = r.bytes(16)
    digits = raw.hex()
    if not digits[:29].isdigit():
        raise DecodeError("location is not BCD")
    flags = int(digits[29], 16)
    when = utc(
        int(digits[4:6]), int(digits[2:4]), int(digits[0:2]), int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    )
    lat_raw, lon_raw = int(digits[12:20]), int(digits[20:29])
    lat = lat_raw // 1_000_000 + (lat_raw % 1_000_000) / 10_000 / 60
    lon = lon_raw // 1_000_000 + (lon_raw % 1_000_000) / 10_000 / 60
    if lat > 90 or lon > 180:
        raise DecodeError(f"coordinates out of range: {lat}, {lon}")
    speed = (raw[15] >> 4) * 10 + (raw[15] & 0xF)  # BCD, read digit-wise as the units do (0A = 10)
    course = r.u8() * 2.0
    return Record(
        fix_time=when,
        valid=bool(flags & 1),
        latitude=lat if flags & 2 else -lat,
        longitude=lon if flags & 4 else -lon,
        speed=speed * speed_factor,
        course=course,
    )


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _short_status(rec: Record, raw: bytes) -> None:
    """Version 2 status: 4 bytes (ignition, door; charge, blocked, alarms; alarms; reserved)."""
    a = rec.attributes
    rec.ignition = bool(raw[0] & 0x01)
    a["door"] = _bool(bool(raw[0] & 0x40))
    a["charge"] = _bool(bool(raw[1] & 0x01))
    a["blocked"] = _bool(bool(raw[1] & 0x02))
    if raw[1] & 0x04:
        rec.alarms.append(A.SOS)
    if raw[1] & 0x18:
        rec.alarms.append(A.GPS_ANTENNA_CUT)
    if raw[1] & 0x10:
        rec.alarms.append(A.OVERSPEED)
    if raw[2] & 0x04:
        rec.alarms.append(A.FATIGUE_DRIVING)
    if raw[2] & 0x08:
        rec.alarms.append(A.TOW)


def _long_tail(r: Reader, rec: Record, protocol: int) -> bool:
    """The long-format fields after the location; True when the unit wants an answer."""
    a = rec.attributes
    rec.odometer = float(r.u32() * 1000)
    rec.satellites = r.u8()
    r.skip(4)  # vehicle id
    status = r.u16()
    for bit, alarm in (*LONG_STATUS_ALARMS, *LONG_STATUS_ALARMS_HIGH):
        if status >> bit & 1:
            rec.alarms.append(alarm)
    a["blocked"] = _bool(bool(status >> 7 & 1))
    a["status"] = str(status)
    battery = r.u8()
    if battery == 0xFF:
        a["charge"] = "true"
    else:
        rec.battery_level = float(battery)
    a["cid"] = str(r.u16())
    a["lac"] = str(r.u16())
    a["rssi"] = str(r.u8())
    if protocol in (0x17, 0x19):
        r.skip(4)  # geofence id, reserved
        r.skip(r.remaining)
    return bool(status >> RESPONSE_BIT & 1)


def _short_tail(r: Reader, rec: Record, version: int) -> None:
    a = rec.attributes
    if version == 1:
        rec.satellites = r.u8()
        rec.power = float(r.u8())
        r.skip(1)
        rec.altitude = float(r.u16())
        cid, lac, rssi = r.u16(), r.u16(), r.u8()
        if cid and lac:
            a["cid"], a["lac"] = str(cid), str(lac)
        a["rssi"] = str(rssi)
    elif version == 2:
        fuel = r.u8() << 8
        _short_status(rec, r.bytes(4))
        rec.odometer = float(r.u32() * 1000)
        a["fuel"] = str(fuel + r.u8())
    elif version == 3:
        bits = int.from_bytes(r.bytes(10), "big")  # 80 bits, most significant first
        a["fuel1"] = str(bits >> 68 & 0xFFF)
        a["fuel2"] = str(bits >> 56 & 0xFFF)
        a["fuel3"] = str(bits >> 44 & 0xFFF)
        rec.odometer = float((bits >> 24 & 0xFFFFF) * 1000)
        status = bits & 0xFFFFFF
        rec.ignition = bool(status & 1)
        a["status"] = str(status)


def _speed_factor(ctx: Context | None) -> float:
    return KNOTS if ctx is not None and ctx.options.get(SPEED_OPTION) == "knots" else 1.0


def _decode_binary(b: _Binary, ctx: Context | None) -> tuple[list[Record], bool]:
    r = Reader(b.records_raw)
    factor = _speed_factor(ctx)
    records = []
    answer = False
    while r.remaining >= LOCATION_LEN:
        try:
            rec = _location(r, factor)
            if b.long:
                answer = _long_tail(r, rec, b.protocol) or answer
            else:
                _short_tail(r, rec, b.version)
        except DecodeError:
            if not records:
                raise
            break  # trailing bytes that are no further record (extension blocks of newer firmware)
        records.append(rec)
    return records, answer


def _binary_kind(records: list[Record]) -> str:
    return "alarm" if any(r.alarms for r in records) else "position"


def _binary_reply(b: _Binary, answer: bool) -> bytes | None:
    if not answer:
        return None
    return REPLY_P35 if b.protocol < 0x19 else f"(P69,0,{b.index})".encode()


# ------------------------------------------------------------------ text


def _text_id(frame: bytes) -> str | None:
    m = re.match(rb"\((\d{10}),", frame)
    return m.group(1).decode() if m else None


def _dmy_hms(date: str, time: str):
    return utc(int(date[4:6]), int(date[2:4]), int(date[0:2]), int(time[0:2]), int(time[2:4]), int(time[4:6]))


def _deg(value: str, hemisphere: str, limit: float) -> float:
    degrees = float(value)
    if degrees > limit:
        raise DecodeError(f"coordinate out of range: {value}")
    return -degrees if hemisphere in ("S", "W") else degrees


def _decode_w01(m: re.Match[str]) -> Record:
    _, lon, ew, lat, ns, valid, date, time, speed, course, power, gps, gsm, alert = m.groups()
    rec = Record(
        fix_time=_dmy_hms(date, time),
        valid=valid == "A",
        latitude=ddmm(lat, ns),
        longitude=ddmm(lon, ew, 3),
        speed=float(speed),
        course=float(course),
        power=float(power),
    )
    rec.attributes.update(gps=gps, rssi=gsm, alertType=alert)
    return rec


def _decode_u0x(m: re.Match[str]) -> Record:
    _, kind, date, time, valid, lat, ns, lon, ew, speed, course, sat, battery, status, cid, lac, gsm, odo, index = (
        m.groups()
    )
    rec = Record(
        fix_time=_dmy_hms(date, time),
        valid=valid == "T",
        latitude=_deg(lat, ns, 90),
        longitude=_deg(lon, ew, 180),
        speed=float(speed) * MPH,
        course=float(course),
        satellites=int(sat),
        battery_level=float(battery),
        odometer=float(int(odo) * 1000),
        archive=kind == "U03",
    )
    rec.attributes.update(status=str(int(status, 2)), cid=cid, lac=lac, rssi=gsm, index=index)
    return rec


def _decode_p45(m: re.Match[str]) -> Record:
    _, date, time, lat, ns, lon, ew, valid, speed, course, source, rfid, _index = m.groups()
    rec = Record(
        fix_time=_dmy_hms(date, time),
        valid=valid == "A",
        latitude=_deg(lat, ns, 90),
        longitude=_deg(lon, ew, 180),
        speed=float(speed) * MPH,
        course=float(course),
    )
    rec.attributes["eventSource"] = source
    if rfid != "0000000000":
        rec.attributes["driverUniqueId"] = rfid
    return rec


def _peripheral(frame: bytes, ctx: Context | None) -> Record:
    pos = 0
    for _ in range(6):
        pos = frame.find(b",", pos + 1)
        if pos < 0:
            raise DecodeError("WLNET frame without its 6 fields")
    r = Reader(frame, pos + 1)
    rec = _location(r, _speed_factor(ctx))
    r.skip(6 + 5 + 1)  # sensor time, sensor id, sensor index
    a = rec.attributes
    a["sensorBattery"] = repr(r.u16() / 100)
    a["sensorBatteryLevel"] = str(r.u8())
    a["sensorRssi"] = str(-r.u8())
    if r.u8() == 1:
        temperature = r.u16()
        if temperature != 0xFFFF:
            value = temperature & 0xFFF
            if temperature & 0xF000:
                value = -value
            a["temp1"] = repr(value / 10)
        a["humidity"] = str(r.u8())
    return rec


def _text_kind_and_reply(frame: bytes) -> tuple[str, bytes | None]:
    text = frame.decode("latin-1")
    if b"WLNET,5," in frame:
        return "position", None
    if "W01" in text:
        return "position", None
    if "P45" in text:
        m = _P45.match(text)
        return "position", (f"(P69,0,{m.group(13)})".encode() if m else None)
    m = _U0X.match(text)
    if m is None:
        return "heartbeat" if text.startswith("(") and "@JT" in text else "other", None
    kind = m.group(2)
    reply = REPLY_S39 if kind in ("U01", "U02", "U03") else REPLY_S20 if kind == "U06" else None
    return {"U02": "alarm", "U03": "batch"}.get(kind, "position"), reply


def _decode_text(frame: bytes, ctx: Context) -> list[Record]:
    if b"WLNET,5," in frame:
        return [_peripheral(frame, ctx)]
    text = frame.decode("latin-1")
    if "W01" in text:
        m = _W01.match(text)
        return [_decode_w01(m)] if m else []
    if "P45" in text:
        m = _P45.match(text)
        return [_decode_p45(m)] if m else []
    m = _U0X.match(text)
    return [_decode_u0x(m)] if m else []


# ------------------------------------------------------------------ framing


class Jt600Framer(Framer):
    """Binary frames by their length field; text frames up to the first `)`, unescaped."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        while buf[:1] in (b"\r", b"\n"):
            del buf[:1]
            self._scan = 0
        if not buf:
            return None
        first = buf[0]
        if first == BINARY:
            total = binary_size(buf)
            if total is None:
                return None
            if total < SHORT_HEADER + 1:
                raise garbage(buf, self._resync())
            return take_sized(buf, total, self.max_frame)
        if first == TEXT:
            end = buf.find(b")", max(self._scan, 1))
            if end < 0:
                self._scan = len(buf)
                if len(buf) > self.max_frame:
                    self._scan = 0
                    raise no_end_marker(buf, self.max_frame)
                return None
            self._scan = 0
            raw = bytes(buf[: end + 1])
            del buf[: end + 1]
            return unescape(raw)
        self._scan = 0
        raise garbage(buf, self._resync())

    def _resync(self) -> int:
        cuts = [j for j in (self._buf.find(b"$", 1), self._buf.find(b"(", 1)) if j >= 0]
        return min(cuts) if cuts else len(self._buf)


# ------------------------------------------------------------------ detection


def _detect_binary(head: bytes) -> Detection:
    if not _bcd_ok(head[1:6]):
        return Detection.NO
    if len(head) < 10:
        return Detection.MORE
    total = binary_size(head)
    assert total is not None
    if total > MAX_FRAME:
        return Detection.NO
    long = is_long(head)
    if long:
        body = total - LONG_HEADER - 1
        start = LONG_HEADER
        if body < LOCATION_LEN + 17:
            return Detection.NO
    else:
        if head[6] >> 4 not in (1, 2, 3):
            return Detection.NO
        body = total - SHORT_HEADER - 1
        start = SHORT_HEADER
        if body <= 0 or body % SHORT_RECORD:
            return Detection.NO
    if len(head) < start + LOCATION_LEN:
        return Detection.MORE
    if not _location_ok(head[start : start + LOCATION_LEN]):
        return Detection.NO
    if len(head) < total:
        return Detection.MORE
    if len(head) > total and head[total : total + 1] not in (b"$", b"("):
        return Detection.NO
    return Detection.YES


def _detect_text(head: bytes) -> Detection:
    for i, b in enumerate(head[1:12], 1):
        if i <= 10 and not 0x30 <= b <= 0x39:
            return Detection.NO
        if i == 11 and b != ord(","):
            return Detection.NO
    return Detection.YES if len(head) >= 12 else Detection.MORE


class Jt600Codec(Codec):
    name = "jt600"
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME
    first_bytes = b"$("
    priority = 25
    replies = True

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == BINARY:
            return _detect_binary(head)
        if head[0] == TEXT:
            return _detect_text(head)
        return Detection.NO

    def new_framer(self) -> Framer:
        return Jt600Framer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if frame[:1] == b"$":
            b = _Binary(frame)
            records, answer = _decode_binary(b, None)
            return FrameInfo(_binary_kind(records), b.device_id, _binary_reply(b, answer))
        if frame[:1] != b"(":
            raise DecodeError("not a JT600 frame")
        kind, reply = _text_kind_and_reply(frame)
        return FrameInfo(kind, _text_id(frame), reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if frame[:1] == b"$":
            b = _Binary(frame)
            records, _ = _decode_binary(b, ctx)
            return Decoded(_binary_kind(records), b.device_id, records)
        if frame[:1] != b"(":
            raise DecodeError("not a JT600 frame")
        kind, _ = _text_kind_and_reply(frame)
        return Decoded(kind, _text_id(frame), _decode_text(frame, ctx))


CODEC = Jt600Codec()
