"""Castel / Sinocastel OBD trackers (IDD-213, CC830, PT-690 ...; Traccar `castel`).

Binary, little-endian except the message type.  Three families share the frame::

    40 40 | len(2 LE) | version(1) | device id (20 B ASCII, NUL padded) | type(2 BE) | body | crc(2 LE) | 0D 0A
    24 24 | len(2 LE) |              device id (20 B)                    | type(2 BE) | body | crc(2 LE) | 0D 0A  (MPIP)

`len` counts the whole frame; the CRC is CRC-16/X-25 over everything before it.
Version 3 or 4 is the SC protocol (IDD-213 OBD dongles), any other version the CC
protocol (CC830 personal trackers); the `$$` frames are the MPIP variant.

SC types: 1001 login, 1002 logout, 1003 heartbeat, 4001 GPS, 4002 PID data, 4003
G-sensor, 4004 supported PIDs, 4005 OBD data, 4006/400B DTCs, 4007 alarm, 4008 cell,
4009 GPS in sleep, 400E fuel, 401F comprehensive (TLVs), 5101 AGPS request, A002 query
answer, B001 current location.  CC: 4001 login, 4206 heartbeat with positions.  MPIP:
4001, 2001 (login), 4201/4202/4206 single fix, 4204 eight fixes.

Most SC bodies start with a statistics block: ACC-on time, UTC time, odometer (m),
trip odometer (m), total fuel, current fuel (2), status (4), 8 reserved.  A GPS item is
dd mm yy hh mm ss (UTC), lat, lon (uint32 LE milli-arcseconds), speed (cm/s), course
(0.1 deg), flags (bit0 east, bit1 north, bits 2-3 fix, bits 4-7 satellites).

Replies (`@@` + len + version + id + type + content + CRC + CRLF): SC login 1001 ->
9001 (`FFFFFFFF` keep address, port 0, UTC seconds: needs the server clock), heartbeat
1003 -> 9003, alarm 4007 -> C007 (alarm index echoed); CC login 4001 -> 8001, heartbeat
4206 -> 8206; MPIP 4001 -> 4001 (version byte FF), 2001 -> 1001 (no version, 4 zero
bytes and 8 x FF).
"""

from __future__ import annotations

import struct
from datetime import datetime

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
from .kit.checksums import CRC16_X25
from .kit.framing import LengthFramer, split_with
from .kit.readers import Reader, utc

SC_MAGIC = b"@@"
MPIP_MAGIC = b"$$"
MAGICS = (SC_MAGIC, MPIP_MAGIC)
TRAILER = b"\r\n"
ID_LEN = 20
MIN_FRAME = 2 + 2 + ID_LEN + 2 + 2 + 2  # MPIP frame without body
MAX_FRAME = 1024
SC_VERSIONS = (3, 4)

# SC types
SC_LOGIN = 0x1001
SC_LOGIN_REPLY = 0x9001
SC_LOGOUT = 0x1002
SC_HEARTBEAT = 0x1003
SC_HEARTBEAT_REPLY = 0x9003
SC_GPS = 0x4001
SC_PID = 0x4002
SC_G_SENSOR = 0x4003
SC_SUPPORTED_PID = 0x4004
SC_OBD = 0x4005
SC_DTCS_PASSENGER = 0x4006
SC_ALARM = 0x4007
SC_ALARM_REPLY = 0xC007
SC_CELL = 0x4008
SC_GPS_SLEEP = 0x4009
SC_DTCS_COMMERCIAL = 0x400B
SC_FUEL = 0x400E
SC_COMPREHENSIVE = 0x401F
SC_AGPS = 0x5101
SC_QUERY_REPLY = 0xA002
SC_CURRENT_LOCATION = 0xB001
# CC types
CC_LOGIN = 0x4001
CC_LOGIN_REPLY = 0x8001
CC_HEARTBEAT = 0x4206
CC_HEARTBEAT_REPLY = 0x8206
# MPIP types
MPIP_GPS = 0x4001
MPIP_LOGIN = 0x2001
MPIP_LOGIN_REPLY = 0x1001
MPIP_SINGLE = (0x4201, 0x4202, 0x4206)
MPIP_MULTI = 0x4204

STAT_LEN = 4 + 4 + 4 + 4 + 4 + 2 + 4 + 8
FIX_LEN = 6 + 4 + 4 + 2 + 2 + 1

ALARM_CODES: dict[int, str] = {
    0x01: A.OVERSPEED,
    0x02: A.LOW_POWER,
    0x03: A.TEMPERATURE,
    0x04: A.ACCELERATION,
    0x05: A.BRAKING,
    0x06: A.IDLE,
    0x07: A.TOW,
    0x08: A.HIGH_RPM,
    0x09: A.POWER_ON,
    0x0B: A.LANE_CHANGE,
    0x0C: A.CORNERING,
    0x0D: A.FATIGUE_DRIVING,
    0x0E: A.POWER_OFF,
    0x11: A.ACCIDENT,
    0x12: A.TAMPERING,
    0x1C: A.VIBRATION,
}
IGNITION_ON_EVENT = 0x16
IGNITION_OFF_EVENT = 0x17

# OBD PID -> value width (bytes); unknown PIDs end the value list (width unknown).
_PID_WIDTHS: dict[int, int] = {}
for _width, _pids in (
    (1, "04 05 06 07 08 09 0b 0d 0e 0f 11 12 13 1c 1d 1e 2c 2d 2e 2f 30 33 43 45 46 47 48 49 4a 4b 4c 51 52 5a"),
    (2, "02 03 0a 0c 10 14 15 16 17 18 19 1a 1b 1f 21 22 23 31 32 3c 3d 3e 3f 42 44 4d 4e 50 53 54 55 56 57 58 59 9d"),
    (4, "00 01 20 24 25 26 27 28 29 2a 2b 34 35 36 37 38 39 3a 3b 40 41 4f 67 a6"),
):
    for _pid in _pids.split():
        _PID_WIDTHS[int(_pid, 16)] = _width
# PID -> Traccar key (values as the dongle reports them, already scaled)
PID_KEYS = {
    0x04: "engineLoad",
    0x05: "coolantTemp",
    0x0B: "mapIntake",
    0x0C: "rpm",
    0x0D: "obdSpeed",
    0x0F: "intakeTemp",
    0x11: "throttle",
    0x21: "milDistance",
    0x2F: "fuel",
    0x31: "clearedDistance",
}


crc = CRC16_X25  # the frame CRC (devices import the name)


def build_frame(device_id: str | bytes, type_: int, content: bytes = b"", version: int | None = 4) -> bytes:
    """An `@@` frame (version given) or an MPIP `$$` frame (version None)."""
    ident = device_id.encode("ascii") if isinstance(device_id, str) else device_id
    ident = ident[:ID_LEN].ljust(ID_LEN, b"\0")
    head = SC_MAGIC if version is not None else MPIP_MAGIC
    ver = b"" if version is None else bytes((version & 0xFF,))
    length = len(head) + 2 + len(ver) + ID_LEN + 2 + len(content) + 2 + len(TRAILER)
    body = head + struct.pack("<H", length) + ver + ident + struct.pack(">H", type_) + content
    return body + struct.pack("<H", crc(body)) + TRAILER


def _reply_frame(version: int, ident: bytes, type_: int, content: bytes = b"") -> bytes:
    return build_frame(ident, type_, content, version)


# ------------------------------------------------------------------ framing


def _frame_size(head: bytes | bytearray) -> int:
    return int.from_bytes(head[2:4], "little")


# ------------------------------------------------------------------ parsing


class _Frame:
    __slots__ = ("body", "family", "ident", "type", "version")

    def __init__(self, frame: bytes, check: bool = True) -> None:
        if len(frame) < MIN_FRAME or frame[:2] not in MAGICS:
            raise DecodeError("not a Castel frame")
        total = _frame_size(frame)
        if total < MIN_FRAME or total > len(frame):
            raise DecodeError(f"length field {total}, frame of {len(frame)} bytes")
        frame = frame[:total]
        if check and crc(frame[:-4]) != int.from_bytes(frame[-4:-2], "little"):
            raise ChecksumError("CRC-16/X-25 mismatch")
        pos = 4
        if frame[:2] == SC_MAGIC:
            if total < MIN_FRAME + 1:
                raise DecodeError("frame too short")
            self.version = frame[4]
            self.family = "sc" if self.version in SC_VERSIONS else "cc"
            pos = 5
        else:
            self.version = 0xFF
            self.family = "mpip"
        self.ident = frame[pos : pos + ID_LEN]
        self.type = int.from_bytes(frame[pos + ID_LEN : pos + ID_LEN + 2], "big")
        self.body = frame[pos + ID_LEN + 2 : -4]

    @property
    def device_id(self) -> str:
        return self.ident.decode("latin-1").replace("\0", " ").strip()


def _sc_kind(t: int) -> str:
    return {
        SC_LOGIN: "login",
        SC_LOGOUT: "other",
        SC_HEARTBEAT: "heartbeat",
        SC_ALARM: "alarm",
        SC_GPS: "position",
        SC_GPS_SLEEP: "position",
        SC_AGPS: "position",
        SC_CURRENT_LOCATION: "position",
        SC_FUEL: "position",
        SC_COMPREHENSIVE: "position",
    }.get(t, "status")


def _kind(f: _Frame) -> str:
    if f.family == "sc":
        kind = _sc_kind(f.type)
        if f.type in (SC_GPS, SC_COMPREHENSIVE) and f.body[:1] not in (b"", b"\0"):
            kind = "batch"
        return kind
    if f.family == "cc":
        return {CC_LOGIN: "login", CC_HEARTBEAT: "heartbeat"}.get(f.type, "other")
    if f.type == MPIP_LOGIN:
        return "login"
    if f.type == MPIP_GPS or f.type in MPIP_SINGLE or f.type == MPIP_MULTI:
        return "position"
    return "other"


def _reply(f: _Frame) -> bytes | None:
    if f.family == "sc":
        if f.type == SC_HEARTBEAT:
            return _reply_frame(f.version, f.ident, SC_HEARTBEAT_REPLY)
        if f.type == SC_ALARM and len(f.body) >= 4:
            return _reply_frame(f.version, f.ident, SC_ALARM_REPLY, f.body[:4])
        return None
    if f.family == "cc":
        if f.type == CC_LOGIN:
            return _reply_frame(f.version, f.ident, CC_LOGIN_REPLY)
        if f.type == CC_HEARTBEAT:
            return _reply_frame(f.version, f.ident, CC_HEARTBEAT_REPLY)
        return None
    if f.type == MPIP_GPS:
        return _reply_frame(0xFF, f.ident, MPIP_GPS)
    if f.type == MPIP_LOGIN:
        body = f.ident + struct.pack(">H", MPIP_LOGIN_REPLY) + b"\0\0\0\0" + b"\xff" * 8
        head = SC_MAGIC + struct.pack("<H", len(body) + 8) + body  # `@@`, no version byte
        return head + struct.pack("<H", crc(head)) + TRAILER
    return None


def login_reply(frame: bytes, now: datetime) -> bytes:
    """SC 9001: keep the server address (FFFFFFFF), port 0, the server's UTC seconds."""
    f = _Frame(frame, check=False)
    content = b"\xff\xff\xff\xff" + b"\0\0" + struct.pack("<I", int(now.timestamp()) & 0xFFFFFFFF)
    return _reply_frame(f.version, f.ident, SC_LOGIN_REPLY, content)


def _fix(r: Reader) -> Record:
    day, month, year, hour, minute, second = r.bytes(6)
    lat = r.u32_le() / 3_600_000
    lon = r.u32_le() / 3_600_000
    speed = r.u16_le() * 0.036  # cm/s -> km/h
    course = r.u16_le() / 10
    flags = r.u8()
    if not flags & 0x02:
        lat = -lat
    if not flags & 0x01:
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise DecodeError(f"coordinates out of range: {lat}, {lon}")
    return Record(
        fix_time=utc(year, month, day, hour, minute, second),
        valid=bool(flags & 0x0C),
        latitude=lat,
        longitude=lon,
        speed=speed,
        course=course,
        satellites=flags >> 4,
    )


class _Stat:
    __slots__ = ("fuel", "odometer", "status", "trip")

    def __init__(self, r: Reader) -> None:
        r.skip(8)  # ACC-on time, UTC time
        self.odometer = r.u32_le()
        self.trip = r.u32_le()
        self.fuel = r.u32_le()
        r.skip(2)  # current fuel consumption
        self.status = r.u32_le()
        r.skip(8)

    def apply(self, rec: Record, state_alarms: bool) -> None:
        rec.odometer = float(self.odometer)
        rec.attributes["tripOdometer"] = str(self.trip)
        rec.attributes["fuelConsumption"] = str(self.fuel)
        rec.attributes["status"] = str(self.status)
        if state_alarms:
            for index, alarm in ((4, A.ACCELERATION), (5, A.BRAKING), (6, A.IDLE)):
                if self.status >> index & 1:
                    rec.alarms.append(alarm)
            rec.ignition = bool(self.status >> 18 & 1)


def _status_record(ctx: Context) -> Record:
    return Record(fix_time=ctx.received_at)


def _apply_alarm(rec: Record, event: int) -> None:
    alarm = ALARM_CODES.get(event)
    if alarm and alarm not in rec.alarms:
        rec.alarms.append(alarm)
    elif event == IGNITION_ON_EVENT:
        rec.ignition = True
    elif event == IGNITION_OFF_EVENT:
        rec.ignition = False


def _obd(r: Reader, rec: Record, groups: bool) -> None:
    count = r.u8()
    pids = [r.u16_le() & 0xFF for _ in range(count)]
    if groups:
        r.skip(2)  # group count, group size
    for pid in pids:
        width = _PID_WIDTHS.get(pid)
        if width is None:
            rec.attributes.setdefault("unknownPid", f"{pid:02x}")
            return
        value = r.uint(width, "little", signed=width == 4)
        key = PID_KEYS.get(pid)
        if key:
            rec.attributes[key] = str(value)


def dtc(value: int) -> str:
    return "PCBU"[value >> 14] + f"{value & 0x3FFF:04X}"


def _fmt(value: float) -> str:
    return repr(float(value))


def _comprehensive_tlvs(r: Reader, rec: Record) -> None:
    while r.remaining > 4:
        tag = r.u16_le()
        length = r.u16_le()
        if tag == 0x0002:
            for _ in range(r.u8()):
                pid = r.u16_le()
                rec.attributes[f"pid{pid}"] = r.bytes(r.u16_le()).hex()
        elif tag == 0x0006:
            r.skip(1)
            for i in range(1, r.u8() + 1):
                rec.attributes[f"fault{i}"] = str(r.u16_le())
        elif tag == 0x0007:
            r.skip(4)
            for _ in range(r.u8()):
                flag, event = r.u8(), r.u8()
                if flag:
                    _apply_alarm(rec, event)
                r.skip(4)
        elif tag == 0x000B:
            r.skip(1)
            for i in range(1, r.u8() + 1):
                rec.attributes[f"fault{i}"] = str(r.u32_le())
            r.skip(2)
        elif tag == 0x0010:
            rec.attributes["deviceTemp"] = _fmt(r.i16_le() / 10)
        elif 0x0011 <= tag <= 0x0014:
            rec.attributes[f"temp{tag - 0x10}"] = _fmt(r.i16_le() / 10)
        elif tag == 0x0020:
            rec.power = r.u16_le() / 100
        elif tag == 0x0021:
            rec.battery = r.u16_le() / 100
        else:
            r.skip(length)


def _decode_sc(f: _Frame, r: Reader, ctx: Context) -> list[Record]:
    t = f.type
    if t in (SC_LOGIN, SC_LOGOUT, SC_GPS, SC_ALARM, SC_CURRENT_LOCATION, SC_FUEL, SC_COMPREHENSIVE):
        archive = False
        if t in (SC_GPS, SC_COMPREHENSIVE):
            archive = r.u8() != 0
            if t == SC_COMPREHENSIVE:
                r.skip(4)  # index
        elif t == SC_ALARM:
            r.skip(4)  # alarm index
        elif t == SC_CURRENT_LOCATION:
            r.skip(2)
        stat = _Stat(r)
        records = []
        for _ in range(r.u8()):
            rec = _fix(r)
            rec.archive = archive
            stat.apply(rec, state_alarms=False)
            records.append(rec)
        if t == SC_ALARM:
            for _ in range(r.u8()):
                if r.u8():
                    event = r.u8()
                    for rec in records:
                        _apply_alarm(rec, event)
                    r.skip(4)
        elif t == SC_FUEL:
            for rec in records:
                rec.attributes["adc1"] = str(r.u16_le())
        elif t == SC_COMPREHENSIVE:
            if not records:
                rec = _status_record(ctx)
                stat.apply(rec, state_alarms=False)
                records.append(rec)
            _comprehensive_tlvs(r, records[-1])
        elif t == SC_LOGIN and records and r.remaining > 2:
            _versions(r, records[-1])
        return records
    if t == SC_HEARTBEAT:
        return []
    if t == SC_GPS_SLEEP:
        r.skip(4)
        return [_fix(r)]
    if t == SC_AGPS:
        return [_fix(r)]
    if t == SC_QUERY_REPLY:
        rec = _status_record(ctx)
        r.skip(4)  # index, response count, response index
        r.skip(2 * r.u8())  # failed tags
        for _ in range(r.u8()):
            r.skip(2)
            rec.attributes["result"] = r.bytes(r.u16_le()).decode("latin-1")
        return [rec]
    if t not in (SC_PID, SC_G_SENSOR, SC_DTCS_PASSENGER, SC_DTCS_COMMERCIAL, SC_OBD, SC_CELL, SC_SUPPORTED_PID):
        return []
    rec = _status_record(ctx)
    _Stat(r).apply(rec, state_alarms=True)
    if t == SC_PID:
        r.skip(2)  # sample rate
        _obd(r, rec, groups=True)
    elif t == SC_G_SENSOR:
        r.skip(2)
        samples = []
        for _ in range(r.u8()):
            x, y, z = (r.i16_le() * 0.015625 for _ in range(3))
            samples.append(f"[{_fmt(x)},{_fmt(y)},{_fmt(z)}]")
        rec.attributes["gSensor"] = "[" + ",".join(samples) + "]"
    elif t in (SC_DTCS_PASSENGER, SC_DTCS_COMMERCIAL):
        r.skip(1)
        codes = []
        for _ in range(r.u8()):
            codes.append(dtc(r.u16_le()))
            if t == SC_DTCS_COMMERCIAL:
                r.skip(2)  # attribute, occurrence
        rec.attributes["dtcs"] = " ".join(codes)
    elif t == SC_OBD:
        r.skip(1)
        _obd(r, rec, groups=False)
    elif t == SC_CELL:
        rec.attributes["lac"] = str(r.u16_le())
        rec.attributes["cid"] = str(r.u16_le())
    elif t == SC_SUPPORTED_PID:
        return []
    return [rec]


def _versions(r: Reader, rec: Record) -> None:
    """Login trailer: firmware and hardware version strings (NUL terminated), best effort."""
    rest = r.rest()
    parts = [p.decode("latin-1") for p in rest.split(b"\0")]
    texts = [p for p in parts if len(p) > 3 and p.isprintable()]
    if texts:
        rec.attributes["versionFw"] = texts[0]
    if len(texts) > 1:
        rec.attributes["versionHw"] = texts[1]


def _cc_extra(r: Reader, rec: Record) -> None:
    rec.attributes["status"] = str(r.u32_le())
    rec.battery = float(r.u8())
    rec.odometer = float(r.u32_le())
    r.skip(3)  # geofence id, geofence flags, additional flags


def _decode_cc(f: _Frame, r: Reader) -> list[Record]:
    if f.type == CC_HEARTBEAT:
        archive = r.u8() == 1
        records = []
        for _ in range(r.u8()):
            rec = _fix(r)
            rec.archive = archive
            _cc_extra(r, rec)
            rec.attributes["lac"] = str(r.u16_le())
            rec.attributes["cid"] = str(r.u16_le())
            records.append(rec)
        return records
    if f.type == CC_LOGIN:
        rec = _fix(r)
        _cc_extra(r, rec)
        return [rec]
    return []


def _decode_mpip(f: _Frame, r: Reader) -> list[Record]:
    if f.type == MPIP_GPS or f.type in MPIP_SINGLE:
        return [_fix(r)]
    if f.type == MPIP_LOGIN:
        r.skip(9)  # index, unix time, 1 byte
        return [_fix(r)]
    if f.type == MPIP_MULTI:
        records = []
        for _ in range(8):
            records.append(_fix(r))
            r.skip(31)
        return records
    return []


def _id_ok(ident: bytes | bytearray) -> bool:
    return all(b == 0 or 0x20 <= b < 0x7F for b in ident)


class CastelCodec(Codec):
    name = "castel"
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_FRAME
    first_bytes = b"@$"
    priority = 10
    replies = True

    def detect(self, head: bytes, transport: str) -> Detection:
        for magic in MAGICS:
            n = min(len(head), 2)
            if head[:n] == magic[:n]:
                break
        else:
            return Detection.NO
        if len(head) < 4:
            return Detection.MORE
        total = _frame_size(head)
        sc = head[:2] == SC_MAGIC
        if total < MIN_FRAME + sc or total > MAX_FRAME:
            return Detection.NO
        id_start = 5 if sc else 4
        if not _id_ok(head[id_start : id_start + ID_LEN]):
            return Detection.NO
        if len(head) < total:
            return Detection.MORE
        frame = head[:total]
        if frame[-2:] != TRAILER or crc(frame[:-4]) != int.from_bytes(frame[-4:-2], "little"):
            return Detection.NO
        return Detection.YES

    def new_framer(self) -> Framer:
        # `@@`/`$$` + LE total length; the frame must end in CR LF where the length says
        return LengthFramer(self.max_frame, 4, _frame_size, magic=MAGICS, trailer=TRAILER, minimum=MIN_FRAME)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        f = _Frame(frame)
        clock = f.family == "sc" and f.type == SC_LOGIN
        return FrameInfo(_kind(f), f.device_id or None, None if clock else _reply(f), clock_reply=clock)

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        f = _Frame(frame)
        if f.family == "sc" and f.type == SC_LOGIN:
            return login_reply(frame, now)
        return _reply(f)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        f = _Frame(frame)
        r = Reader(f.body)
        if f.family == "sc":
            records = _decode_sc(f, r, ctx)
        elif f.family == "cc":
            records = _decode_cc(f, r)
        else:
            records = _decode_mpip(f, r)
        return Decoded(_kind(f), f.device_id or None, records)


CODEC = CastelCodec()
