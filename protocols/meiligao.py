"""Meiligao / legacy Meitrack GT30, GT60, VT300, VT400, TK218 (Traccar `meiligao`).

Binary envelope, big-endian, GPRMC-like ASCII payload::

    24 24 | len(2) | id (7 B BCD, F padded) | command(2) | data | crc(2) | 0D 0A

`len` is the whole frame; the CRC is CRC-16/CCITT-FALSE over everything before it.
The id is the digits up to the first `F` nibble (up to 14: an IMEI without its Luhn
digit on most units).

Commands: 5000 login, 0001 heartbeat, 0002 server address query, 9955 position,
9016 logged (buffered) position (6 leading bytes), 9999 alarm (alarm code byte first),
9966 RFID (15 x uint32 card numbers, then ``|hhmmss,ddmmyy,lat,N,lon,E``), 9977 position
with picture, 6688 retransmission (count, then ``alarm byte + sentence`` items separated
by ``\\``), 9901 OBD real-time values, 9902 OBD totals, 9903 DTCs, 0800/0F80/9988 photo
transfer.

Position sentence::

    hhmmss[.sss],A|V,ddmm.mmmm,N|S,dddmm.mmmm,E|W,speed(knots),course,ddmmyy[...]
        |hdop|altitude|state(4 hex)|adc1,adc2[,...adc8]|cell(16-20 hex)|rssi(2 hex)|odometer(8 hex)|sat(2 hex)|driver
                                                     or |odometer(decimal)|rfid(hex)

State bits 0-4 are outputs 1-5, bits 8-12 inputs 1-5.  Times are UTC.

Replies (framed ``@@`` + len + id + command + data + CRC + CRLF): login -> 4000 ``01``,
heartbeat -> 0001 ``01``, photo upload 0800 -> 8801 ``<index>``, upload complete 0F80 ->
6688 ``<index> 00 00``.  The 0002 query (answered with the server's own address by
Traccar) is not answered: a codec does not know the address it is reached at.
"""

from __future__ import annotations

import re
import struct

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
from .kit import alarms as A
from .kit.checksums import CRC16_CCITT_FALSE
from .kit.framing import LengthFramer, length_field, split_with
from .kit.readers import KNOTS, Reader, ddmm, ddmmyy_hhmmss, float_or_none

MAGIC = b"$$"
REPLY_MAGIC = b"@@"
TRAILER = b"\r\n"
HEADER = 13  # magic, length, id, command
MIN_FRAME = HEADER + 4
MAX_FRAME = 8192  # position/OBD frames are < 600 B; photo packets stay well below

HEARTBEAT = 0x0001
SERVER = 0x0002
LOGIN = 0x5000
LOGIN_REPLY = 0x4000
POSITION = 0x9955
POSITION_LOGGED = 0x9016
ALARM = 0x9999
RFID = 0x9966
POSITION_IMAGE = 0x9977
RETRANSMISSION = 0x6688
OBD_RT = 0x9901
OBD_RTA = 0x9902
DTC = 0x9903
UPLOAD_PHOTO = 0x0800
UPLOAD_PHOTO_REPLY = 0x8801
UPLOAD_COMPLETE = 0x0F80
DATA_PHOTO = 0x9988
# commands a unit sends (server commands 41xx/49xx are answered by the unit with the same code)
DEVICE_COMMANDS = frozenset(
    {
        HEARTBEAT,
        SERVER,
        LOGIN,
        POSITION,
        POSITION_LOGGED,
        ALARM,
        RFID,
        POSITION_IMAGE,
        RETRANSMISSION,
        OBD_RT,
        OBD_RTA,
        DTC,
        UPLOAD_PHOTO,
        UPLOAD_COMPLETE,
        DATA_PHOTO,
        0x4101,
        0x4102,
        0x4106,
        0x4114,
        0x4115,
        0x4132,
        0x4151,
        0x4902,
    }
)

ALARMS = {
    0x01: A.SOS,
    0x10: A.LOW_BATTERY,
    0x11: A.OVERSPEED,
    0x12: A.MOVEMENT,
    0x13: A.GEOFENCE_ENTER,
    0x14: A.ACCIDENT,
    0x50: A.POWER_OFF,
    0x53: A.GPS_ANTENNA_CUT,
    0x72: A.BRAKING,
    0x73: A.ACCELERATION,
}
ALARMS_TK218 = {
    0x01: A.SOS,
    0x10: A.LOW_BATTERY,
    0x11: A.OVERSPEED,
    0x12: A.MOVEMENT,
    0x13: A.GEOFENCE,
    0x60: A.FATIGUE_DRIVING,
    0x71: A.BRAKING,
    0x72: A.ACCELERATION,
    0x73: A.ACCIDENT,
    0x74: A.IDLE,
}

OBD_KEYS = (
    "battery",
    "rpm",
    "obdSpeed",
    "throttle",
    "engineLoad",
    "coolantTemp",
    "fuelConsumption",
    "averageFuelConsumption",
    "drivingRange",
    "odometer",
    "singleFuelConsumption",
    "fuelUsed",
    "dtcs",
    "hardAccelerationCount",
    "hardBrakingCount",
)
OBDA_KEYS = (
    "totalIgnitionNo",
    "totalDrivingTime",
    "totalIdlingTime",
    "averageHotStartTime",
    "averageSpeed",
    "historyHighestSpeed",
    "historyHighestRpm",
    "totalHarshAccerleration",
    "totalHarshBrake",
)

_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_TIME = re.compile(r"(\d{1,2})(\d\d)(\d\d)(\.\d*)?")
_LAT = re.compile(r"\d+\d\d\.\d+")
_DATE = re.compile(r"\d{6}")


crc = CRC16_CCITT_FALSE  # the frame CRC (devices import the name)


def encode_id(device_id: str) -> bytes:
    digits = device_id[:14]
    if not digits.isdigit():
        raise ValueError("a Meiligao id is up to 14 digits")
    return bytes.fromhex(digits.ljust(14, "f"))


def build(ident: bytes, command: int, data: bytes = b"", magic: bytes = MAGIC) -> bytes:
    body = magic + struct.pack(">H", HEADER + len(data) + 4) + ident + struct.pack(">H", command) + data
    return body + struct.pack(">H", crc(body)) + TRAILER


def _id_digits(ident: bytes) -> str | None:
    """The BCD digits before the F padding, None when the bytes are no such id."""
    text = ident.hex()
    digits = text.rstrip("f")
    if not digits.isdigit() or len(digits) < 1:
        return None
    return digits


def _body_end(frame: bytes) -> int:
    """Where the data ends (before CRC and CRLF), tolerating a missing CRLF."""
    n = len(frame)
    return n - 4 if frame.endswith(TRAILER) else n - 2


def _cut(frame: bytes) -> bytes:
    """The frame as its length field has it (extra trailing bytes dropped)."""
    total = int.from_bytes(frame[2:4], "big")
    if MIN_FRAME <= total < len(frame):
        return frame[:total]
    return frame


class _Frame:
    __slots__ = ("command", "data", "device_id", "ident")

    def __init__(self, frame: bytes, check: bool = True) -> None:
        if len(frame) < MIN_FRAME - 2 or frame[:2] not in (MAGIC, REPLY_MAGIC):
            raise DecodeError("not a Meiligao frame")
        frame = _cut(frame)
        end = _body_end(frame)
        if check and frame.endswith(TRAILER) and crc(frame[:end]) != int.from_bytes(frame[end : end + 2], "big"):
            raise ChecksumError("CRC-16/CCITT-FALSE mismatch")
        self.ident = frame[4:11]
        digits = _id_digits(self.ident)
        self.device_id = digits
        self.command = int.from_bytes(frame[11:13], "big")
        self.data = frame[HEADER:end]


def _kind(command: int) -> str:
    return {
        LOGIN: "login",
        HEARTBEAT: "heartbeat",
        POSITION: "position",
        POSITION_IMAGE: "position",
        RFID: "position",
        POSITION_LOGGED: "batch",
        RETRANSMISSION: "batch",
        ALARM: "alarm",
        OBD_RT: "status",
        OBD_RTA: "status",
        DTC: "status",
    }.get(command, "other")


def _reply(f: _Frame) -> bytes | None:
    if f.command == LOGIN:
        return build(f.ident, LOGIN_REPLY, b"\x01", REPLY_MAGIC)
    if f.command == HEARTBEAT:
        return build(f.ident, HEARTBEAT, b"\x01", REPLY_MAGIC)
    if f.command == UPLOAD_PHOTO and f.data:
        return build(f.ident, UPLOAD_PHOTO_REPLY, f.data[:1], REPLY_MAGIC)
    if f.command == UPLOAD_COMPLETE and f.data:
        return build(f.ident, RETRANSMISSION, f.data[:1] + b"\0\0", REPLY_MAGIC)
    return None


def _num(text: str) -> str | None:
    return text if _NUMBER.fullmatch(text) else None


def parse_sentence(sentence: str) -> Record | None:
    """A regular position sentence (None when its GPRMC part does not parse)."""
    parts = sentence.split("|")
    fields = parts[0].split(",")
    if len(fields) < 9:
        return None
    time, validity, lat, ns, lon, ew, speed, course, date = fields[:9]
    tm = _TIME.fullmatch(time)
    if not tm or validity not in ("A", "V") or ns not in ("N", "S") or ew not in ("E", "W"):
        return None
    if not _LAT.fullmatch(lat) or not _LAT.fullmatch(lon) or not _DATE.match(date):
        return None
    fix_time = ddmmyy_hhmmss(date[:6], tm.group(1).zfill(2) + tm.group(2) + tm.group(3) + (tm.group(4) or ""))
    try:
        latitude, longitude = ddmm(lat, ns), ddmm(lon, ew)
    except DecodeError:
        return None
    if abs(latitude) > 90 or abs(longitude) > 180:
        return None
    knots = float_or_none(speed)
    rec = Record(
        fix_time=fix_time,
        valid=validity == "A",
        latitude=latitude,
        longitude=longitude,
        speed=knots * KNOTS if knots is not None else 0.0,
        course=float_or_none(course) or 0.0,
    )
    _extras(rec, parts[1:])
    return rec


def _extras(rec: Record, parts: list[str]) -> None:
    """hdop | altitude | state | adc... | cell | rssi | odometer | sat | driver (each optional, in order)."""
    attrs = rec.attributes
    if not parts:
        return
    hdop = parts[0]
    if hdop and re.fullmatch(r"\d+\.\d+", hdop):
        attrs["hdop"] = hdop
    elif hdop:
        return
    if len(parts) < 2:
        return
    if parts[1]:
        if not _num(parts[1]) and not re.fullmatch(r"-?\d+\.?", parts[1]):
            return
        rec.altitude = float(parts[1].rstrip("."))
    if len(parts) < 3:
        return
    if parts[2]:
        if not _HEX4.fullmatch(parts[2]):
            return
        state = int(parts[2], 16)
        for i in range(5):
            attrs[f"out{i + 1}"] = str(bool(state >> i & 1)).lower()
            attrs[f"in{i + 1}"] = str(bool(state >> (i + 8) & 1)).lower()
    if len(parts) < 4:
        return
    adcs = parts[3].split(",")
    if not 2 <= len(adcs) <= 8 or not all(_HEX4.fullmatch(a) for a in adcs):
        return
    for i, a in enumerate(adcs, 1):
        attrs[f"adc{i}"] = str(int(a, 16))
    if len(parts) < 5:
        return
    cell = parts[4]
    if re.fullmatch(r"[0-9A-Fa-f]{16,20}", cell):
        for index, pattern, apply in (
            (5, r"[0-9A-Fa-f]{2}", lambda v: attrs.__setitem__("rssi", str(int(v, 16)))),
            (6, r"[0-9A-Fa-f]{8}", lambda v: setattr(rec, "odometer", float(int(v, 16)))),
            (7, r"[0-9A-Fa-f]{2}", lambda v: setattr(rec, "satellites", int(v, 16))),
        ):
            if len(parts) <= index or not re.fullmatch(pattern, parts[index]):
                return
            apply(parts[index])
        if len(parts) > 8:
            attrs["card"] = "|".join(parts[8:])
    elif re.fullmatch(r"\d{1,9}", cell):
        rec.odometer = float(int(cell))
        if len(parts) > 5 and re.fullmatch(r"[0-9A-Fa-f]{5,}", parts[5]):
            attrs["driverUniqueId"] = parts[5]


def _rfid(data: bytes) -> Record | None:
    r = Reader(data)
    cards: dict[str, str] = {}
    for i in range(15):
        value = r.u32()
        if value:
            cards[f"card{i + 1}"] = f"{value:010d}"
            cards["driverUniqueId"] = f"{value:010d}"
    m = re.match(r"\|(\d{6}),(\d{6}),(\d+\d\d\.\d+),([NS]),(\d+\d\d\.\d+),([EW])", r.rest().decode("latin-1"))
    if not m:
        return None
    rec = Record(
        fix_time=ddmmyy_hhmmss(m.group(2), m.group(1)),
        valid=True,
        latitude=ddmm(m.group(3), m.group(4)),
        longitude=ddmm(m.group(5), m.group(6)),
    )
    rec.attributes.update(cards)
    return rec


def _values(keys: tuple[str, ...], text: str, ctx: Context) -> Record | None:
    values = text.strip().split(",")
    if len(values) != len(keys) or not all(_num(v) for v in values):
        return None
    rec = Record(fix_time=ctx.received_at)
    for key, value in zip(keys, values, strict=True):
        if key == "battery":
            rec.battery = float(value)
        elif key == "odometer":
            rec.odometer = float(value)
        else:
            rec.attributes[key] = value
    return rec


def _retransmission(data: bytes) -> list[Record]:
    if not data:
        return []
    count = data[0]
    pos = 1
    records = []
    for _ in range(count):
        if pos >= len(data):
            break
        pos += 1  # alarm byte
        end = data.find(b"\\", pos)
        if end < 0:
            end = len(data)
        rec = parse_sentence(data[pos:end].decode("latin-1"))
        if rec is not None:
            rec.archive = True
            records.append(rec)
        pos = end + 1
    return records


def _alarm(rec: Record, code: int, model: str | None) -> None:
    table = ALARMS_TK218 if model == "TK218" else ALARMS
    alarm = table.get(code)
    if alarm:
        rec.alarms.append(alarm)
    if 0x02 <= code <= 0x05:
        rec.attributes[f"in{code}"] = "1"
    elif 0x32 <= code <= 0x35:
        rec.attributes[f"in{code - 0x30}"] = "0"


def _decode(f: _Frame, ctx: Context) -> list[Record]:
    c, data = f.command, f.data
    if c in (POSITION, POSITION_LOGGED, ALARM, POSITION_IMAGE):
        skip = {POSITION_LOGGED: 6, ALARM: 1, POSITION_IMAGE: 2}.get(c, 0)
        if len(data) < skip:
            raise DecodeError("truncated")
        rec = parse_sentence(data[skip:].decode("latin-1"))
        if rec is None:
            return []
        if c == ALARM:
            _alarm(rec, data[0], ctx.options.get("model"))
        rec.archive = c == POSITION_LOGGED
        return [rec]
    if c == RFID:
        rec = _rfid(data)
        return [rec] if rec else []
    if c == RETRANSMISSION:
        return _retransmission(data)
    text = data.decode("latin-1")
    if c == OBD_RT:
        rec = _values(OBD_KEYS, text, ctx)
        return [rec] if rec else []
    if c == OBD_RTA:
        rec = _values(OBDA_KEYS, text, ctx)
        return [rec] if rec else []
    if c == DTC:
        rec = Record(fix_time=ctx.received_at)
        rec.attributes["dtcs"] = text.replace(",", " ")
        return [rec]
    return []


def _id_prefix_ok(raw: bytes) -> bool:
    """BCD digits then only F padding (at least one digit once the 7 bytes are in)."""
    text = raw.hex()
    digits = text.rstrip("f")
    if not digits.isdigit() and digits:
        return False
    return len(raw) < 7 or bool(digits)


def _signature(head: bytes) -> Detection:
    """`$$` (or a unit's `@@` OBD frame) + length + BCD id + a device command, as far as `head` goes."""
    if head[:2] not in (MAGIC, REPLY_MAGIC):
        n = min(len(head), 2)
        return Detection.MORE if n < 2 and head[:n] in (MAGIC[:n], REPLY_MAGIC[:n]) else Detection.NO
    if len(head) >= 4:
        total = int.from_bytes(head[2:4], "big")
        if total < MIN_FRAME or total > MAX_FRAME:
            return Detection.NO
        if head[:2] == REPLY_MAGIC and len(head) != total:
            return Detection.NO  # `@@` only as a whole frame: the server's own framing otherwise
    if not _id_prefix_ok(head[4:11]):
        return Detection.NO
    if len(head) < HEADER:
        return Detection.MORE
    if int.from_bytes(head[11:13], "big") not in DEVICE_COMMANDS:
        return Detection.NO
    return Detection.YES


class MeiligaoCodec(Codec):
    name = "meiligao"
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_FRAME
    first_bytes = b"$@"
    priority = 20
    replies = True
    decoder_args = ()

    def detect(self, head: bytes, transport: str) -> Detection:
        verdict = _signature(head)
        if verdict is not Detection.YES:
            return verdict
        total = int.from_bytes(head[2:4], "big")
        if len(head) < total:
            return Detection.MORE
        frame = head[:total]
        if frame[-2:] != TRAILER or crc(frame[:-4]) != int.from_bytes(frame[-4:-2], "big"):
            return Detection.NO
        return Detection.YES

    def new_framer(self) -> Framer:
        return LengthFramer(self.max_frame, 4, length_field(2, 2, adjust=-4), magic=MAGIC, trailer=TRAILER)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        f = _Frame(frame)
        return FrameInfo(_kind(f.command), f.device_id, _reply(f))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        f = _Frame(frame, check=False)  # inspect has verified the CRC before the frame was kept
        return Decoded(_kind(f.command), f.device_id, _decode(f, ctx))


CODEC = MeiligaoCodec()
