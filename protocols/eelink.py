"""Eelink TK115/TK116/TK119, GPT series (Traccar `eelink`).

Binary, big-endian.  A packet::

    67 67 | type(1) | len(2) | index(2) | content          (len counts index + content)

Over UDP packets travel in an envelope carrying the IMEI::

    45 4C ("EL") | len(2) | checksum(2) | IMEI (8 B BCD, leading 0) | packet [packet ...]

where `len` counts checksum, IMEI and packets, and the checksum is a 16-bit
rotate-left-and-add over the IMEI and packets.  Over TCP the IMEI comes once, in the
login packet (8 B BCD right after the index).

Types: 01 login, 02 GPS (old), 03 heartbeat (status word), 04 alarm (old), 05 state
(old), 06 SMS (old), 07 OBD (PID + int32 list), 80 command result (text), 81 data,
12 normal, 14 warning, 15 report, 16-19 command/OBD (new layout), 1E/1F camera.

Old layout: time (Unix s), lat/lon (int32 / 1 800 000), speed (km/h, 1 B), course (2),
MCC MNC LAC (2 each) CID (3), valid flag; then per type a status word + battery (mV),
RSSI, two ADCs (02), the alarm byte (04) or the state type (05).  New layout: time,
a flags byte saying which blocks follow (bit0 GPS: lat, lon, altitude, speed(2), course,
satellites; bits 1-3 cells; bits 4-6 Wi-Fi access points; bit7 LTE cells), the alarm
(14) or report type (15), a status word (12/14/15: bit0 fix valid), then for 12 the
optional battery, ADCs, odometer, counters, steps, sensor and BLE tag blocks.

Replies: every packet but 02 and 81 is echoed ``67 67 <type> 00 02 <index>``; the login
answer adds the server's UTC seconds (4 B), protocol version 1 and an action mask 0, so it
needs the clock (`reply_at`).  Packets that came in an `EL` envelope are answered in one
envelope with the device's IMEI.
"""

from __future__ import annotations

import re
import struct
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
from .kit import alarms as A
from .kit.framing import garbage, partial_start, resync_cut, split_with, take_sized
from .kit.readers import Reader, unix

PACKET_MAGIC = b"gg"
UDP_MAGIC = b"EL"
MAGICS = (PACKET_MAGIC, UDP_MAGIC)
PACKET_HEADER = 5
UDP_HEADER = 4 + 2 + 8  # magic, len, checksum, IMEI
MAX_FRAME = 2048

LOGIN = 0x01
GPS = 0x02
HEARTBEAT = 0x03
ALARM = 0x04
STATE = 0x05
SMS = 0x06
OBD = 0x07
DOWNLINK = 0x80
DATA = 0x81
NORMAL = 0x12
WARNING = 0x14
REPORT = 0x15
COMMAND = 0x16
OBD_DATA = 0x17
OBD_BODY = 0x18
OBD_CODE = 0x19
CAMERA_INFO = 0x1E
CAMERA_DATA = 0x1F
TYPES = frozenset(
    {LOGIN, GPS, HEARTBEAT, ALARM, STATE, SMS, OBD, DOWNLINK, DATA, *range(NORMAL, OBD_CODE + 1), CAMERA_INFO}
    | {CAMERA_DATA}
)
NOT_ANSWERED = (GPS, DATA)

ALARMS = {
    0x01: A.POWER_OFF,
    0x02: A.SOS,
    0x03: A.LOW_BATTERY,
    0x04: A.VIBRATION,
    0x08: A.GPS_ANTENNA_CUT,
    0x09: A.GPS_ANTENNA_CUT,
    0x25: A.REMOVING,
    0x81: A.LOW_SPEED,
    0x82: A.OVERSPEED,
    0x83: A.GEOFENCE_ENTER,
    0x84: A.GEOFENCE_EXIT,
    0x85: A.ACCIDENT,
    0x86: A.FALL_DOWN,
}
COORD_SCALE = 1_800_000

_RESULT = re.compile(
    r"Lat:([NS])(\d+\.\d+).*?Lon:([EW])(\d+\.\d+).*?Course:(\d+\.\d+).*?Speed:(\d+\.\d+)"
    r".*?Date ?Time:(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)",
    re.S,
)


def checksum(data: bytes) -> int:
    """16-bit rotate-left-then-add over the envelope body (IMEI and packets)."""
    total = 0
    for byte in data:
        total = (((total << 1) | (total >> 15)) + byte) & 0xFFFF
    return total


def packet(type_: int, index: int, content: bytes = b"") -> bytes:
    return PACKET_MAGIC + struct.pack(">BHH", type_, 2 + len(content), index) + content


def imei_bytes(imei: str) -> bytes:
    return bytes.fromhex(imei.rjust(16, "0"))


def envelope(imei: str | bytes, packets: bytes) -> bytes:
    ident = imei if isinstance(imei, bytes) else imei_bytes(imei)
    body = ident + packets
    return UDP_MAGIC + struct.pack(">HH", 2 + len(body), checksum(body)) + body


# ------------------------------------------------------------------ framing


def _size(buf: bytes | bytearray) -> int | None:
    """The whole frame's size once its header is in (None: need more)."""
    if buf[:2] == PACKET_MAGIC:
        return 5 + int.from_bytes(buf[3:5], "big") if len(buf) >= PACKET_HEADER else None
    return 4 + int.from_bytes(buf[2:4], "big") if len(buf) >= 4 else None


class EelinkFramer(Framer):
    """`gg` packets (5 + len) or `EL` envelopes (4 + len), back to back."""

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if not buf:
            return None
        if bytes(buf[:2]) not in MAGICS:
            if partial_start(buf, MAGICS):
                return None
            raise garbage(buf, resync_cut(buf, MAGICS))
        total = _size(buf)
        if total is None:
            return None
        minimum = PACKET_HEADER + 2 if buf[:2] == PACKET_MAGIC else UDP_HEADER + PACKET_HEADER + 2
        if total < minimum:
            raise garbage(buf, resync_cut(buf, MAGICS))
        return take_sized(buf, total, self.max_frame)


# ------------------------------------------------------------------ parsing


class _Packet:
    __slots__ = ("body", "index", "type")

    def __init__(self, type_: int, index: int, body: bytes) -> None:
        self.type = type_
        self.index = index
        self.body = body


def _split(frame: bytes) -> tuple[str | None, bytes | None, list[_Packet]]:
    """(IMEI of the envelope, raw IMEI bytes, packets)."""
    imei = ident = None
    data = frame
    if frame[:2] == UDP_MAGIC:
        if len(frame) < UDP_HEADER:
            raise DecodeError("truncated EL envelope")
        ident = frame[6:14]
        imei = ident.hex()[1:]
        data = frame[UDP_HEADER:]
    packets = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 2] != PACKET_MAGIC or pos + PACKET_HEADER > len(data):
            raise DecodeError(f"no packet at offset {pos}")
        type_ = data[pos + 2]
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        end = pos + PACKET_HEADER + length
        if length < 2 or end > len(data):
            raise DecodeError("packet length beyond the frame")
        packets.append(_Packet(type_, int.from_bytes(data[pos + 5 : pos + 7], "big"), data[pos + 7 : end]))
        pos = end
    if not packets:
        raise DecodeError("no packet")
    return imei, ident, packets


def _login_imei(p: _Packet) -> str | None:
    if p.type != LOGIN or len(p.body) < 8:
        return None
    text = p.body[:8].hex()[1:]
    return text if text.isdigit() else None


def _kind(packets: list[_Packet]) -> str:
    kinds = []
    for p in packets:
        t = p.type
        if t == LOGIN:
            kinds.append("login")
        elif t == HEARTBEAT:
            kinds.append("heartbeat")
        elif t in (ALARM, WARNING):
            kinds.append("alarm")
        elif t in (GPS, NORMAL):
            kinds.append("position")
        elif t in (STATE, REPORT, OBD, OBD_DATA, OBD_BODY, OBD_CODE, SMS):
            kinds.append("status")
        else:
            kinds.append("other")
    if len(kinds) > 1 and all(k == "position" for k in kinds):
        return "batch"
    for kind in ("login", "alarm", "position", "heartbeat", "status"):
        if kind in kinds:
            return kind
    return "other"


def _replies(frame: bytes, now: datetime | None) -> bytes | None:
    _, ident, packets = _split(frame)
    out = b""
    for p in packets:
        if p.type in NOT_ANSWERED:
            continue
        content = b""
        if p.type == LOGIN:
            if now is None:
                return None
            content = struct.pack(">IHB", int(now.timestamp()) & 0xFFFFFFFF, 1, 0)
        out += packet(p.type, p.index, content)
    if not out:
        return None
    return envelope(ident, out) if ident is not None else out


def _flag(rec: Record, key: str, value: bool) -> None:
    rec.attributes[key] = "true" if value else "false"


def _old_status(rec: Record, status: int) -> None:
    if status >> 1 & 1:
        rec.ignition = bool(status >> 2 & 1)
    if status >> 3 & 1:
        _flag(rec, "armed", bool(status >> 4 & 1))
    if status >> 5 & 1:
        _flag(rec, "blocked", not status >> 6 & 1)
    if status >> 7 & 1:
        _flag(rec, "charge", bool(status >> 8 & 1))
    rec.attributes["status"] = str(status)


def _coordinates(r: Reader) -> tuple[float, float]:
    lat = r.i32() / COORD_SCALE
    lon = r.i32() / COORD_SCALE
    if abs(lat) > 90 or abs(lon) > 180:
        raise DecodeError(f"coordinates out of range: {lat}, {lon}")
    return lat, lon


def _cell(rec: Record, mcc: int, mnc: int, lac: int, cid: int) -> None:
    rec.attributes.update(mcc=str(mcc), mnc=str(mnc), lac=str(lac), cid=str(cid))


def _decode_old(p: _Packet) -> Record:
    r = Reader(p.body)
    rec = Record(fix_time=unix(r.u32()))
    rec.attributes["index"] = str(p.index)
    rec.latitude, rec.longitude = _coordinates(r)
    rec.speed = float(r.u8())
    rec.course = float(r.u16())
    mcc, mnc, lac = r.u16(), r.u16(), r.u16()
    _cell(rec, mcc, mnc, lac, r.u24())
    rec.valid = bool(r.u8() & 0x01)
    if p.type == GPS:
        if r.remaining >= 2:
            _old_status(rec, r.u16())
        if r.remaining >= 8:
            rec.battery = r.u16() / 1000
            rec.attributes["rssi"] = str(r.u16())
            rec.attributes["adc1"] = str(r.u16())
            rec.attributes["adc2"] = str(r.u16())
    elif p.type == ALARM:
        alarm = ALARMS.get(r.u8())
        if alarm:
            rec.alarms.append(alarm)
    elif p.type == STATE:
        event = r.u8()
        rec.attributes["event"] = str(event)
        if event in (1, 2, 3):
            r.skip(4)  # device time
            if r.remaining >= 2:
                _old_status(rec, r.u16())
    return rec


def _decode_new(p: _Packet) -> Record:
    r = Reader(p.body)
    rec = Record(fix_time=unix(r.u32()))
    rec.attributes["index"] = str(p.index)
    flags = r.u8()
    if flags & 0x01:
        rec.latitude, rec.longitude = _coordinates(r)
        rec.altitude = float(r.i16())
        rec.speed = float(r.u16())
        rec.course = float(r.u16())
        rec.satellites = r.u8()
    mcc = mnc = 0
    if flags & 0x02:
        mcc, mnc = r.u16(), r.u16()
        lac, cid = r.u16(), r.u32()
        _cell(rec, mcc, mnc, lac, cid)
        rec.attributes["rssi"] = str(r.u8())
    for bit in (2, 3):
        if flags >> bit & 1:
            r.skip(7)  # neighbour cell: lac, cid, rssi
    for bit in (4, 5, 6):
        if flags >> bit & 1:
            r.skip(7)  # Wi-Fi access point: MAC, rssi
    if flags & 0x80:
        r.skip(1)  # radio access technology
        count = r.u8()
        if count:
            r.skip(14)  # mcc mnc lac tac cid ta
        r.skip(5 * count)
    if p.type == WARNING:
        alarm = ALARMS.get(r.u8())
        if alarm:
            rec.alarms.append(alarm)
    elif p.type == REPORT:
        rec.attributes["event"] = str(r.u8())
    if p.type in (NORMAL, WARNING, REPORT):
        status = r.u16()
        rec.valid = bool(status & 0x01)
        if status >> 1 & 1:
            rec.ignition = bool(status >> 2 & 1)
        if status >> 3 & 1:
            _flag(rec, "armed", bool(status >> 4 & 1))
            _flag(rec, "motion", bool(status >> 9 & 1))
        if status >> 5 & 1:
            _flag(rec, "blocked", bool(status >> 6 & 1))
        if status >> 7 & 1:
            _flag(rec, "charge", bool(status >> 8 & 1))
        _flag(rec, "gps", bool(status >> 10 & 1))
        rec.attributes["status"] = str(status)
    if p.type == NORMAL:
        _normal_tail(r, rec)
    return rec


def _normal_tail(r: Reader, rec: Record) -> None:
    a = rec.attributes
    if r.remaining >= 2:
        rec.battery = r.u16() / 1000
    if r.remaining >= 4:
        a["adc0"] = str(r.u16())
        a["adc1"] = str(r.u16())
    if r.remaining >= 4:
        rec.odometer = float(r.u32())
    if r.remaining >= 4:
        r.skip(4)  # GSM and GPS counters
    if r.remaining >= 4:
        a["steps"] = str(r.u16())
        r.skip(2)  # walking time
    if r.remaining >= 12:
        a["temp1"] = repr(r.i16() / 256)
        a["humidity"] = repr(r.u16() / 10)
        a["illuminance"] = repr(r.u32() / 256)
        a["co2"] = str(r.u32())
    if r.remaining >= 2:
        a["temp2"] = repr(r.i16() / 16)
    if r.remaining >= 2:
        count = r.u8()
        r.skip(1)  # id
        for i in range(1, count + 1):
            a[f"tag{i}Id"] = r.bytes(6).hex()
            r.skip(4)  # signal level, reserved, model, version
            a[f"tag{i}Battery"] = repr(r.u16() / 1000)
            a[f"tag{i}Temp"] = repr(r.i16() / 256)
            a[f"tag{i}Data"] = str(r.u16())


def _decode_obd(p: _Packet) -> Record:
    r = Reader(p.body)
    rec = Record(fix_time=unix(r.u32()))
    while r.remaining >= 5:
        pid, value = r.u8(), r.i32()
        if pid == 0x89:
            rec.attributes["fuelConsumption"] = str(value)
        elif pid == 0x8A:
            rec.odometer = float(value * 1000)
        elif pid == 0x8B:
            rec.attributes["fuel"] = str(int(value / 10))
    return rec


def _decode_result(p: _Packet, ctx: Context) -> Record:
    r = Reader(p.body)
    r.skip(5)  # type, uid
    text = r.rest().decode("utf-8", "replace")
    m = _RESULT.search(text)
    if m is None:
        rec = Record(fix_time=ctx.received_at)
        rec.attributes["index"] = str(p.index)
        rec.attributes["result"] = text
        return rec
    ns, lat, ew, lon, course, speed, *stamp = m.groups()
    rec = Record(
        fix_time=datetime(*map(int, stamp), tzinfo=UTC),  # type: ignore[misc]
        valid=True,
        latitude=float(lat) * (-1 if ns == "S" else 1),
        longitude=float(lon) * (-1 if ew == "W" else 1),
        course=float(course),
        speed=float(speed),
    )
    rec.attributes["index"] = str(p.index)
    return rec


def _decode_packet(p: _Packet, ctx: Context) -> Record | None:
    t = p.type
    if t in (GPS, ALARM, STATE, SMS):
        return _decode_old(p)
    if NORMAL <= t <= OBD_CODE:
        return _decode_new(p)
    if (t == HEARTBEAT and len(p.body) >= 2) or (t == OBD and len(p.body) == 4):
        rec = Record(fix_time=ctx.received_at)
        _old_status(rec, int.from_bytes(p.body[:2], "big"))
        return rec
    if t == OBD:
        return _decode_obd(p)
    if t == DOWNLINK:
        return _decode_result(p, ctx)
    return None


def _detect_packet(head: bytes) -> Detection:
    if len(head) < PACKET_HEADER:
        return Detection.MORE if len(head) < 3 or head[2] in TYPES else Detection.NO
    if head[2] not in TYPES:
        return Detection.NO
    total = 5 + int.from_bytes(head[3:5], "big")
    if total < PACKET_HEADER + 2 or total > MAX_FRAME:
        return Detection.NO
    if len(head) < total:
        return Detection.MORE
    if head[2] == LOGIN and _login_imei(_Packet(LOGIN, 0, head[7:total])) is None:
        return Detection.NO
    return Detection.YES


def _detect_envelope(head: bytes) -> Detection:
    if len(head) < 4:
        return Detection.MORE
    total = 4 + int.from_bytes(head[2:4], "big")
    if total < UDP_HEADER + PACKET_HEADER + 2 or total > MAX_FRAME:
        return Detection.NO
    ident = head[6:14].hex()
    if ident and not (ident[:1] == "0" and ident.isdigit()):
        return Detection.NO
    if len(head) > UDP_HEADER and head[UDP_HEADER : UDP_HEADER + 2] != PACKET_MAGIC[: len(head) - UDP_HEADER]:
        return Detection.NO
    if len(head) < total:
        return Detection.MORE
    if checksum(head[6:total]) != int.from_bytes(head[4:6], "big"):
        return Detection.NO
    try:
        _split(head[:total])
    except DecodeError:
        return Detection.NO
    return Detection.YES


class EelinkCodec(Codec):
    name = "eelink"
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_FRAME
    first_bytes = b"gE"
    priority = 10
    replies = True

    def detect(self, head: bytes, transport: str) -> Detection:
        n = min(len(head), 2)
        if head[:n] == PACKET_MAGIC[:n]:
            return Detection.MORE if n < 2 else _detect_packet(head)
        if head[:n] == UDP_MAGIC[:n]:
            return Detection.MORE if n < 2 else _detect_envelope(head)
        return Detection.NO

    def new_framer(self) -> Framer:
        return EelinkFramer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        if datagram[:2] == UDP_MAGIC:
            total = 4 + int.from_bytes(datagram[2:4], "big") if len(datagram) >= 4 else -1
            if total != len(datagram):
                raise FramingError("EL envelope length does not match the datagram", discarded=datagram)
            return [datagram]
        return split_with(self.new_framer(), datagram, "packet")

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        imei, _, packets = _split(frame)
        if imei is None:
            imei = next((i for i in map(_login_imei, packets) if i), None)
        clock = any(p.type == LOGIN for p in packets)
        return FrameInfo(_kind(packets), imei, None if clock else _replies(frame, None), clock_reply=clock)

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        return _replies(frame, now)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        imei, _, packets = _split(frame)
        if imei is None:
            imei = next((i for i in map(_login_imei, packets) if i), None)
        records = [rec for p in packets if (rec := _decode_packet(p, ctx)) is not None]
        return Decoded(_kind(packets), imei, records)


CODEC = EelinkCodec()
