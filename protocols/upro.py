"""UPRO / Unique-Pro trackers (``*HQ2``, ``*MG2``, ``*AI2``, ``*VK2`` heads; Traccar `upro`).

ASCII with some binary fields, ``*`` ... ``#``::

    * head(2 letters) "20" ack(0|1) device-id(digits) , type subtype [more letters/digits]
      &A<location> &B<status> &C<odometer> ... #

    *MG201693502000034964,AB&A0800253335360507036975710000091116&B0000000000&N13#

``ack`` = 1 asks for the server's answer ``*<head>20Y<type><subtype>#`` (e.g. ``*HQ20YBA#``).
Type ``GY`` carries a transparent block instead of fields: u16 data type, u16 length, data
(type 0x4009 = a driver card's text).

Fields (one letter each, up to the next ``&``):

* ``A`` hhmmss ddmm.mmmm(8 digits, no dot) dddmm.mmmm(9) flags(1) speed(2) course(2) ddmmyy:
  flags bit 0 set = no fix, bit 1 clear = south, bit 2 clear = west; speed in units of
  2 knots, course in units of 10 degrees; UTC.
* ``B`` 10 status digits: ignition (digit 1 bit 0); alarms in digits 5-8 (sos, vibration,
  movement, overspeed, tampering, low power); kept as ``status``.
* ``C`` odometer: one nibble per character (``0``-``?``), in units of 2/3600 nautical mile.
* ``F`` speed (knots x10), ``G`` altitude (m x10), ``M`` battery (% x10) or humidity,
  ``N`` RSSI, ``O`` satellites, ``R`` RSSI+satellites (HQ head) or OBD travel,
  ``T`` battery %, ``V`` power (V x10), ``W`` alarm bits (bit 2 tampering), ``J`` temperature,
  ``K`` extended status, ``X`` ``(k<iccid>)(J<timezone>)`` parameters or cell list,
  ``Y`` cells or power (mV), ``P``/``I`` cell towers, ``Q``/``S`` OBD blocks (hex),
  ``b`` serial, ``d`` adc1 (V x100), ``l`` logistics lock.

A report whose location is 0 (no fix ever) carries no position; without any field it is
nothing at all.
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
from .kit import alarms, keys
from .kit.framing import DelimitedFramer, split_with
from .kit.readers import KNOTS, bit, utc

START = ord("*")
END = ord("#")
MAX_FRAME = 1024  # Traccar's delimiter frame limit
TRANSPARENT = "GY"  # type + subtype of a transparent (raw data) frame
DRIVER_CARD = 0x4009

_HEADER = re.compile(rb"\*([A-Z]{2}20)([01])(\d+),([A-Za-z0-9])([A-Za-z0-9])[A-Za-z0-9]*")
_LOCATION = re.compile(rb"(\d\d)(\d\d)(\d\d)(\d\d)(\d{6})(\d{3})(\d{6})(\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)")
_SIGNATURE = re.compile(rb"\*[A-Z]{2}20[01]\d{1,20},[A-Za-z0-9]{2}")
_PARTIAL = re.compile(rb"\*(?:[A-Z](?:[A-Z](?:2(?:0(?:[01](?:\d{1,20}(?:,[A-Za-z0-9]?)?)?)?)?)?)?)?")


def _prefix(head: bytes) -> Detection:
    """`*` + 2 capitals + `20` + ack digit + id digits + `,` + type letters, as far as `head` goes."""
    if _SIGNATURE.match(head):
        return Detection.YES
    return Detection.MORE if _PARTIAL.fullmatch(head) else Detection.NO


class _Header:
    __slots__ = ("ack", "device_id", "end", "head", "subtype", "type")

    def __init__(self, frame: bytes) -> None:
        match = _HEADER.match(frame)
        if not match:
            raise DecodeError("not an UPRO frame (*XX20<ack><id>,<type>...)")
        self.head = match.group(1).decode()
        self.ack = match.group(2) == b"1"
        self.device_id = match.group(3).decode()
        self.type = match.group(4).decode()
        self.subtype = match.group(5).decode()
        self.end = match.end()

    @property
    def reply(self) -> bytes | None:
        return f"*{self.head}Y{self.type}{self.subtype}#".encode() if self.ack else None


def _body(frame: bytes, start: int) -> bytes:
    body = frame[start:]
    return body[:-1] if body.endswith(b"#") else body


def _fields(body: bytes) -> list[tuple[str, bytes]]:
    """(letter, data) pairs; each field is a delimiter byte, a letter and data up to `&`."""
    out = []
    i = 0
    while len(body) - i > 1:
        letter = chr(body[i + 1])
        j = body.find(b"&", i + 2)
        if j < 0:
            j = body.find(b"#", i + 2)
        if j < 0:
            j = len(body)
        out.append((letter, body[i + 2 : j]))
        i = j
    return out


def _location(record: Record, data: bytes) -> None:
    match = _LOCATION.match(data)
    if not match:
        return
    g = [x.decode() for x in match.groups()]
    lat = int(g[3]) + float(g[4]) / 10000 / 60
    lon = int(g[5]) + float(g[6]) / 10000 / 60
    flags = int(g[7])
    record.valid = not bit(flags, 0)
    record.latitude = lat if bit(flags, 1) else -lat
    record.longitude = lon if bit(flags, 2) else -lon
    record.speed = int(g[8]) * 2 * KNOTS
    record.course = int(g[9]) * 10.0
    record.fix_time = utc(int(g[12]), int(g[11]), int(g[10]), int(g[0]), int(g[1]), int(g[2]))
    if record.fix_time is None:
        raise DecodeError(f"bad date/time in {data!r}")


def _digits(data: bytes, n: int) -> int:
    text = data[:n]
    if len(text) < n or not text.isdigit():
        raise ValueError(f"{text!r} is not {n} digits")
    return int(text)


def _status(record: Record, data: bytes) -> None:
    if len(data) < 10:
        return
    s = [c - 0x30 for c in data[:10]]
    record.ignition = bit(s[1], 0)
    for present, name in (
        (bit(s[5], 0), alarms.SOS),
        (bit(s[5], 2), alarms.VIBRATION),
        (bit(s[5], 3), alarms.MOVEMENT),
        (bit(s[6], 2), alarms.OVERSPEED),
        (bit(s[8], 1), alarms.TAMPERING),
        (bit(s[8], 2), alarms.LOW_POWER),
    ):
        if present and name not in record.alarms:
            record.alarms.append(name)
    record.attributes[keys.STATUS] = data.decode("latin-1")


def _field(record: Record, head: str, letter: str, data: bytes) -> None:
    attrs = record.attributes
    text = data.decode("latin-1")
    if letter == "A":
        _location(record, data)
    elif letter == "B":
        _status(record, data)
    elif letter == "C":
        odometer = 0
        for c in data:
            odometer = (odometer << 4) + (c - 0x30)
        record.odometer = float(odometer * 2 * 1852 // 3600)
    elif letter == "F":
        record.speed = _digits(data, 4) / 10 * KNOTS
    elif letter == "G":
        record.altitude = _digits(data, 6) / 10
    elif letter == "J" and len(data) == 6:
        value = _digits(data[2:], 4) / 10
        attrs[f"temp{chr(data[0])}"] = str(-value if bit(data[1], 0) else value)
    elif letter == "K":
        attrs["statusExtended"] = text
    elif letter == "M" and len(data) == 3:
        record.battery_level = _digits(data, 3) / 10
    elif letter == "M" and len(data) == 4:
        attrs[f"humidity{chr(data[0])}"] = str(_digits(data[2:], 2))
    elif letter == "N":
        attrs[keys.RSSI] = str(_digits(data, 2))
    elif letter == "O":
        record.satellites = _digits(data, 2)
    elif letter == "P" and len(data) >= 16:
        attrs[keys.MCC], attrs[keys.MNC] = str(_digits(data, 4)), str(_digits(data[4:], 4))
        attrs[keys.LAC], attrs[keys.CELL_ID] = str(int(data[8:12], 16)), str(int(data[12:16], 16))
    elif letter == "Q" and not head.startswith("HQ"):
        attrs["obdPid"] = data.hex()
    elif letter == "R" and head.startswith("HQ"):
        attrs[keys.RSSI] = str(_digits(data, 2))
        record.satellites = _digits(data[2:], 2)
    elif letter == "R":
        attrs["odbTravel"] = data.hex()
    elif letter == "S":
        attrs["obdTraffic"] = data.hex()
    elif letter == "T" and len(data) == 2:
        record.battery_level = float(_digits(data, 2))
    elif letter == "V":
        record.power = _digits(data, 4) / 10
    elif letter == "W":
        if bit(_digits(data, 2), 2) and alarms.TAMPERING not in record.alarms:
            record.alarms.append(alarms.TAMPERING)
    elif letter == "X":
        _parameters(attrs, text)
    elif letter == "Y":
        _cells_or_power(record, text)
    elif letter == "b" and len(data) > 3:
        attrs["serial"] = text[3:]
    elif letter == "d":
        attrs["adc1"] = str(int(text) / 100)
    elif letter == "l" and len(data) >= 4:
        attrs["logisticsLock"] = str((data[0] - 0x30) & 0b111)


def _parameters(attrs: dict[str, str], text: str) -> None:
    if text.startswith("("):
        for parameter in text[1:-1].split(")("):
            if parameter[:1] == "J":
                attrs["timezone"] = parameter[1:]
            elif parameter[:1] == "k":
                attrs[keys.ICCID] = parameter[1:]
    elif text:
        attrs["cellTowers"] = text


def _cells_or_power(record: Record, text: str) -> None:
    count = int(text[:1]) if text[:1].isdecimal() else -1
    if count >= 0 and len(text) == 6 + count * 14:
        record.attributes["cellTowers"] = text
    else:
        record.power = _digits(text.encode("latin-1"), 5) / 1000


def _transparent(record: Record, body: bytes) -> None:
    if len(body) < 4:
        raise DecodeError("transparent block shorter than its header")
    kind, length = int.from_bytes(body[0:2], "big"), int.from_bytes(body[2:4], "big")
    data = body[4 : 4 + length]
    if len(data) < length:
        raise DecodeError("transparent block shorter than its length")
    if kind == DRIVER_CARD:
        record.attributes[keys.DRIVER_UNIQUE_ID] = data.decode("ascii", errors="replace")
    else:
        record.attributes["data"] = data.hex()


def _kind(header: _Header, body: bytes) -> str:
    if header.type + header.subtype == TRANSPARENT:
        return "other"
    return "position" if b"&A" in body else "status"


class UproCodec(Codec):
    name = "upro"
    first_bytes = b"*"
    priority = 20
    replies = True
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        return _prefix(head[:40])

    def new_framer(self) -> Framer:
        return DelimitedFramer(START, END, self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        header = _Header(frame)
        return FrameInfo(_kind(header, frame[header.end :]), header.device_id, header.reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes")
        header = _Header(frame)
        kind = _kind(header, frame[header.end :])
        record = Record()
        if header.type + header.subtype == TRANSPARENT:
            _transparent(record, frame[header.end :])
        else:
            for letter, data in _fields(_body(frame, header.end)):
                try:
                    _field(record, header.head, letter, data)
                except ValueError:
                    record.attributes.setdefault("badFields", "")
                    record.attributes["badFields"] += letter
        if not record.latitude or not record.longitude:
            record.latitude = record.longitude = None
            record.valid = False
            if not record.attributes and not record.alarms and record.fix_time is None:
                return Decoded(kind, header.device_id, [])
        if record.fix_time is None:
            record.fix_time = ctx.received_at
        return Decoded(kind, header.device_id, [record])


CODEC = UproCodec()
