"""GoSafe G3C/G3SC, G6S, G7S, G79/G79W, G737IC (Traccar `gosafe`).

Text frames, ``*`` ... ``#``::

    *GS<vv>,<imei>,<record>$<record>$...#
    record = hhmmssddmmyy , [event hex] , BLOCK:v;v;... , BLOCK:... ...

A record whose first field is not a time (``000000000000``, ``RST``...) is a command result
(kept as ``result``) with no time of its own.  Blocks:

* ``GPS:`` A|V|L; sats; N|S lat; E|W lon; speed km/h; course; altitude m; hdop; vdop
* ``GSM:`` registration; signal; mcc; mnc; lac hex; cid hex; rssi [; more cells]
* ``COT:`` odometer m; engine hours ``h-m-s``
* ``ADC:`` power V; battery V; adc1; adc2
* ``DTT:`` status hex; io hex (bit 0 ignition, 1-4 in1-4, 5-7 out1-3); geofence (2 fields);
  event status; packet type
* ``ETD:`` event data, ``OBD:`` raw OBD, ``TAG:`` tag data, ``IWD:`` one-wire devices
  (index; 0 = driver id / 1 = temperature sensor serial + degrees; ...), ``SYS:`` model/firmware.

The old ``*GS02`` text: ``*GS02,<imei>,GPS:hhmmss;[fix;]A|V;S1.166829;E36.934287;speed;course;[hdop]ddmmyy,...``.

Binary frames, ``F8`` ... ``F8`` with ``1B 00`` -> ``1B`` and ``1B E3`` -> ``F8`` escaping (the
framer unescapes)::

    F8 | version | type (01, or 41 with an event byte) | imei uint56 | seconds since 2000 u32
       | [event] | mask u16 | blocks (bit 0 SYS, 1 GPS, 2 GSM, 3 COT, 4 ADC, 5 DTT, 6 IWD, 7 ETD)
       | CRC-16/XMODEM u16 of version .. blocks (unescaped) | F8
    GPS block = length u8, fields u16 (bit 0 flags: bits 5-6 fix, 0-4 sats; 1 lat/lon i32 1e-6;
                2 speed i16 km/h; 3 course u16; 4 altitude i16; 5 hdop u16/100; 6 vdop u16/100)

Every frame is answered with the four ASCII bytes ``1234`` (as Traccar does).  Times are UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .base import (
    ChecksumError,
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
from .kit import framing
from .kit.checksums import CRC16_XMODEM, luhn_valid
from .kit.framing import PairedFramer, no_end_marker, split_with
from .kit.readers import EPOCH, Reader, bit, bits, ddmmyy_hhmmss

TEXT_START = ord("*")
TEXT_END = ord("#")
BINARY = 0xF8
ESCAPE = 0x1B
REPLY = b"1234"
Y2000 = EPOCH + timedelta(seconds=946684800)
BINARY_TYPES = (0x01, 0x41)

_TEXT_SIGNATURE = re.compile(rb"\*GS\d\d,\d{15}(?:[,#]|$)")
_TEXT_PREFIX = re.compile(rb"\*(?:G(?:S(?:\d(?:\d(?:,\d{0,15})?)?)?)?)?")
_TIME = re.compile(r"\d{10}[1-9]\d")
_HEX = re.compile(r"[0-9A-Fa-f]+")


CODES = {0x00: ESCAPE, 0xE3: BINARY}  # 1B 00 = 1B, 1B E3 = F8


def unescape(data: bytes) -> bytes:
    return framing.unescape(data, ESCAPE, CODES)


def escape(data: bytes) -> bytes:
    return framing.escape(data, ESCAPE, CODES)


def _binary_imei(head: bytes) -> str | None:
    if len(head) < 10:
        return None
    return str(int.from_bytes(head[3:10], "big"))


def _ulbotech_like(data: bytes) -> bool:
    """Ulbotech's binary frames also run F8 ... F8: version 01, then a BCD IMEI (first nibble 0)."""
    digits = data[3:11].hex()
    return data[1] == 0x01 and len(digits) == 16 and digits.isdigit() and digits[0] == "0" and luhn_valid(digits[1:])


def _binary_detect(head: bytes) -> Detection:
    if len(head) < 3:
        return Detection.MORE
    verdict = Detection.NO
    for data in (head, unescape(head)):
        if len(data) < 3 or data[2] not in BINARY_TYPES:
            continue
        if len(data) < 14:
            verdict = Detection.MORE
            continue
        imei = _binary_imei(data)
        if imei is None or len(imei) != 15 or not luhn_valid(imei) or _ulbotech_like(data):
            continue
        return Detection.YES
    return verdict


class _GoSafeFramer(PairedFramer):
    """`*`...`#` text frames and `F8`...`F8` binary frames (unescaped on the way out)."""

    def __init__(self, max_frame: int) -> None:
        super().__init__({bytes((TEXT_START,)): bytes((TEXT_END,)), bytes((BINARY,)): bytes((BINARY,))}, max_frame)

    def next_frame(self) -> bytes | None:
        frame = super().next_frame()
        return unescape(frame) if frame is not None and frame[0] == BINARY else frame

    def too_large(self, frame: bytes) -> FramingError:
        return no_end_marker(bytearray(frame), self.max_frame)


# ------------------------------------------------------------------------ text
def _gps(rec: Record, v: list[str]) -> None:
    if len(v) < 5:
        raise DecodeError("short GPS block")
    rec.valid = v[0] == "A"
    rec.satellites = int(v[1])
    lat, lon = float(v[2][1:]), float(v[3][1:])
    rec.latitude = -lat if v[2][:1] == "S" else lat
    rec.longitude = -lon if v[3][:1] == "W" else lon
    if not (-90 <= rec.latitude <= 90 and -180 <= rec.longitude <= 180):
        raise DecodeError("coordinates out of range")
    if v[4]:
        rec.speed = float(int(v[4]))
    if len(v) > 5 and v[5]:
        rec.course = float(int(v[5]))
    if len(v) > 6 and v[6]:
        rec.altitude = float(int(v[6]))
    if len(v) > 7 and v[7]:
        rec.attributes["hdop"] = str(float(v[7]))
    if len(v) > 8 and v[8]:
        rec.attributes["vdop"] = str(float(v[8]))


def _gsm(rec: Record, v: list[str]) -> None:
    if len(v) < 7:
        raise DecodeError("short GSM block")
    rec.attributes.update(
        mcc=str(int(v[2])), mnc=str(int(v[3])), lac=str(int(v[4], 16)), cid=str(int(v[5], 16)), rssi=str(int(v[6]))
    )


def _cot(rec: Record, v: list[str]) -> None:
    if v and v[0]:
        rec.odometer = float(int(v[0]))
    if len(v) > 1 and v[1]:
        hms = [int(x) for x in v[1].split("-")[:3]]
        hms += [0] * (3 - len(hms))
        rec.attributes["hours"] = str((hms[0] * 3600 + hms[1] * 60 + hms[2]) * 1000)


def _adc(rec: Record, v: list[str]) -> None:
    if v and v[0]:
        rec.power = float(v[0])
    if len(v) > 1 and v[1]:
        rec.battery = float(v[1])
    for i in (2, 3):
        if len(v) > i and v[i]:
            rec.attributes[f"adc{i - 1}"] = str(float(v[i]))


def _dtt(rec: Record, v: list[str]) -> None:
    if len(v) < 5:
        raise DecodeError("short DTT block")
    at = rec.attributes
    at["status"] = str(int(v[0], 16))
    if v[1]:
        io = int(v[1], 16)
        rec.ignition = bit(io, 0)
        for i in range(1, 5):
            at[f"in{i}"] = str(bit(io, i)).lower()
        for i in range(1, 4):
            at[f"out{i}"] = str(bit(io, 4 + i)).lower()
    at["geofence"] = v[2] + v[3]
    at["eventStatus"] = v[4]
    if len(v) > 5:
        at["packetType"] = v[5]


def _iwd(rec: Record, v: list[str]) -> None:
    i = 0
    while i + 1 < len(v):
        index, data_type = int(v[i]), int(v[i + 1])
        i += 2
        if data_type == 0 and i < len(v):
            rec.attributes["driverUniqueId"] = v[i]
            i += 1
        elif data_type == 1 and i + 1 < len(v):
            rec.attributes[f"temp{index}"] = str(float(v[i + 1]))
            i += 2


_SIMPLE_BLOCKS = {"ETD": "eventData", "OBD": "obd", "TAG": "tagData"}
_BLOCKS = {"GPS": _gps, "GSM": _gsm, "COT": _cot, "ADC": _adc, "DTT": _dtt, "IWD": _iwd}


def _text_record(item: str, previous: datetime | None, ctx: Context) -> Record:
    fields = item.split(",")
    rec = Record()
    start = 0
    if fields and _TIME.fullmatch(fields[0]):
        stamp = fields[0]
        # hhmmss ddmmyy
        rec.fix_time = ddmmyy_hhmmss(stamp[6:], stamp[:6])
        if rec.fix_time is None:
            raise DecodeError(f"bad time {stamp}")
        start = 1
    elif fields:
        rec.attributes["result"] = fields[0]
        rec.fix_time = previous or ctx.received_at
        start = 1
    for fragment in fields[start:]:
        if not fragment:
            continue
        if _HEX.fullmatch(fragment):
            rec.attributes["event"] = str(int(fragment, 16))
            continue
        name, colon, data = fragment.partition(":")
        if not colon:
            continue
        values = data.split(";") if data else []
        if name in _BLOCKS:
            _BLOCKS[name](rec, values)
        elif name in _SIMPLE_BLOCKS and values:
            rec.attributes[_SIMPLE_BLOCKS[name]] = values[0]
    return rec


def _old_text(body: str) -> list[Record]:
    """`GPS:hhmmss;[fix;]A;S1.16;E36.93;speed;course;[hdop]ddmmyy` of the *GS02 units."""
    gps = next((f for f in body.split(",") if f.startswith("GPS:")), None)
    if gps is None:
        return []
    v = gps[4:].split(";")
    if len(v) >= 2 and v[1] not in ("A", "V") and v[1].isdigit():
        v = v[:1] + v[2:]
    if len(v) < 7 or v[1] not in ("A", "V"):
        raise DecodeError("bad GS02 GPS block")
    date = v[6][-6:]
    rec = Record(fix_time=ddmmyy_hhmmss(date, v[0]), valid=v[1] == "A")
    if rec.fix_time is None:
        raise DecodeError("bad GS02 time")
    lat, lon = float(v[2][1:]), float(v[3][1:])
    rec.latitude = -lat if v[2][:1] == "S" else lat
    rec.longitude = -lon if v[3][:1] == "W" else lon
    rec.speed = float(v[4] or 0)
    rec.course = float(v[5] or 0)
    if len(v[6]) > 6:
        rec.attributes["hdop"] = v[6][:-6]
    return [rec]


def _decode_text(frame: bytes, ctx: Context) -> Decoded:
    text = frame.decode("latin-1").strip("\r\n")
    if text.endswith("#"):
        text = text[:-1]
    parts = text.split(",", 2)
    if len(parts) < 2 or not re.fullmatch(r"\*GS\d+", parts[0]) or not parts[1].isdigit():
        raise DecodeError("not a GoSafe text frame")
    imei = parts[1]
    body = parts[2] if len(parts) > 2 else ""
    if not body:
        return Decoded("heartbeat", imei, [])
    if parts[0] == "*GS02":
        return Decoded("position", imei, _old_text(body))
    records: list[Record] = []
    previous: datetime | None = None
    for item in body.split("$"):
        rec = _text_record(item, previous, ctx)
        if rec.fix_time is not None and "result" not in rec.attributes:
            previous = rec.fix_time
        records.append(rec)
    kind = "position" if any(r.has_position for r in records) else "status"
    return Decoded(kind, imei, records)


# ---------------------------------------------------------------------- binary
def _check_crc(frame: bytes) -> None:
    """A whole binary frame (`F8` at both ends) carries CRC-16/XMODEM of version .. data."""
    if len(frame) >= 17 and frame[-1] == BINARY:
        given = int.from_bytes(frame[-3:-1], "big")
        crc = CRC16_XMODEM(frame[1:-3])
        if given != crc:
            raise ChecksumError(f"CRC {given:04X} != {crc:04X}")


def _decode_binary(frame: bytes) -> Decoded:
    r = Reader(frame, 1)
    r.skip(1)  # version
    kind = r.u8()
    imei = str(r.uint(7))
    rec = Record(fix_time=Y2000 + timedelta(seconds=r.u32()))
    if kind == 0x41:
        rec.attributes["event"] = str(r.u8())
    mask = r.u16()
    if bit(mask, 0):
        r.skip(r.u8())  # SYS
    if bit(mask, 1):
        g = r.sub(r.u8())
        fields = g.u16()
        if bit(fields, 0):
            flags = g.u8()
            rec.valid = bits(flags, 5, 2) > 0
            rec.satellites = bits(flags, 0, 5)
        if bit(fields, 1):
            rec.latitude = g.i32() / 1e6
            rec.longitude = g.i32() / 1e6
            if not (-90 <= rec.latitude <= 90 and -180 <= rec.longitude <= 180):
                raise DecodeError("coordinates out of range")
        if bit(fields, 2):
            rec.speed = float(g.i16())
        if bit(fields, 3):
            rec.course = float(g.u16())
        if bit(fields, 4):
            rec.altitude = float(g.i16())
        if bit(fields, 5):
            rec.attributes["hdop"] = str(g.u16() / 100.0)
        if bit(fields, 6):
            rec.attributes["vdop"] = str(g.u16() / 100.0)
    for index in range(2, 8):
        if bit(mask, index) and r.remaining:
            r.skip(min(r.u8(), r.remaining))
    return Decoded("position" if rec.has_position else "status", imei, [rec])


class GoSafeCodec(Codec):
    name = "gosafe"
    first_bytes = b"*\xf8"
    priority = 30
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 8192

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == BINARY:
            return _binary_detect(head)
        if _TEXT_SIGNATURE.match(head):
            return Detection.YES
        m = _TEXT_PREFIX.match(head)
        if m and m.end() == len(head):
            return Detection.MORE
        return Detection.NO

    def new_framer(self) -> Framer:
        return _GoSafeFramer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        try:
            return split_with(self.new_framer(), datagram)
        except FramingError:
            if datagram[:3] == b"*GS":
                return [datagram]  # a text datagram without its `#`
            raise

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if frame[:1] == bytes((BINARY,)):
            if len(frame) < 14:
                raise DecodeError("short binary frame")
            _check_crc(frame)
            return FrameInfo("position", _binary_imei(frame), REPLY)
        parts = frame.split(b",", 2)
        if len(parts) < 2 or not parts[0].startswith(b"*GS") or not parts[1].rstrip(b"#\r\n").isdigit():
            raise DecodeError("not a GoSafe frame")
        imei = parts[1].rstrip(b"#\r\n").decode()
        kind = "position" if len(parts) > 2 and parts[2].strip(b"#\r\n") else "heartbeat"
        return FrameInfo(kind, imei, REPLY)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if not frame:
            raise DecodeError("empty frame")
        try:
            if frame[0] == BINARY:
                _check_crc(frame)
                return _decode_binary(frame)
            return _decode_text(frame, ctx)
        except (ValueError, IndexError) as exc:
            raise DecodeError(f"bad GoSafe frame: {exc}") from exc


def y2000_seconds(moment: datetime) -> int:
    return int((moment.astimezone(UTC) - Y2000).total_seconds())


CODEC = GoSafeCodec()
