"""Ulbotech T300/T301/T361/T381 OBD and vehicle trackers (Traccar `ulbotech`).

Binary frames between two ``F8`` flags; inside, ``F7 00`` stands for ``F7`` and ``F7 0F``
for ``F8`` (the framer removes the escapes)::

    F8  version(1) type(1)  IMEI(8 bytes, hex digits after the first nibble)
        time(u32: seconds since 2000-01-01, top bit masked)
        { data type(1) length(1; 2 for CAN bus) data }...
        CRC-16/XMODEM(2, of everything between the flags before it)  F8

Data types: 01 GPS (lat/lon i32 1e-6 degrees, speed u16 km/h, course u16, HDOP u16 x100;
HDOP 9999 = no fix), 02 cell (mcc, mnc, lac, cid, -rssi), 03 status (u16 status, bit 9 =
ignition; u16 alarm bits: 0 power off, 1 movement, 2 overspeed, 4 geofence, 10 SOS),
04 odometer (u32 m), 05 ADC (u16 each: 4-bit channel + 12-bit value: 0 power, 1 temp1,
2 battery, 3 adc1, 5-9 fuel1-5), 06 geofence (in, alarm), 07/09 OBD-II PIDs / trouble codes,
08 fuel consumption (u32 / 10000), 0A harsh driving bits, 0B CAN bus (u16 length),
0C J1708 PIDs, 0D VIN, 0E RFID (driver id + authorized byte), 10 event (u8 [+ u32 mask]).

Text frames ``*TS01,<imei>,<hhmmss><ddmmyy>,<command result>#`` answer server commands;
``*TS01,<imei>#`` alone is a keep-alive.

Replies, as Traccar sends them: every binary frame is answered
``F8 01 FE <the frame's first two bytes> CRC-16/XMODEM(01 FE xx xx) F8``; every text frame
``*TS01,ACK:<CRC-16/XMODEM of the text between * and #, 4 hex digits>#``.
"""

from __future__ import annotations

import re
from datetime import timedelta

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
from .kit import alarms, framing, keys
from .kit.checksums import CRC16_XMODEM
from .kit.framing import PairedFramer
from .kit.readers import Reader, bit, bits, utc

FLAG = 0xF8
ESCAPE = 0xF7
TEXT_START = ord("*")
TEXT_END = ord("#")
MAX_FRAME = 2048
EPOCH_2000 = utc(2000, 1, 1)
HEADER_LEN = 15  # flag, version, type, IMEI(8), time(4)
NO_FIX_HDOP = 9999

GPS, LBS, STATUS, ODOMETER, ADC, GEOFENCE, OBD2, FUEL, OBD2_ALARM = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09
HARSH, CANBUS, J1708, VIN, RFID, EVENT = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x10

ALARM_BITS = (
    (0, alarms.POWER_OFF),
    (1, alarms.MOVEMENT),
    (2, alarms.OVERSPEED),
    (4, alarms.GEOFENCE),
    (10, alarms.SOS),
)
HARSH_BITS = (
    "rapidAcceleration",
    "roughBraking",
    "harshCourse",
    "noWarmUp",
    "longIdle",
    "fatigueDriving",
    "roughTerrain",
    "highRpm",
)
OBD_PIDS = {
    0x04: (keys.ENGINE_LOAD, lambda v: v * 100 // 255),
    0x05: (keys.COOLANT_TEMP, lambda v: v - 40),
    0x0B: ("mapIntake", lambda v: v),
    0x0C: (keys.RPM, lambda v: v // 4),
    0x0D: (keys.OBD_SPEED, lambda v: v),
    0x0F: ("intakeTemp", lambda v: v - 40),
    0x11: (keys.THROTTLE, lambda v: v * 100 // 255),
    0x21: ("milDistance", lambda v: v),
    0x2F: (keys.FUEL, lambda v: v * 100 // 255),
    0x31: ("clearedDistance", lambda v: v),
}

_TEXT = re.compile(rb"\*TS\d\d,(\d{15})(?:,(\d{12}),([^#]+))?#?")
_TEXT_PREFIX = re.compile(rb"\*(?:T(?:S(?:\d(?:\d(?:,\d{0,15})?)?)?)?)?")


CODES = {0x00: ESCAPE, 0x0F: FLAG}  # F7 00 = F7, F7 0F = F8


def _unescape(raw: bytes | bytearray) -> bytes:
    return framing.unescape(raw, ESCAPE, CODES)


class UlbotechFramer(PairedFramer):
    """`F8`...`F8` binary frames (escapes removed) and `*`...`#` text frames."""

    def __init__(self, max_frame: int) -> None:
        super().__init__({bytes((FLAG,)): bytes((FLAG,)), bytes((TEXT_START,)): bytes((TEXT_END,))}, max_frame)

    def next_frame(self) -> bytes | None:
        frame = super().next_frame()
        return _unescape(frame) if frame is not None and frame[0] == FLAG else frame


def _imei(raw: bytes) -> str:
    return raw.hex()[1:]


def _binary_reply(frame: bytes) -> bytes:
    body = bytes((0x01, 0xFE)) + frame[0:2]
    return bytes((FLAG,)) + body + CRC16_XMODEM(body).to_bytes(2, "big") + bytes((FLAG,))


def _text_reply(frame: bytes) -> bytes:
    inner = frame[1:-1] if frame.endswith(b"#") else frame[1:]
    return f"*TS01,ACK:{CRC16_XMODEM(inner):04X}#".encode()


def _check_crc(frame: bytes) -> bytes:
    """The frame with its CRC verified (when it ends with its flag); a frame that still
    carries its escapes (as a device writes it) is unescaped first if that makes it check."""
    if len(frame) > HEADER_LEN + 3 and frame[-1] == FLAG:
        want = int.from_bytes(frame[-3:-1], "big")
        if CRC16_XMODEM(frame[1:-3]) != want:
            if ESCAPE in frame:
                plain = _unescape(frame)
                if CRC16_XMODEM(plain[1:-3]) == int.from_bytes(plain[-3:-1], "big"):
                    return plain
            raise ChecksumError(f"CRC-16 {want:04x} does not match")
    return frame


def _obd(attrs: dict[str, str], data: bytes) -> None:
    r = Reader(data)
    while r.remaining:
        head = r.u8()
        size, mode = head >> 4, head & 0x0F
        value = r.bytes(max(size - 1, 0))
        if mode in (1, 2) and len(value) >= 1:
            pid = value[0]
            if pid in OBD_PIDS:
                key, convert = OBD_PIDS[pid]
                attrs[key] = str(convert(int.from_bytes(value[1:], "big")))
        elif mode == 3 and len(value) >= 2:
            codes = []
            for i in range(0, len(value) - 1, 2):
                code = int.from_bytes(value[i : i + 2], "big")
                codes.append(f"{'PCBU'[code >> 14]}{code & 0x3FFF:04X}")
            attrs[keys.DTCS] = " ".join(codes)


def _j1708(attrs: dict[str, str], data: bytes) -> None:
    r = Reader(data)
    while r.remaining:
        mark = r.u8()
        size, kind = bits(mark, 0, 6), bits(mark, 6, 2)
        pid = r.u8() + (256 if kind == 3 else 0)
        value = r.bytes(max(size - 1, 0))
        if kind in (2, 3):
            attrs[f"pid{pid}"] = value.hex()


def _adc(record: Record, data: bytes) -> None:
    for i in range(0, len(data) - 1, 2):
        word = int.from_bytes(data[i : i + 2], "big")
        channel, value = word >> 12, word & 0x0FFF
        volts = value * 110 / 4096 - 10
        if channel == 0:
            record.power = volts
        elif channel == 1:
            record.attributes["temp1"] = str(value * 180 / 4096 - 55)
        elif channel == 2:
            record.battery = volts
        elif channel == 3:
            record.attributes["adc1"] = str(volts)
        elif 5 <= channel <= 9:
            record.attributes[f"fuel{channel - 4}"] = str(value * 2000 / 4096)
        else:
            record.attributes[f"io{channel}"] = str(value)


def _element(record: Record, kind: int, data: bytes) -> None:
    attrs = record.attributes
    r = Reader(data)
    if kind == GPS:
        lat, lon = r.i32() / 1e6, r.i32() / 1e6
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError(f"coordinates out of range: {lat}, {lon}")
        record.latitude, record.longitude = lat, lon
        record.speed = float(r.u16())
        record.course = float(r.u16())
        hdop = r.u16()
        record.valid = hdop < NO_FIX_HDOP
        attrs[keys.HDOP] = str(hdop / 100)
    elif kind == LBS:
        mcc, mnc, lac = r.u16(), r.u16(), r.u16()
        cid = r.u32() if len(data) == 11 else r.u16()
        attrs[keys.MCC], attrs[keys.MNC], attrs[keys.LAC], attrs[keys.CELL_ID] = map(str, (mcc, mnc, lac, cid))
        attrs[keys.RSSI] = str(-r.u8())
    elif kind == STATUS:
        status = r.u16()
        record.ignition = bit(status, 9)
        attrs[keys.STATUS] = str(status)
        alarm_bits = r.u16()
        alarm = next((name for i, name in ALARM_BITS if bit(alarm_bits, i)), None)
        if alarm and alarm not in record.alarms:
            record.alarms.append(alarm)
    elif kind == ODOMETER:
        record.odometer = float(r.u32())
    elif kind == ADC:
        _adc(record, data)
    elif kind == GEOFENCE:
        attrs["geofenceIn"], attrs["geofenceAlarm"] = str(r.u32()), str(r.u32())
    elif kind in (OBD2, OBD2_ALARM):
        _obd(attrs, data)
    elif kind == FUEL:
        attrs[keys.FUEL_CONSUMPTION] = str(r.u32() / 10000)
    elif kind == HARSH:
        value = r.u8()
        for i, name in enumerate(HARSH_BITS):
            if bit(value, i):
                attrs[name] = "true"
    elif kind == CANBUS:
        attrs["can"] = data.hex()
    elif kind == J1708:
        _j1708(attrs, data)
    elif kind == VIN:
        attrs[keys.VIN] = data.decode("ascii", errors="replace")
    elif kind == RFID and data:
        attrs[keys.DRIVER_UNIQUE_ID] = data[:-1].decode("ascii", errors="replace")
        attrs["authorized"] = "true" if data[-1] else "false"
    elif kind == EVENT:
        attrs[keys.EVENT] = str(r.u8())
        if len(data) > 1:
            attrs["eventMask"] = str(r.u32())


def _decode_binary(frame: bytes, ctx: Context) -> Decoded:
    r = Reader(frame)
    r.skip(3)
    device_id = _imei(r.bytes(8))
    seconds = r.u32() & 0x7FFFFFFF
    hours = ctx.options.get("timezone")
    record = Record(fix_time=EPOCH_2000 + timedelta(seconds=seconds))  # type: ignore[operator]
    if hours:
        try:
            record.fix_time -= timedelta(hours=float(hours))  # type: ignore[operator]
        except ValueError as exc:
            raise DecodeError(f"timezone option must be hours, not {hours!r}", reason="config") from exc
    while r.remaining > 3:
        kind = r.u8()
        length = r.u16() if kind == CANBUS else r.u8()
        data = r.bytes(length) if r.pos + length <= len(frame) else r.rest()
        try:
            _element(record, kind, data)
        except DecodeError:
            if kind == GPS:
                raise
            record.attributes.setdefault("badElements", "")
            record.attributes["badElements"] += f"{kind:02x}"
    kind = "alarm" if record.alarms else "position" if record.has_position else "status"
    return Decoded(kind, device_id, [record])


def _decode_text(frame: bytes, ctx: Context) -> Decoded:
    match = _TEXT.fullmatch(frame.rstrip(b"\r\n"))
    if not match:
        raise DecodeError("not an Ulbotech text frame (*TSnn,imei,...#)")
    device_id = match.group(1).decode()
    if match.group(2) is None:
        return Decoded("heartbeat", device_id, [])
    t = match.group(2).decode()
    when = utc(int(t[10:12]), int(t[8:10]), int(t[6:8]), int(t[0:2]), int(t[2:4]), int(t[4:6]))
    record = Record(fix_time=when or ctx.received_at)
    record.attributes[keys.RESULT] = match.group(3).decode("latin-1")
    return Decoded("other", device_id, [record])


def _unescaped_head(head: bytes, limit: int = HEADER_LEN + 2) -> bytes:
    """The first `limit` bytes of a binary frame after its start flag, escapes undone, as far
    as the bytes so far go (a lone trailing F7 waits for its code byte)."""
    out = bytearray(head[:1])
    i = 1
    while i < len(head) and len(out) < limit and head[i] != FLAG:
        if head[i] == ESCAPE:
            if i + 1 >= len(head):
                break
            out.append(CODES.get(head[i + 1], head[i + 1]))
            i += 2
        else:
            out.append(head[i])
            i += 1
    return bytes(out)


class UlbotechCodec(Codec):
    name = "ulbotech"
    first_bytes = bytes((FLAG, TEXT_START))
    priority = 20
    replies = True
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == TEXT_START:
            if re.match(rb"\*TS\d\d,\d{15}[,#]", head):
                return Detection.YES
            return Detection.MORE if _TEXT_PREFIX.fullmatch(head[:21]) and len(head) <= 21 else Detection.NO
        if head[0] != FLAG:
            return Detection.NO
        head = _unescaped_head(head)  # the time field may hold an escaped F7/F8
        if len(head) < 3:
            return Detection.MORE
        if head[1] != 0x01 or head[2] not in (0x01, 0x02, 0x03):
            return Detection.NO
        if len(head) < 11:
            return Detection.MORE
        imei = head[3:11].hex()
        if imei[0] != "0" or not imei.isdigit():
            return Detection.NO
        if len(head) < HEADER_LEN + 2:
            return Detection.MORE
        element, length = head[HEADER_LEN], head[HEADER_LEN + 1]
        return Detection.YES if 0x01 <= element <= 0x10 and length > 0 else Detection.NO

    def new_framer(self) -> Framer:
        return UlbotechFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if frame[:1] == bytes((FLAG,)):
            if len(frame) < HEADER_LEN:
                raise DecodeError("binary frame shorter than its header")
            frame = _check_crc(frame)
            return FrameInfo("position", _imei(frame[3:11]), _binary_reply(frame))
        match = _TEXT.fullmatch(frame.rstrip(b"\r\n"))
        if not match:
            raise DecodeError("not an Ulbotech frame")
        kind = "heartbeat" if match.group(2) is None else "other"
        return FrameInfo(kind, match.group(1).decode(), _text_reply(frame.rstrip(b"\r\n")))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes")
        if frame[:1] == bytes((FLAG,)):
            if len(frame) < HEADER_LEN:
                raise DecodeError("binary frame shorter than its header")
            return _decode_binary(_check_crc(frame), ctx)
        return _decode_text(frame, ctx)


CODEC = UlbotechCodec()
