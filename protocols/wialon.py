"""Wialon IPS 1.1 / 2.0 (Gurtam's open retransmission protocol; Traccar `wialon`).

ASCII lines ended by ``\\r\\n``; each packet is ``#TYPE#body``::

    #L#imei;password                         login, v1.1          -> #AL#1
    #L#2.0;imei;password;crc16               login, v2.0          -> #AL#1
    #SD#date;time;lat;N;lon;E;speed;course;alt;sats[;crc16]       -> #ASD#1
    #D#date;time;lat;N;lon;E;speed;course;alt;sats;hdop;inputs;outputs;adc;ibutton;params[;crc16]
                                                                  -> #AD#1
    #B#msg|msg|...[|crc16]                   buffered SD/D bodies -> #AB#<count>
    #P#                                      ping                 -> #AP#
    #M#text[;crc16]                          message to operator  -> #AM#1

``date`` is ``DDMMYY``, ``time`` ``hhmmss`` (UTC); coordinates ``(d)ddmm.mmmm`` + hemisphere;
speed km/h, course degrees, altitude metres.  Every field may be ``NA`` (unknown).  ``adc``
is a comma list (``adc1``, ``adc2`` ...), ``params`` is ``name:type:value`` items separated
by commas (type 1 integer, 2 double, 3 text; names are lower-cased as Traccar does;
``bat`` becomes the battery level, ``temp`` the device temperature, and a non-zero ``SOS``
parameter -- Wialon's alarm-button convention -- also raises the ``sos`` alarm).

Wialon IPS 2.0 appends a CRC-16/ARC of everything after ``#TYPE#`` up to and including the
last ``;`` (for ``#B#``: up to the last ``|``).  It is checked when present: a wrong one is a
`ChecksumError` (never acknowledged, the unit resends).

Over UDP every packet carries the id in front: ``[2.0;]imei#D#...``; a TCP connection
names its unit once, in ``#L#``.  Replies are the bare ``#A<TYPE>#<code>\\r\\n`` strings
(Traccar adds no CRC to them).
"""

from __future__ import annotations

import re

from .base import (
    ChecksumError,
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
from .kit.checksums import CRC16_ARC
from .kit.framing import LineFramer, split_with
from .kit.readers import ddmm, ddmmyy_hhmmss

TYPES = ("L", "SD", "D", "B", "P", "M", "I", "US", "UC")
KINDS = {"L": "login", "P": "heartbeat", "SD": "position", "D": "position", "B": "batch", "M": "other"}
MAX_ID = 32
MIN_VALID_SATELLITES = 3
SOS_PARAM = "sos"  # Wialon's alarm-button convention: `SOS:1:1` in the params

_HEADER = re.compile(rb"(?:(\d\.\d);)?([^#;\s]{0,32})#([A-Z]{1,2})#")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_PARAM = re.compile(r"(.*):([1-3]):(.*)")


def _prefix_detect(head: bytes) -> Detection:
    """`[d.d;][id]#TYPE#` as far as `head` goes."""
    match = _HEADER.match(head)
    if match:
        if match.group(3).decode() in TYPES and (match.group(2) or head[:1] == b"#"):
            return Detection.YES
        return Detection.NO
    # still a possible prefix?
    if b"#" not in head:
        if len(head) > MAX_ID + 4 or not re.fullmatch(rb"(?:\d(?:\.(?:\d;?)?)?)?" + rb"[0-9A-Za-z_.:-]*", head):
            return Detection.NO
        return Detection.MORE
    at = head.index(b"#")
    lead, rest = head[:at], head[at + 1 :]
    if lead and not re.fullmatch(rb"(?:\d\.\d;)?[0-9A-Za-z_.:-]{1,32}", lead):
        return Detection.NO
    if b"#" in rest:
        return Detection.NO
    typed = rest.decode("latin-1")
    return Detection.MORE if any(t.startswith(typed) for t in TYPES) else Detection.NO


class _Packet:
    __slots__ = ("body", "device_id", "kind", "type", "version")

    def __init__(self, frame: bytes) -> None:
        text = frame.rstrip(b"\r\n")
        match = _HEADER.match(text)
        if not match or match.group(3).decode() not in TYPES:
            raise DecodeError("not a Wialon IPS packet ([id]#TYPE#...)")
        self.version = match.group(1).decode() if match.group(1) else None
        self.device_id = match.group(2).decode("latin-1") or None
        self.type = match.group(3).decode()
        self.kind = KINDS.get(self.type, "other")
        self.body = text[match.end() :].decode("utf-8", errors="replace")


def _split_crc(body: str, sep: str, fields_without_crc: tuple[int, ...]) -> tuple[str, str | None]:
    """(body without its CRC, the CRC text or None) when the last field is a CRC-16."""
    head, found, last = body.rpartition(sep)
    if not found or not _HEX4.fullmatch(last):
        return body, None
    if fields_without_crc and body.count(sep) not in fields_without_crc:
        return body, None
    return head, last


def _check_crc(signed: str, crc: str | None) -> None:
    if crc is not None and CRC16_ARC(signed.encode("utf-8")) != int(crc, 16):
        raise ChecksumError(f"CRC-16 {crc} does not match")


def _checked_body(packet: _Packet) -> str:
    """The body with a v2.0 CRC verified and removed."""
    body = packet.body
    if packet.type == "SD":
        head, crc = _split_crc(body, ";", (10,))
        _check_crc(head + ";", crc)
        return head
    if packet.type == "D":
        head, crc = _split_crc(body, ";", (16,))
        _check_crc(head + ";", crc)
        return head
    if packet.type == "L":
        parts = body.split(";")
        if len(parts) == 4 and "." in parts[0]:
            _check_crc(";".join(parts[:3]) + ";", parts[3] if _HEX4.fullmatch(parts[3]) else None)
        return body
    if packet.type == "B":
        head, crc = _split_crc(body, "|", ())
        if crc is not None:
            _check_crc(head + "|", crc)
            return head
        return body
    if packet.type == "M" and packet.version:
        head, crc = _split_crc(body, ";", ())
        _check_crc(head + ";", crc)
        return head
    return body


def _login_id(body: str) -> str | None:
    parts = body.split(";")
    ident = parts[1] if "." in parts[0] and len(parts) > 1 else parts[0]
    return ident or None


def _reply(packet: _Packet, body: str) -> bytes | None:
    if packet.type == "L":
        return b"#AL#1\r\n"
    if packet.type == "P":
        return b"#AP#\r\n"
    if packet.type in ("D", "SD", "M"):
        return f"#A{packet.type}#1\r\n".encode()
    if packet.type == "B":
        return f"#AB#{len(body.split('|')) if body else 0}\r\n".encode()
    return None


def _na(value: str) -> str | None:
    return None if value in ("", "NA") else value


def _number(value: str) -> float | None:
    v = _na(value)
    if v is None:
        return None
    try:
        return float(v)
    except ValueError as exc:
        raise DecodeError(f"not a number: {value!r}") from exc


def _param_value(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        lower = value.lower()
        return lower if lower in ("true", "false") else value
    return str(number)


def _position(body: str, ctx: Context) -> Record | None:
    """One SD/D body as a record (None when it is no position message at all)."""
    f = body.split(";")
    if len(f) < 10:
        return None
    record = Record()
    date, time = _na(f[0]), _na(f[1])
    if date and time:
        if not (date.isdecimal() and time.isdecimal() and len(date) == 6 and len(time) == 6):
            raise DecodeError(f"bad date/time {date};{time}")
        record.fix_time = ddmmyy_hhmmss(date, time)
        if record.fix_time is None:
            raise DecodeError(f"bad date/time {date};{time}")
    else:
        record.fix_time = ctx.received_at
    lat, lat_h, lon, lon_h = (_na(x) for x in f[2:6])
    if lat and lon and lat_h in ("N", "S") and lon_h in ("E", "W"):
        record.latitude = ddmm(lat, lat_h)
        record.longitude = ddmm(lon, lon_h)
        if abs(record.latitude) > 90 or abs(record.longitude) > 180:
            raise DecodeError("coordinates out of range")
        record.speed = _number(f[6]) or 0.0
        record.course = _number(f[7]) or 0.0
        record.altitude = _number(f[8]) or 0.0
    sats = _na(f[9])
    if sats is not None:
        if not sats.isdecimal():
            raise DecodeError(f"bad satellites {sats!r}")
        record.satellites = int(sats)
        record.valid = record.satellites >= MIN_VALID_SATELLITES
    if len(f) >= 16:
        _extended(record, f)
    return record


def _extended(record: Record, f: list[str]) -> None:
    attrs = record.attributes
    hdop = _number(f[10])
    if hdop is not None:
        attrs[keys.HDOP] = str(hdop)
    for key, value in ((keys.INPUT, f[11]), (keys.OUTPUT, f[12])):
        if _na(value) is not None:
            attrs[key] = value
    adc = _na(f[13])
    if adc is not None:
        for i, value in enumerate(adc.split(","), 1):
            attrs[keys.numbered("adc", i)] = value
    ibutton = _na(f[14])
    if ibutton is not None:
        attrs[keys.DRIVER_UNIQUE_ID] = ibutton
    params = _na(";".join(f[15:]))
    if params is None:
        return
    for item in params.split(","):
        match = _PARAM.fullmatch(item)
        if match:
            attrs[match.group(1).lower()] = _param_value(match.group(3))
    if "accuracy" in attrs:
        attrs["accuracy"] = attrs.pop("accuracy")
    if "bat" in attrs:
        try:
            record.battery_level = float(attrs.pop("bat"))
        except ValueError:
            pass
    if "temp" in attrs:
        attrs[keys.DEVICE_TEMP] = attrs.pop("temp")
    if attrs.get(SOS_PARAM) not in (None, "0.0", "false"):
        record.alarms.append(alarms.SOS)
    _cells(attrs)


def _cells(attrs: dict[str, str]) -> None:
    """`mcc/mnc/lac/cell_id[N]` groups as cell towers: `cellTowers` = "mcc,mnc,lac,cid;..."."""
    towers = []
    for suffix in ("", *map(str, range(1, 10))):
        names = [n + suffix for n in ("mcc", "mnc", "lac", "cell_id")]
        if not all(n in attrs for n in names):
            if suffix:
                break
            continue
        try:
            values = [int(float(attrs[n])) for n in names]
        except ValueError:
            break
        for n in names:
            del attrs[n]
        towers.append(",".join(map(str, values)))
    if towers:
        attrs["cellTowers"] = ";".join(towers)


class WialonCodec(Codec):
    name = "wialon"
    first_bytes = b"#0123456789"
    priority = 30
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 32768  # Traccar's line limit; #B# packets can be long

    def detect(self, head: bytes, transport: str) -> Detection:
        return _prefix_detect(head[: MAX_ID + 12])

    def new_framer(self) -> Framer:
        return LineFramer(self.max_frame, b"\n")

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        if not datagram.endswith(b"\n"):
            datagram += b"\r\n"
        return split_with(self.new_framer(), datagram)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        packet = _Packet(frame)
        body = _checked_body(packet)
        device_id = _login_id(body) if packet.type == "L" else packet.device_id
        return FrameInfo(packet.kind, device_id, _reply(packet, body))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes")
        packet = _Packet(frame)
        body = _checked_body(packet)
        if packet.type == "L":
            return Decoded("login", _login_id(body), [])
        if packet.type in ("SD", "D"):
            record = _position(body, ctx)
            kind = "alarm" if record is not None and record.alarms else packet.kind
            return Decoded(kind, packet.device_id, [record] if record else [])
        if packet.type == "B":
            records = []
            for message in body.split("|"):
                record = _position(message, ctx)
                if record is not None:
                    record.archive = True
                    records.append(record)
            return Decoded("batch", packet.device_id, records)
        if packet.type == "M":
            record = Record(fix_time=ctx.received_at, attributes={keys.RESULT: body})
            return Decoded("other", packet.device_id, [record])
        return Decoded(packet.kind, packet.device_id, [])


CODEC = WialonCodec()
