"""Concox GT06 family (GT06N/E, JM-VL, WeTrack, Wanway, SinoTrack clones ...).

Wire layout (all integers big-endian)::

    78 78 | len (1) | type (1) | body | serial (2) | crc (2) | 0D 0A     total = len + 5
    79 79 | len (2) | type (1) | body | serial (2) | crc (2) | 0D 0A     total = len + 6

`len` counts type .. crc; the CRC is CRC-16/X-25 (CRC-ITU) over len .. serial.
Some clones send frames without serial and CRC whose length byte does not
match (the WiFi reports 0x17/0x69 even put the access-point count there); like
Traccar we frame those up to the first `0D 0A` once the announced length turns
out wrong, and call them *legacy* frames: nothing to verify, nothing to ack.

Common blocks of the body:

* GPS (18 B): yy mm dd hh mm ss (UTC unless the unit was set to local time),
  satellites (low nibble), latitude u32, longitude u32 (degrees * 1 800 000),
  speed u8 km/h, course/status u16 (bit 15 ACC when bit 14 set, bit 12 fix valid,
  bit 11 west, bit 10 north, bits 0-9 course).
* LBS (8 B): mcc u16 (bit 15: mnc takes 2 bytes), mnc u8, lac u16, cell id u24;
  some types widen lac/cell id, status packets prefix it with its length.
* Terminal info: status bits (1 ACC, 2 charging, 3-5 alarm, 7 fuel cut),
  voltage level 0-6, GSM signal 0-4, alarm byte, language byte.

The decoder is stateless: a login's IMEI is the connection's id (the edge keeps
it), and a per-device model (Traccar's model override) may be given as
``Context.options["model"]`` for the model-specific layouts (LW*, SEEWORLD, R11,
NT*/XT40, VL103/G18, QH302R).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

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
from .kit.checksums import CRC16_X25
from .kit.framing import oversized, split_with
from .kit.readers import sign_magnitude

SHORT = b"\x78\x78"
LONG = b"\x79\x79"
TRAILER = b"\r\n"
#: type + serial + crc: the smallest length field of a frame that carries a CRC
MIN_LENGTH = 5
COORD_SCALE = 1_800_000.0  # 30000 * 60: minutes * 30000
GPS_SIZE = 18  # date 6, satellites 1, latitude 4, longitude 4, speed 1, course/status 2

# message types
LOGIN = 0x01
GPS = 0x10
GPS_LBS_6 = 0x11
GPS_LBS_1 = 0x12
STATUS = 0x13
STRING = 0x15
GPS_LBS_STATUS_1 = 0x16
WIFI = 0x17  # also GPS+LBS+RFID when the length byte is 0x28
LBS_EXTEND = 0x18
LBS_STATUS = 0x19
GPS_PHONE = 0x1A
GPS_LBS_EXTEND = 0x1E
STRING_INFO = 0x21
GPS_LBS_2 = 0x22
HEARTBEAT = 0x23
LBS_MULTIPLE_3 = 0x24
GPS_LBS_DRIVER = 0x25
GPS_LBS_STATUS_2 = 0x26
GPS_LBS_STATUS_3 = 0x27
LBS_MULTIPLE_1 = 0x28
ADDRESS_REQUEST = 0x2A
LBS_WIFI = 0x2C
GPS_LBS_4 = 0x2D
LBS_MULTIPLE_2 = 0x2E
GPS_LBS_5 = 0x31
GPS_LBS_STATUS_4 = 0x32  # AZ735 GPS when extended
WIFI_5 = 0x33  # AZ735 alarm when extended
LBS_3 = 0x34
STATUS_2 = 0x36  # Jimi IoT 4G status; GPS+LBS+RFID on TRX16i (length byte 0x35)
ALARM_MODULE = 0x39  # Jimi IoT 4G
BMS = 0x40  # WD-209 battery management
IBUTTON = 0x61
ATTENDANCE = 0xB0
BLUETOOTH_CLOCK = 0xB2
WIFI_4 = 0xF3
GPS_LBS_3 = 0x37
GPS_LBS_8 = 0x38
WIFI_2 = 0x69
GPS_MODULAR = 0x70
COMMANDS = frozenset({0x80, 0x81, 0x82})
TIME_REQUEST = 0x8A
INFO = 0x94
ALARM = 0x95
ADDRESS_RESPONSE = 0x97
SERIAL = 0x9B
GPS_LBS_7 = 0xA0
LBS_2 = 0xA1
WIFI_3 = 0xA2  # GPS+LBS+status on LW4G units (length byte 0x40)
FENCE_SINGLE = 0xA3
FENCE_MULTI = 0xA4
LBS_ALARM = 0xA5
WIFI_ALARM = 0xA9
DEVICE_STATUS = 0xF1
PERIPHERAL = 0xF2

GPS_TYPES = frozenset(
    {GPS, GPS_LBS_6, GPS_LBS_1, GPS_LBS_2, GPS_LBS_DRIVER, GPS_LBS_3, GPS_LBS_4, GPS_LBS_5, GPS_LBS_STATUS_1}
    | {GPS_LBS_STATUS_2, GPS_LBS_STATUS_3, GPS_LBS_STATUS_4, GPS_PHONE, GPS_LBS_EXTEND, GPS_LBS_7}
    | {FENCE_SINGLE, FENCE_MULTI}
)
LBS_ADDRESS = 0xA7  # GK310: serving cell only (an address request)
LBS_TYPES = (GPS_TYPES - {GPS, GPS_PHONE, GPS_LBS_EXTEND}) | {LBS_STATUS, LBS_ALARM, LBS_ADDRESS}
STATUS_TYPES = frozenset(
    {STATUS, LBS_STATUS, GPS_LBS_STATUS_1, GPS_LBS_STATUS_2, GPS_LBS_STATUS_3, GPS_LBS_STATUS_4, FENCE_MULTI}
    | {LBS_ALARM}
)
MULTI_LBS_TYPES = frozenset(
    {LBS_MULTIPLE_1, LBS_MULTIPLE_2, LBS_MULTIPLE_3, LBS_EXTEND, LBS_WIFI, LBS_2, WIFI_3, WIFI_ALARM}
)
POSITION_TYPES = GPS_TYPES | {GPS_LBS_8, GPS_MODULAR}
STATUS_ONLY_TYPES = MULTI_LBS_TYPES | {LBS_STATUS, WIFI, WIFI_2, STRING, STRING_INFO, INFO, SERIAL, LBS_3}
STATUS_ONLY_TYPES |= {WIFI_5, DEVICE_STATUS, PERIPHERAL, STATUS_2, BMS, BLUETOOTH_CLOCK, WIFI_4, 0x8C, LBS_ADDRESS}
POSITION_TYPES |= {IBUTTON}
ALARM_TYPES = frozenset(
    {GPS_LBS_STATUS_1, GPS_LBS_STATUS_2, GPS_LBS_STATUS_3, FENCE_MULTI, LBS_ALARM, ALARM, ALARM_MODULE}
)
#: 0x22-style trailer: ACC, upload mode, re-upload flag
UPLOAD_TRAILER_TYPES = frozenset({GPS_LBS_2, GPS_LBS_3, GPS_LBS_4, GPS_LBS_5})
#: basic (78 78) types Traccar does not acknowledge with the echo reply
NO_ACK = COMMANDS | {TIME_REQUEST, ADDRESS_REQUEST, INFO, SERIAL, 0x8C, LBS_3, 0x35, GPS_LBS_8}
#: extended (79 79) types that are acknowledged, and whether the ack is 79 79 framed
EXTENDED_ACK = {
    STRING_INFO: False,
    GPS_LBS_STATUS_4: True,
    WIFI_5: True,
    0x41: True,  # multimedia
    GPS_MODULAR: False,
    DEVICE_STATUS: False,
    PERIPHERAL: False,
}

NT_MODELS = frozenset({"NT11", "NT20", "NT26", "NT40", "NT46", "VL100", "XT40"})
VL_MODELS = frozenset({"VL103", "LL303", "VL512", "G18"})

#: alarm byte of status packets -> Traccar alarm (model-independent codes)
ALARM_CODES = {
    0x01: "sos",
    0x02: "powerCut",
    0x03: "vibration",
    0x04: "geofenceEnter",
    0x05: "geofenceExit",
    0x06: "overspeed",
    0x09: "vibration",
    0x0C: "tampering",
    0x0E: "lowBattery",
    0x0F: "lowBattery",
    0x11: "powerOff",
    0x13: "tampering",
    0x14: "door",
    0x18: "removing",
    0x19: "lowBattery",
    0x1A: "hardBraking",
    0x1B: "hardCornering",
    0x23: "fallDown",
    0x25: "tampering",
    0x26: "hardAcceleration",
    0x27: "hardBraking",
    0x28: "hardBraking",
    0x29: "hardAcceleration",
    0x2A: "hardCornering",
    0x2B: "hardCornering",
    0x2C: "accident",
    0x2E: "hardCornering",
    0x30: "jamming",
    0x32: "tampering",
    0x33: "lock",
    0x34: "unlock",
    0x53: "fuelLeak",
    0x5B: "temperature",
    0x5C: "temperature",
    0xC9: "idle",
    0x0107: "jamming",
    0x010B: "jamming",
}
LW_ALARMS = {0x18: "accident", 0x19: "hardAcceleration"}
SEEWORLD_ALARMS = {0x28: "hardCornering", 0x29: "accident"}
VL_ALARMS = {0x09: "tow", 0x28: "powerOff", 0x30: "hardBraking"}
#: alarm bits 3-5 of the terminal info byte
STATUS_ALARMS = {1: "vibration", 2: "powerCut", 3: "lowBattery", 4: "sos", 6: "geofence", 7: "removing"}
#: event byte of 0x95 alarm packets
EVENT_ALARMS = {
    0x0E: "lowPower",
    0x76: "temperature",
    0x80: "vibration",
    0x87: "overspeed",
    0x88: "powerCut",
    0x90: "hardAcceleration",
    0x91: "hardBraking",
    0x92: "hardCornering",
    0x93: "accident",
}
#: event of a 0x70 modular packet (module 0x34)
MODULAR_EVENTS = {
    0x10: "door",
    0x12: "removing",
    0x14: "geofenceEnter",
    0x15: "geofenceExit",
    0x16: "temperature",
    0x1A: "lowBattery",
    0x1B: "overspeed",
    0x1C: "powerOn",
    0x1D: "powerOff",
    0x20: "vibration",
    0x21: "powerCut",
    0x23: "tampering",
}
#: our alarm names -> alarm byte written by the simulated device
DEVICE_ALARM_CODES = {
    "sos": 0x01,
    "powerCut": 0x02,
    "vibration": 0x03,
    "geofenceEnter": 0x04,
    "geofenceExit": 0x05,
    "overspeed": 0x06,
    "lowBattery": 0x0E,
    "powerOff": 0x11,
    "tampering": 0x13,
    "door": 0x14,
    "removing": 0x18,
    "hardBraking": 0x1A,
    "hardCornering": 0x1B,
    "fallDown": 0x23,
    "hardAcceleration": 0x26,
    "accident": 0x2C,
}

#: hex values of the 0x94 sub-type 0x04 "KEY=value;" status text
INFO_STATUS_KEYS = {
    "ALM1": "alarm1Status",
    "ALM2": "alarm2Status",
    "ALM3": "alarm3Status",
    "ALM4": "alarm4Status",
    "STA1": "otherStatus",
    "DYD": "engineStatus",
}
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

VOLTAGE_LEVELS = 6  # terminal voltage level 0..6 -> percent
LOCATION_TEXT = re.compile(
    r"Current position!Lat:([NS])(\d+\.\d+),Lon:([EW])(\d+\.\d+),Course:(\d+\.\d+),Speed:(\d+\.\d+),"
    r"DateTime:(\d{4})-(\d\d)-(\d\d) +(\d\d):(\d\d):(\d\d)"
)
KNOTS = 1.852
#: 0x94 sub-type 0x0D fuel sensor text: address, output, temperature, version, status, level ...
FUEL_TEXT = re.compile(r"!AIOIL,\d+,\d+\.\d+,(\d+\.\d+),[^,]+,\d{4},(\d+\.\d+),[01],\d+,[0-9A-Fa-f]{2}")
#: 0x8C OBD text "<pid hex>=<value hex>,...": pid -> (key, scale); 0x74 is the VIN as text
OBD_PIDS = {
    0x40: "odometer",
    0x43: "fuel",
    0x45: "coolantTemp",
    0x53: "obdSpeed",
    0x54: "rpm",
    0x71: "fuelUsed",
    0x73: "hours",
}
OBD = 0x8C
OBD_TRAILER = 12  # bytes after the OBD text (before serial and CRC)

crc_x25 = CRC16_X25  # CRC-16/X-25 (CRC-ITU); the name devices and tests import


def build_frame(type_: int, content: bytes, serial: int, *, extended: bool = False) -> bytes:
    """A CRC-framed packet: `78 78`/`79 79`, length, type, content, serial, CRC, `0D 0A`."""
    length = len(content) + MIN_LENGTH
    head = LONG + length.to_bytes(2, "big") if extended else SHORT + bytes([length])
    packet = head + bytes([type_]) + content + (serial & 0xFFFF).to_bytes(2, "big")
    return packet + crc_x25(packet[2:]).to_bytes(2, "big") + TRAILER


def time_reply(now: datetime, serial: int = 0) -> bytes:
    """The answer to a 0x8A time request (UTC now; Traccar sends serial 0).
    `inspect` cannot give it (no clock): the edge calls this when `inspect`
    reports a frame of type 0x8A, see `is_time_request`."""
    now = now.astimezone(UTC)
    content = bytes([now.year - 2000, now.month, now.day, now.hour, now.minute, now.second])
    return build_frame(TIME_REQUEST, content, serial)


def is_time_request(frame: bytes) -> bool:
    return frame[:2] == SHORT and len(frame) > 3 and frame[3] == TIME_REQUEST


def _total(buf: bytes | bytearray) -> tuple[int, int] | None:
    """(header length, announced total) of the frame starting `buf`, None if unknown yet."""
    if buf[:2] == SHORT:
        return (3, buf[2] + 5) if len(buf) >= 3 else None
    return (4, int.from_bytes(buf[2:4], "big") + 6) if len(buf) >= 4 else None


@dataclass(slots=True, frozen=True)
class _Frame:
    extended: bool
    length: int  # the length field
    type: int
    body: bytes  # between type and serial (legacy: up to 0D 0A)
    serial: int | None  # None for a legacy frame without serial/CRC
    crc_ok: bool


def _parse(frame: bytes) -> _Frame:
    if frame[:2] not in (SHORT, LONG):
        raise DecodeError("no 7878/7979 header")
    bounds = _total(frame)
    if bounds is None or len(frame) < bounds[0] + 3 or frame[-2:] != TRAILER:
        raise DecodeError(f"truncated frame of {len(frame)} bytes")
    header, total = bounds
    length = total - header - 2
    type_ = frame[header]
    if total == len(frame) and length >= MIN_LENGTH:
        end = total - 6
        crc = int.from_bytes(frame[end + 2 : end + 4], "big")
        serial = int.from_bytes(frame[end : end + 2], "big")
        return _Frame(header == 4, length, type_, frame[header + 1 : end], serial, crc == crc_x25(frame[2 : end + 2]))
    if total < len(frame) and frame[total - 2 : total] == TRAILER and length >= MIN_LENGTH:
        raise DecodeError(f"{len(frame) - total} bytes after the announced frame end")
    return _Frame(header == 4, length, type_, frame[header + 1 : -2], None, True)


class _Reader:
    """Bounds-checked big-endian reads (DecodeError instead of IndexError)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"body too short: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        pos = self.pos  # `take`, inlined: every field of every frame is read here
        end = pos + n
        if n < 0 or end > len(self.data):
            raise DecodeError(f"body too short: need {n} bytes at offset {pos}")
        self.pos = end
        return int.from_bytes(self.data[pos:end], "big")

    def sint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big", signed=True)

    def u8(self) -> int:
        pos = self.pos
        if pos >= len(self.data):
            raise DecodeError(f"body too short: need 1 bytes at offset {pos}")
        self.pos = pos + 1
        return self.data[pos]

    def u16(self) -> int:
        return self.uint(2)

    def peek(self) -> int:
        if not self.remaining:
            raise DecodeError("body too short")
        return self.data[self.pos]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add_alarm(rec: Record, alarm: str | None) -> None:
    if alarm and alarm not in rec.alarms:
        rec.alarms.append(alarm)


def _date(raw: bytes) -> datetime:
    try:
        return datetime(2000 + raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError(f"invalid date {raw.hex()}") from exc


def _bcd_date(raw: bytes) -> datetime:
    digits = raw.hex()
    if not digits.isdigit():
        raise DecodeError(f"invalid BCD date {digits}")
    return _date(bytes(int(digits[i : i + 2]) for i in range(0, 12, 2)))


@dataclass(slots=True, frozen=True)
class _Unit:
    """What the decoder knows of the sender: the model option and the layout
    variant some units announce through an unusual length byte."""

    model: str
    variant: str

    @property
    def lw(self) -> bool:
        return self.model.startswith("LW")

    @property
    def nt(self) -> bool:
        return self.model in NT_MODELS

    @property
    def vl(self) -> bool:
        return self.model in VL_MODELS

    def alarm(self, code: int) -> str | None:
        specials = (
            (self.variant == "trx16i", TRX16I_ALARMS),
            (self.lw, LW_ALARMS),
            (self.model == "SEEWORLD", SEEWORLD_ALARMS),
            (self.vl, VL_ALARMS),
        )
        for special, table in specials:
            if special and code in table:
                return table[code]
        return ALARM_CODES.get(code)


#: (type, length field) of a 78 78 frame -> layout variant, as Traccar tells them apart
_VARIANTS = {
    (GPS_LBS_1, 0x24): "vxt01",
    (GPS_LBS_STATUS_1, 0x24): "vxt01",
    (LBS_MULTIPLE_3, 0x31): "wanway_s20",
    (LBS_MULTIPLE_3, 0x2E): "sr411_mini",
    (GPS_LBS_1, 0x2B): "s5",
    (STATUS, 0x13): "obd6",
    (GPS_LBS_1, 0x29): "wetrust",
    (LBS_3, 0x37): "sl4x",
    (GPS_LBS_5, 0x2A): "sl4x",
    (GPS_LBS_STATUS_4, 0x27): "sl4x",
    (GPS_LBS_STATUS_4, 0x29): "sl4x",
    (GPS_LBS_2, 0x2F): "seeworld",
    (GPS_LBS_STATUS_1, 0x26): "seeworld",
    (FENCE_SINGLE, 0x0C): "seeworld",
    (WIFI, 0x28): "rfid",
    (WIFI_3, 0x40): "lw4g",
    (FENCE_SINGLE, 0x18): "seeworld",
    (STATUS_2, 0x35): "trx16i",
    (GPS_LBS_STATUS_1, 0x2D): "trx16i",
}
TRX16I_ALARMS = {0x09: "geofence", 0x0E: "lowPower"}


def _variant(f: _Frame) -> str:
    if f.extended:
        return "standard"
    if f.type == GPS_LBS_1 and f.length >= 0x71:
        return "gt06e_card"
    if f.type == LBS_STATUS and f.length >= 0x17:
        return "space10x"
    if f.type == ALARM and f.body[:2] == b"\xff\xff":
        return "jc400"
    return _VARIANTS.get((f.type, f.length), "standard")


def _reupload_flag(f: _Frame) -> bool:
    """The re-upload byte of a standard 0x22 packet (GPS 18 B, LBS, ACC, mode, flag)."""
    if f.type != GPS_LBS_2 or len(f.body) < GPS_SIZE + 2:
        return False
    mnc = 2 if f.body[GPS_SIZE] & 0x80 else 1
    at = GPS_SIZE + 2 + mnc + 2 + 3 + 2  # GPS, mcc, mnc, lac, cell id, ACC, upload mode
    return at < len(f.body) and f.body[at] != 0


def _kind(f: _Frame) -> str:
    t = f.type
    if t == LOGIN:
        return "login"
    if f.serial is None and t in (WIFI, WIFI_2):
        return "status"
    if t in (STATUS, HEARTBEAT):
        return "heartbeat"
    if t in ALARM_TYPES or (f.extended and t == WIFI_5):
        return "alarm"
    if _reupload_flag(f):
        return "batch"
    position_variants = ((WIFI, "rfid"), (WIFI_3, "lw4g"), (LBS_3, "standard"), (STATUS_2, "trx16i"))
    if t in POSITION_TYPES or (t, _variant(f)) in position_variants:
        return "position"
    if t in STATUS_ONLY_TYPES:
        return "status"
    return "other"


def _imei(body: bytes) -> str:
    digits = body[:8].hex()[1:]
    if len(digits) != 15 or not digits.isdigit():
        raise DecodeError(f"login IMEI is not 15 BCD digits: {body[:8].hex()}")
    return digits


# ---------------------------------------------------------------- decoding blocks


def _gps(
    r: _Reader,
    rec: Record,
    *,
    has_length: bool = False,
    has_satellites: bool = True,
    has_speed: bool = True,
    long_speed: bool = False,
    flags_first: bool = False,
) -> None:
    rec.fix_time = _date(r.take(6))
    if has_length and r.u8() == 0:
        return
    if has_satellites:
        rec.satellites = r.u8() & 0x0F
    lat = r.uint(4) / COORD_SCALE
    lon = r.uint(4) / COORD_SCALE
    flags = r.u16() if flags_first else 0
    if has_speed:
        rec.speed = float(r.u16() if long_speed else r.u8())
    if not flags_first:
        flags = r.u16()
    rec.course = float(flags & 0x3FF)
    rec.valid = bool(flags & 0x1000)
    rec.latitude = lat if flags & 0x0400 else -lat
    rec.longitude = -lon if flags & 0x0800 else lon
    if flags & 0x4000:
        rec.ignition = bool(flags & 0x8000)


def _cell(rec: Record, mcc: int, mnc: int, lac: int, cid: int) -> None:
    rec.attributes.update(mcc=str(mcc & 0x7FFF), mnc=str(mnc), lac=str(lac), cid=str(cid))


def _lbs(r: _Reader, rec: Record, t: int, unit: _Unit, *, has_length: bool) -> None:
    length = 0
    if has_length:
        length = r.u8()
        if length == 0:
            return
    cell_type = r.u8() if t == GPS_LBS_8 else 0
    mcc = r.u16()
    mnc = r.u16() if mcc & 0x8000 or t == GPS_LBS_6 or unit.variant == "sl4x" else r.u8()
    wide = cell_type >= 3 or t in (LBS_ALARM, GPS_LBS_7) or unit.variant == "lw4g"
    lac = r.sint(4) if wide else r.u16()
    if wide or unit.variant == "sl4x":
        cid = r.uint(8)
    elif (
        t in (GPS_LBS_6, GPS_LBS_DRIVER, IBUTTON)
        or unit.variant == "seeworld"
        or (t, unit.variant) == (STATUS_2, "trx16i")
    ):
        cid = r.uint(4)
    else:
        cid = r.uint(3)
    if cell_type >= 3:
        r.u16()  # rssi
    elif t == GPS_LBS_8:
        r.u8()  # rssi
    _cell(rec, mcc, mnc, lac, cid)
    if length > 9:
        r.take(length - 9)


def _terminal_info(r: _Reader, rec: Record, unit: _Unit) -> None:
    status = r.u8()
    rec.ignition = bool(status & 0x02)
    rec.attributes.update(status=str(status), charge=_text(bool(status & 0x04)), blocked=_text(bool(status & 0x80)))
    alarm = STATUS_ALARMS.get((status >> 3) & 0x07)
    if alarm == "removing" and unit.variant == "vxt01":
        alarm = "overspeed"
    _add_alarm(rec, alarm)


def _battery_level(rec: Record, level: int) -> None:
    if level <= VOLTAGE_LEVELS:
        rec.battery_level = float(level * 100 // VOLTAGE_LEVELS)
    elif level <= 100:
        rec.battery_level = float(level)


def _status_block(r: _Reader, rec: Record, t: int, unit: _Unit) -> None:
    """Terminal info, voltage level, GSM signal, alarm byte (and model variants)."""
    nt_driver = unit.nt and t in (GPS_LBS_2, GPS_LBS_DRIVER)
    if t == WIFI_3:
        r.u8()  # network indicator
    _terminal_info(r, rec, unit)
    if unit.variant == "obd6":
        signal = r.u16()
        rec.satellites = ((signal >> 10) & 0x1F) + ((signal >> 5) & 0x1F)
        rec.attributes["rssi"] = str(signal & 0x1F)
        _add_alarm(rec, unit.alarm(r.u8()))
        r.u8()  # language
        rec.battery_level = float(r.u8())
        mode = r.u8()
        rec.power = r.u16() / 100
        r.take(3)  # reserved, working time
        if mode == 4:
            rec.attributes["temp1"] = str(r.sint(2) / 10)
        return
    if t == WIFI_3 or nt_driver:
        rec.power = r.u16() / 100
    if t == STATUS and unit.model == "R11":
        rec.power = r.u16() / 100
    else:
        level = r.u8()
        if nt_driver:
            rec.battery = level / 10
        else:
            _battery_level(rec, level)
    if not r.remaining:
        return
    rec.attributes["rssi"] = str(r.u8())
    if t == STATUS and unit.lw:
        rec.power = (r.u16() & 0x0FFF) / 10
        return
    if not r.remaining:
        return
    code = r.u8()
    if t in (GPS_LBS_STATUS_3, FENCE_MULTI) and r.remaining:
        code |= (r.peek() >> 4) << 8
    if t == STATUS and unit.model == "SEEWORLD":
        rec.power = float(code)
    elif unit.variant != "vxt01":
        _add_alarm(rec, unit.alarm(code))
        if unit.variant == "trx16i":
            rec.attributes["event"] = str(code)


def _upload_trailer(r: _Reader, rec: Record) -> None:
    """ACC byte, upload mode, re-upload flag (0x22 and friends)."""
    rec.ignition = r.u8() > 0
    rec.attributes["event"] = str(r.u8())
    rec.archive = r.u8() > 0


def _location(r: _Reader, t: int, unit: _Unit) -> list[Record]:
    """GPS/LBS/status packets (0x10-0x12, 0x16, 0x19, 0x22, 0x26, 0x27, 0xA0, 0xA3-0xA5 ...)."""
    rec = Record()
    if t == LBS_STATUS and unit.variant == "space10x":
        return []  # multi-LBS report, no position
    nt_driver = unit.nt and t in (GPS_LBS_2, GPS_LBS_DRIVER)
    if t == GPS_LBS_1 and unit.model == "QH302R":
        r.take(8)  # IMEI
    if nt_driver:
        r.take(1 + 8 + 6)  # location source, IMEI, device time
    has_status = t in STATUS_TYPES or t == WIFI_3 or nt_driver
    if t in GPS_TYPES or t in (WIFI, WIFI_3):
        _gps(r, rec)
    if (t in LBS_TYPES or t in (WIFI, WIFI_3)) and r.remaining:
        has_length = has_status and t not in (LBS_STATUS, LBS_ALARM, WIFI_3)
        has_length = has_length and not (t == GPS_LBS_STATUS_1 and unit.variant == "vxt01")
        if not has_length and r.remaining < 8:
            return [rec]  # legacy frame: stray bytes instead of a cell
        _lbs(r, rec, t, unit, has_length=has_length)
    if has_status and r.remaining:
        _status_block(r, rec, t, unit)
    if t in (GPS_LBS_STATUS_3, FENCE_MULTI, WIFI_3) or nt_driver:
        r.take(1)  # language
    _type_trailer(r, rec, t, unit)
    return [rec]


def _type_trailer(r: _Reader, rec: Record, t: int, unit: _Unit) -> None:
    """What follows the common blocks, per type and variant."""
    variant = unit.variant
    if t == WIFI_3:
        rec.odometer = float(r.uint(4))
        rec.attributes["hours"] = str(r.uint(4) * 1000)
        r.take(8)  # terminal id
        rec.attributes["input"] = str(r.u16())
    if t == GPS_LBS_1 and variant == "gt06e_card":
        rec.odometer = float(r.uint(4))
        card = r.take(r.u8()).decode("ascii", "replace").strip()
        r.take(2)  # alarm, swiped
        rec.attributes["card"] = card
    elif t == GPS_LBS_1 and variant in ("vxt01", "s5"):
        _terminal_info(r, rec, unit)
        rec.power = r.u16() / 100
        rec.attributes["rssi"] = str(r.u8())
        code = r.u8()
        if variant == "s5":
            _add_alarm(rec, unit.alarm(code))
            rec.attributes["oil"] = str(r.u16())
            temp = r.u8()
            rec.attributes["temp1"] = str(-(temp & 0x7F) if temp & 0x80 else temp)
            rec.odometer = float(r.uint(4) * 10)
    elif t == GPS_LBS_1 and variant == "wetrust":
        rec.odometer = float(r.uint(4))
        rec.attributes["card"] = r.take(r.u8()).decode("ascii", "replace")
        if r.u8():
            _add_alarm(rec, "general")
        rec.attributes["cardStatus"] = str(r.u8())
        rec.attributes["drivingTime"] = str(r.u16())
    if t == GPS_LBS_2 and variant == "seeworld":
        rec.ignition = r.u8() > 0
        r.u8()  # reporting mode
        rec.archive = r.u8() > 0  # supplementary transmission
        rec.odometer = float(r.uint(4))
        r.take(4)  # travel time
        temp = r.u16()
        rec.attributes["temp1"] = str(sign_magnitude(temp, 16) / 100)
        rec.attributes["humidity"] = str(r.u16() / 100)
    if t == GPS_LBS_STATUS_4 and variant == "sl4x" and r.remaining >= 2:
        rec.altitude = float(r.sint(2))
    if t in UPLOAD_TRAILER_TYPES and r.remaining >= 3 and not unit.nt:
        _upload_trailer(r, rec)
        if variant == "sl4x":
            if r.remaining > 2:
                rec.odometer = float(r.uint(4))
            rec.altitude = float(r.sint(2))
    if t == GPS_LBS_3:
        _modules(r, rec)
    if t == WIFI and variant == "rfid":
        rec.attributes["driverUniqueId"] = r.take(8).hex()
        r.u8()  # validity
    if t == GPS_LBS_STATUS_1 and variant == "trx16i":
        r.u8()  # language
        _rfid(rec, r.take(8))
    if unit.nt and t in (GPS_LBS_2, GPS_LBS_DRIVER):
        rec.odometer = float(r.uint(3))
        rec.attributes["hours"] = str(r.uint(3) * 60_000)
        if t == GPS_LBS_DRIVER:
            size = r.u8()
            if size:
                r.u8()  # identifier type
                rec.attributes["driverUniqueId"] = r.take(size - 1).hex()
    if r.remaining in (3, 7):
        _upload_trailer(r, rec)
    if r.remaining == 4:
        rec.odometer = float(r.uint(4))
    if t in (GPS_LBS_STATUS_3, FENCE_MULTI) and r.remaining:
        rec.attributes["geofence"] = str(r.u8())


def _rfid(rec: Record, raw: bytes) -> None:
    if any(raw):
        rec.attributes["driverUniqueId"] = raw.hex()


def _trx16i(r: _Reader, t: int, unit: _Unit) -> list[Record]:
    """0x36 on TRX16i units: GPS, LBS (4-byte cell id), ACC, upload mode, re-upload flag,
    odometer u32, power u16 (1/100 V), battery u8 (1/10 V), hours u24 (minutes), RFID (8 B)."""
    rec = Record()
    _gps(r, rec)
    _lbs(r, rec, t, unit, has_length=False)
    _upload_trailer(r, rec)
    rec.attributes["uploadMode"] = rec.attributes.pop("event")
    rec.odometer = float(r.uint(4))
    rec.power = r.u16() / 100
    rec.battery = r.u8() / 10
    rec.attributes["hours"] = str(r.uint(3) * 60_000)
    _rfid(rec, r.take(8))
    return [rec]


def _seeworld_status(r: _Reader, unit: _Unit) -> list[Record]:
    """0xA3 on SEEWORLD units (length byte 0x18): terminal info, extension status u16, voltage
    level, GSM signal, power (V), language, sound, light, steps u32, battery %, charging, moving."""
    rec = Record()
    _terminal_info(r, rec, unit)
    r.take(3)  # extension bit status, voltage level
    rec.attributes["rssi"] = str(r.u8())
    rec.power = float(r.u8())
    r.take(3)  # language, sound switch, light switch
    rec.attributes["steps"] = str(r.uint(4))
    rec.battery_level = float(r.u8())
    rec.attributes["charge"] = _text(r.u8() == 1)
    rec.attributes["motion"] = _text(r.u8() == 1)
    return [rec]


def _jimi_modules(r: _Reader, rec: Record) -> None:
    """Module list of 0x36/0x39 (Jimi IoT 4G): id u16, length u8, value."""
    while r.remaining >= 3:
        module, size = r.u16(), r.u8()
        value = _Reader(r.take(min(size, r.remaining)))
        if module == 0x0018 and value.remaining >= 2:
            rec.battery = value.u16() / 100
        elif module == 0x0032 and value.remaining:
            rec.attributes["startupStatus"] = str(value.u8())
        elif module == 0x006A and value.remaining:
            rec.battery_level = float(value.u8())


def _jimi_status(r: _Reader, t: int, unit: _Unit) -> list[Record]:
    """0x36 status / 0x39 alarm (Jimi IoT 4G): [GPS, LBS (cell type first, rssi last)],
    terminal info, voltage level, GSM signal, alarm (+ high nibble of the language), language,
    then modules."""
    rec = Record()
    if t == ALARM_MODULE:
        _gps(r, rec)
        cell_type = r.u8()
        mcc = r.u16()
        mnc = r.u16() if mcc & 0x8000 else r.u8()
        wide = cell_type >= 3
        lac = r.sint(4) if wide else r.u16()
        cid = r.uint(8 if wide else 3)
        r.take(2 if wide else 1)  # rssi
        _cell(rec, mcc, mnc, lac, cid)
    _terminal_info(r, rec, unit)
    _battery_level(rec, r.u8())
    rec.attributes["rssi"] = str(r.u8())
    code = r.u8()
    if t == ALARM_MODULE and r.remaining:
        code |= (r.peek() >> 4) << 8
    _add_alarm(rec, unit.alarm(code))
    r.u8()  # language
    _jimi_modules(r, rec)
    return [rec]


def _ibutton(r: _Reader, t: int, unit: _Unit) -> list[Record]:
    """0x61: IMEI (8 B), GPS, LBS, iButton id (u32 + u16, as one decimal number)."""
    rec = Record()
    r.take(8)
    _gps(r, rec)
    _lbs(r, rec, t, unit, has_length=False)  # 4-byte cell id
    rec.attributes["driverUniqueId"] = str((r.uint(4) << 16) | r.u16())
    return [rec]


def _bluetooth_clock(r: _Reader) -> list[Record]:
    """0xB2: time, rssi, tag mac, uuid (16 B), major, minor, tag battery (1/100 V), clock-in kind."""
    rec = Record(fix_time=_date(r.take(6)))
    rec.attributes["rssi"] = str(r.sint(1))
    rec.attributes["tagMac"] = r.take(6).hex()
    rec.attributes["tagUuid"] = r.take(16).hex()
    rec.attributes["tagMajor"] = str(r.u16())
    rec.attributes["tagMinor"] = str(r.u16())
    rec.attributes["tagBattery"] = str(r.u16() / 100)
    rec.attributes["clock"] = str((r.u8() >> 2) & 0x0F)
    return [rec]


def _bms(r: _Reader) -> list[Record]:
    """0x40 (WD-209 battery management): serial (8 B), unix time, capacities, health, temperature
    (1/10 K), current, voltage (mV), cycles, 14 cell voltages (mV), intervals, barcode, version,
    maker, battery / controller status and fault words."""
    r.take(8)
    rec = Record(fix_time=datetime.fromtimestamp(r.uint(4), UTC))
    a = rec.attributes
    a["relativeCapacity"] = str(r.u8())
    a["remainingCapacity"] = str(r.u16())
    a["absoluteCapacity"] = str(r.u8())
    a["fullCapacity"] = str(r.u16())
    a["batteryHealth"] = str(r.u8())
    a["batteryTemp"] = str(round(r.u16() / 10 - 273.1, 1))
    a["current"] = str(r.u16())
    rec.battery = r.u16() / 1000
    a["cycleIndex"] = str(r.u16())
    for i in range(1, 15):
        a[f"batteryCell{i}"] = str(r.u16() / 1000)
    a["currentChargeInterval"] = str(r.u16())
    a["maxChargeInterval"] = str(r.u16())
    a["barcode"] = r.take(16).decode("latin-1").strip()
    a["batteryVersion"] = str(r.u16())
    a["manufacturer"] = r.take(16).decode("latin-1").strip()
    a["batteryStatus"] = str(r.uint(4))
    a["controllerStatus"] = str(r.uint(4))
    a["controllerFault"] = str(r.uint(4))
    return [rec]


def _obd(r: _Reader) -> list[Record]:
    """0x8C (FM08ABC): time, ACC, then `pid=value` pairs in hex text, 12 trailing bytes."""
    rec = Record(fix_time=_date(r.take(6)))
    rec.ignition = r.u8() > 0
    text = r.take(max(0, r.remaining - OBD_TRAILER)).decode("ascii", "replace")
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        if len(key) < 2 or not value or not all(c in HEX_DIGITS for c in key[:2]):
            continue
        pid = int(key[:2], 16)
        if pid == 0x74:
            rec.attributes["vin"] = value
        elif pid in OBD_PIDS and all(c in HEX_DIGITS for c in value):
            number = int(value, 16) / 100
            if OBD_PIDS[pid] == "odometer":
                rec.odometer = number
            else:
                rec.attributes[OBD_PIDS[pid]] = str(number)
    return [rec]


def _wifi4(r: _Reader) -> list[Record]:
    """0xF3: BCD time, count, count x (2 B, mac 6 B): access points only."""
    # the time is read digit-wise like BCD, although units send binary values (as Traccar does)
    rec = Record(fix_time=_date(bytes((b >> 4) * 10 + (b & 0x0F) for b in r.take(6))))
    count = r.u8()
    r.take(8 * count)
    rec.attributes["wifiCount"] = str(count)
    return [rec]


def _modules(r: _Reader, rec: Record) -> None:
    """0x37 trailer: module id u16, length u8, value."""
    while r.remaining >= 3:
        module, size = r.u16(), r.u8()
        value = r.take(size)
        if module == 0x27 and size == 2:
            rec.power = int.from_bytes(value, "big") / 100
        elif module == 0x2E and size == 4:
            rec.odometer = float(int.from_bytes(value, "big"))


def _sr411(r: _Reader, t: int, unit: _Unit) -> list[Record]:
    """0x24 from SR411 mini units (length byte 0x2E): GPS, LBS, ACC, power and battery volts."""
    rec = Record()
    _gps(r, rec)
    _lbs(r, rec, t, unit, has_length=False)
    rec.ignition = r.u8() > 0
    rec.power = r.u16() / 100
    rec.battery = r.u16() / 100
    return [rec]


def _x1_gps(r: _Reader) -> list[Record]:
    """0x34 (X1): data/alarm word, GPS, terminal info, odometer, cell, driver id,
    battery and power volts, port info, inputs, outputs, ADC values."""
    rec = Record()
    r.take(4)  # data and alarm
    _gps(r, rec)
    r.take(2)  # terminal info
    rec.odometer = float(r.uint(4))
    _cell(rec, r.u16(), r.u8(), r.u16(), r.uint(4))
    driver = r.uint(4)
    if driver:
        rec.attributes["driverUniqueId"] = str(driver)
    rec.battery = r.u16() / 100
    rec.power = r.u16() / 100
    ports = r.uint(4)
    rec.attributes.update(input=str(r.u8()), output=str(r.u8()))
    for i in range(1, ((ports >> 20) & 0x0F) + 1):
        rec.attributes[f"adc{i}"] = str(r.u16() / 100)
    return [rec]


def _heartbeat(r: _Reader) -> list[Record]:
    """0x23 (GK310): status bits, battery volts, GSM signal."""
    rec = Record()
    status = r.u8()
    rec.ignition = bool(status & 0x02)
    rec.attributes.update(armed=_text(bool(status & 0x01)), charge=_text(bool(status & 0x04)))
    if r.remaining >= 2:
        rec.battery = r.u16() / 100
    if r.remaining >= 1:
        rec.attributes["rssi"] = str(r.u8())
    return [rec]


def _status13(r: _Reader, unit: _Unit) -> list[Record]:
    """0x13 heartbeat/status (and the 22-byte extended status)."""
    if r.remaining == 16:  # extended status: info, satellites, alarm, language, level ...
        rec = Record()
        r.take(5)
        rec.battery_level = float(r.u8())
        r.take(8)
        value = r.u16()
        temp = (value & 0x7FFF) / 10
        rec.attributes["temp1"] = str(temp if value & 0x8000 else -temp)
        return [rec]
    rec = Record()
    _status_block(r, rec, STATUS, unit)
    return [rec]


def _wifi(f: _Frame) -> list[Record]:
    """0x17/0x69 legacy WiFi report: BCD time, access points (count in the length byte), cells."""
    r = _Reader(f.body)
    rec = Record(fix_time=_bcd_date(r.take(6)))
    count = f.length  # the length field holds the access-point count
    r.take(7 * count)
    if r.remaining >= 4:
        cells = r.u8()
        mcc, mnc = r.u16(), r.u8()
        if cells and r.remaining >= 5:
            _cell(rec, mcc, mnc, r.u16(), r.u16())
    rec.attributes["wifiCount"] = str(count)
    return [rec]


def _multi_lbs(r: _Reader, t: int, unit: _Unit) -> list[Record]:
    """Multi-cell reports (0x18, 0x24, 0x28, 0x2C, 0x2E, 0xA1, 0xA2, 0xA9): time and serving cell."""
    rec = Record(fix_time=_date(r.take(6)))
    if unit.variant in ("wanway_s20", "sl4x"):
        r.u8()  # timing advance
    mcc = r.u16()
    mnc = r.u16() if mcc & 0x8000 or unit.variant == "sl4x" else r.u8()
    wide = t in (LBS_2, WIFI_3) or (t == WIFI_ALARM and r.u8() > 0)
    count = r.u8() if unit.variant == "wanway_s20" or t == WIFI_ALARM else 7
    for i in range(count):
        lac = r.sint(4) if wide else r.u16()
        cid = r.uint(8 if wide else 4 if t == LBS_3 else 3)
        r.u8()  # rssi
        if i == 0 and lac > 0:
            _cell(rec, mcc, mnc, lac, cid)
    if unit.variant not in ("wanway_s20", "sl4x"):
        r.u8()  # timing advance
    if t not in (LBS_MULTIPLE_1, LBS_MULTIPLE_2, LBS_MULTIPLE_3, LBS_2, LBS_3):
        aps = r.u8()
        r.take(7 * aps)
        rec.attributes["wifiCount"] = str(aps)
    if t == WIFI_ALARM:
        code = r.u8()
        _add_alarm(rec, unit.alarm(((r.u8() >> 4) << 8) | code))
    return [rec]


def _string(r: _Reader) -> list[Record]:
    """0x15: command length, server flag (4), ASCII answer."""
    rec = Record()
    size = r.u8()
    if size >= 4:
        r.take(4)
        text = r.take(size - 4).decode("ascii", "replace")
        if text.startswith("<ICCID:"):
            rec.attributes["iccid"] = text[7:27]
        else:
            rec.attributes["result"] = text
    return [rec]


def _string_info(r: _Reader) -> list[Record]:
    """0x21: server flag (4), encoding (1 = ASCII, else UTF-16BE), text."""
    r.take(4)
    ascii_text = r.u8() == 1
    raw = r.take(r.remaining)
    text = raw.decode("ascii", "replace") if ascii_text else raw.decode("utf-16-be", "replace")
    rec = Record()
    m = LOCATION_TEXT.search(text)
    if m is None:
        rec.attributes["result"] = text
        return [rec]
    lat, lon = float(m[2]), float(m[4])
    rec.latitude = -lat if m[1] == "S" else lat
    rec.longitude = -lon if m[3] == "W" else lon
    rec.valid = True
    rec.course = float(m[5])
    rec.speed = float(m[6]) * KNOTS  # Traccar reads this value as knots
    year, month, day, hour, minute, second = (int(v) for v in m.groups()[6:])
    try:
        rec.fix_time = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise DecodeError(f"invalid date in {text!r}") from exc
    return [rec]


def _info(r: _Reader, f: _Frame) -> list[Record]:
    """0x94 information transfer: basic frames carry the external voltage, extended
    ones a sub-type byte and its content."""
    rec = Record()
    if not f.extended:
        rec.power = r.sint(2) / 100
        return [rec]
    sub = r.u8()
    if sub == 0x00:
        rec.attributes["adc1"] = str(r.u16() / 100)
    elif sub == 0x04:
        for item in r.take(r.remaining).decode("ascii", "replace").split(";"):
            key, _, value = item.partition("=")
            value = value.strip()
            if key in INFO_STATUS_KEYS and value and all(c in HEX_DIGITS for c in value):
                rec.attributes[INFO_STATUS_KEYS[key]] = str(int(value, 16))
    elif sub == 0x05:
        if r.remaining >= 7:
            rec.attributes["deviceTime"] = _date(r.take(6)).isoformat()
        flags = r.u8()
        rec.attributes.update(door=_text(bool(flags & 0x01)), io1=_text(bool(flags & 0x04)))
    elif sub == 0x0A:
        r.take(16)  # IMEI, IMSI
        rec.attributes["iccid"] = r.take(10).hex().rstrip("f")
    elif sub == 0x0B:
        if r.remaining == 1:
            rec.attributes["networkTechnology"] = "4G" if r.u8() else "2G"
        elif r.remaining == 2:
            rec.power = r.u16() / 100
    elif sub == 0x0D:
        raw = r.take(r.remaining)
        text = (raw if raw[:1] == b"!" else raw[6:]).decode("ascii", "replace")
        match = FUEL_TEXT.match(text)
        if match is None:
            return []
        rec.attributes["temp1"] = str(float(match.group(1)))
        rec.attributes["fuel"] = str(float(match.group(2)))
    elif sub == 0x1B:
        if chr(r.peek()).isalpha():
            rec.attributes["serial"] = r.take(r.remaining).decode("ascii", "replace").strip()
        else:
            r.take(2)  # header, type
            rec.attributes["driverUniqueId"] = r.take(4).hex()
    elif sub == 0x1E:
        rec.attributes["temp1"] = str(r.sint(4) / 10)
        rec.attributes["humidity"] = str(r.sint(4) / 10)
    else:
        rec.attributes["result"] = r.take(r.remaining).hex()
    return [rec]


def _alarm95(r: _Reader, f: _Frame, unit: _Unit) -> list[Record]:
    """0x95 (JC100/JC400 dash cams): time or GPS, event code, event data, file names."""
    rec = Record()
    jc400 = unit.variant == "jc400"
    extended_alarm = len(f.body) > 7
    if extended_alarm:
        if jc400:
            r.take(3)  # marker, version
        _gps(r, rec, has_satellites=jc400, has_speed=jc400, long_speed=jc400, flags_first=jc400)
    else:
        rec.fix_time = _date(r.take(6))
    if jc400:
        rec.power = r.u16() / 10
    event = r.u8()
    rec.attributes["event"] = str(event)
    if r.remaining >= 2:
        rec.attributes["eventData"] = str(r.u16())
    _add_alarm(rec, ("sos" if extended_alarm else "general") if event == 0x01 else EVENT_ALARMS.get(event))
    if r.remaining:
        rec.attributes["eventFiles"] = r.take(r.remaining).decode("ascii", "replace")
    return [rec]


def _serial_data(r: _Reader) -> list[Record]:
    """0x9B transparent serial data: device type, payload (text if printable)."""
    r.u8()  # external device type
    data = r.take(r.remaining)
    printable = all(0x20 <= b < 0x7F or b in b"\r\n\t" for b in data)
    return [Record(attributes={"result": data.decode("ascii").strip() if printable else data.hex()})]


def _modular(r: _Reader) -> list[Record]:
    """0x70: modules of id u16, length u16, value."""
    rec = Record()
    while r.remaining >= 4:
        module, size = r.u16(), r.u16()
        m = _Reader(r.take(size))
        if module == 0x03:
            rec.attributes["iccid"] = m.take(10).hex()
        elif module == 0x09:
            rec.satellites = m.u8()
        elif module == 0x0A:
            rec.attributes["satVisible"] = str(m.u8())
        elif module == 0x11:
            mcc, mnc, lac, cid = m.u16(), m.u16(), m.u16(), m.uint(3)
            if cid:
                _cell(rec, mcc, mnc, lac, cid)
        elif module == 0x18:
            rec.battery = m.u16() / 100
        elif module == 0x28:
            rec.attributes["hdop"] = str(m.u8() / 10)
        elif module == 0x29:
            rec.attributes["index"] = str(m.uint(4))
        elif module == 0x2A:
            value = m.u8()
            rec.attributes.update(door=_text(bool(value & 0x0F)), tamper=_text(bool(value >> 4)))
        elif module == 0x2B:
            rec.attributes["bootReason"] = str(m.u8())
        elif module == 0x2E:
            rec.odometer = float(int.from_bytes(m.take(4), "little"))
        elif module == 0x33:
            _modular_gps(m, rec)
        elif module == 0x34:
            event = m.u8()
            _add_alarm(rec, MODULAR_EVENTS.get(event))
            rec.attributes["event"] = str(event)
        elif module == 0x7F:
            _tag(m, rec)
    return [rec]


def _modular_gps(m: _Reader, rec: Record) -> None:
    """Module 0x33: unix time, satellites, altitude, lat, lon, speed, course/status."""
    rec.fix_time = datetime.fromtimestamp(m.uint(4), UTC)
    rec.satellites = m.u8()
    rec.altitude = float(m.sint(2))
    lat, lon = m.uint(4) / COORD_SCALE, m.uint(4) / COORD_SCALE
    rec.speed = float(m.u8())
    flags = m.u16()
    rec.course = float(flags & 0x3FF)
    rec.valid = bool(flags & 0x1000)
    rec.latitude = lat if flags & 0x0400 else -lat
    rec.longitude = -lon if flags & 0x0800 else lon


def _tag(m: _Reader, rec: Record) -> None:
    """Module 0x7F: BLE sensor tag."""
    rec.attributes["tag1Id"] = m.take(6).hex()
    rec.attributes["tag1Battery"] = str(m.u16() / 1000)
    rec.attributes["tag1BatteryLevel"] = str(m.u8())
    rec.attributes["tag1Temp"] = str(m.sint(2) / 10)
    rec.attributes["tag1Humidity"] = str(m.sint(2))
    rec.attributes["tag1Status"] = str(m.u8())


def _device_status(r: _Reader, t: int) -> list[Record]:
    """0xF1 device status / 0xF2 peripheral: unix time, then id/length/value items."""
    rec = Record(fix_time=datetime.fromtimestamp(r.uint(4), UTC))
    while r.remaining >= 3:
        item = r.u16()
        if t == PERIPHERAL:
            size = r.u16() if item == 0x000A else r.u8() or r.u8()
            r.take(size)
            continue
        value = r.take(r.u8())
        number = int.from_bytes(value, "big")
        if item == 0x0001:
            rec.attributes["motion"] = _text(number in (0x02, 0x04))
        elif item == 0x0002:
            rec.attributes["armed"] = _text(number > 0)
        elif item == 0x0004:
            rec.ignition = number > 0
        elif item == 0x0005:
            rec.power = number / 100
        elif item == 0x0007:
            rec.attributes["charge"] = _text(number > 0)
    return [rec]


def _az735(r: _Reader, t: int, unit: _Unit) -> list[Record]:
    """Extended 0x32/0x33 (AZ735): GPS and LBS with length bytes, extra cells, WiFi, status."""
    rec = Record()
    _gps(r, rec, has_length=True)
    if rec.latitude is None:
        rec.valid = False
    size = r.u8()
    if size:
        mcc = r.u16()
        mnc = r.u16() if mcc & 0x8000 else r.u8()
        _cell(rec, mcc, mnc, r.u16(), r.uint(3))
        r.take(max(0, size - 9))
        rec.attributes["rssi"] = str(r.u8())
    r.take(r.u8())  # additional cells
    r.take(r.u8())  # WiFi access points
    status = r.u8()
    rec.attributes["status"] = str(status)
    if t == WIFI_5:
        if status in (0xA0, 0xA1):
            rec.attributes["armed"] = _text(status == 0xA0)
        _add_alarm(rec, {0xA2: "lowBattery", 0xA3: "lowBattery", 0xA4: "general", 0xA5: "door"}.get(status))
    return [rec]


def _other(f: _Frame) -> list[Record]:
    if f.type in (LOGIN, TIME_REQUEST, ADDRESS_REQUEST) or f.type in COMMANDS:
        return []
    return [Record(attributes={"type": f"{f.type:02x}", "data": f.body.hex()})]


def _records(f: _Frame, unit: _Unit) -> list[Record]:
    t, r = f.type, _Reader(f.body)
    if not f.body:
        return []
    if t == STATUS:
        return _status13(r, unit)
    if t == HEARTBEAT:
        return _heartbeat(r)
    if f.serial is None and t in (WIFI, WIFI_2):
        return _wifi(f)
    if t == STRING:
        return _string(r)
    if t == STRING_INFO:
        return _string_info(r)
    if t == INFO:
        return _info(r, f)
    if t == ALARM:
        return _alarm95(r, f, unit)
    if t == SERIAL:
        return _serial_data(r)
    if t == GPS_MODULAR:
        return _modular(r)
    if t in (DEVICE_STATUS, PERIPHERAL):
        return _device_status(r, t)
    if not f.extended and t == STATUS_2 and unit.variant == "trx16i":
        return _trx16i(r, t, unit)
    if not f.extended and t in (STATUS_2, ALARM_MODULE):
        return _jimi_status(r, t, unit)
    if t == FENCE_SINGLE and unit.variant == "seeworld":
        return _seeworld_status(r, unit) if f.length == 0x18 else []
    if t == IBUTTON:
        return _ibutton(r, t, unit)
    if t == BLUETOOTH_CLOCK:
        return _bluetooth_clock(r)
    if t == BMS:
        return _bms(r)
    if t == WIFI_4:
        return _wifi4(r)
    if t == OBD:
        return _obd(r)
    if f.extended and t in (GPS_LBS_STATUS_4, WIFI_5):
        return _az735(r, t, unit)
    if t == GPS_LBS_8:
        rec = Record()
        _gps(r, rec)
        r.u8()  # upload mode
        rec.archive = r.u8() > 0
        _lbs(r, rec, t, unit, has_length=False)
        return [rec]
    if t == LBS_3 and unit.variant != "sl4x":
        return _x1_gps(r)
    if t == LBS_MULTIPLE_3 and unit.variant == "sr411_mini":
        return _sr411(r, t, unit)
    if t == WIFI_3 and unit.variant == "lw4g":
        return _location(r, t, unit)
    if t in MULTI_LBS_TYPES or t in (LBS_3, WIFI_5):
        return _multi_lbs(r, t, unit)
    if t in GPS_TYPES or t in LBS_TYPES or t == WIFI_3 or (t == WIFI and unit.variant == "rfid"):
        return _location(r, t, unit)
    if t == GPS_LBS_DRIVER and unit.nt:
        return _location(r, t, unit)
    return _other(f)


# ---------------------------------------------------------------- framing


class Gt06Framer(Framer):
    """Length-prefixed frames; a frame whose announced end is not `0D 0A` (a legacy
    clone without serial/CRC) ends at the first `0D 0A` instead."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 2  # where the 0D 0A search of a legacy frame resumes

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if not buf:
            return None
        if buf[:2] not in (SHORT, LONG):
            self._drop_garbage()
        bounds = _total(buf)
        if bounds is None:
            return None
        _, total = bounds
        oversized(buf, total, self.max_frame)
        if len(buf) < total:
            return None
        if buf[total - 2 : total] == TRAILER:
            return self._cut(total)
        end = buf.find(TRAILER, self._scan)
        if end < 0:
            self._scan = max(2, len(buf) - 1)
            if len(buf) > self.max_frame:
                oversized(buf, len(buf), self.max_frame)
            return None
        return self._cut(end + 2)

    def _cut(self, size: int) -> bytes:
        frame = bytes(self._buf[:size])
        del self._buf[:size]
        self._scan = 2
        return frame

    def _drop_garbage(self) -> None:
        buf = self._buf
        if len(buf) == 1 and buf[0] in (0x78, 0x79):
            return
        starts = [i for i in (buf.find(SHORT, 1), buf.find(LONG, 1)) if i > 0]
        half_header = buf[-1] in (0x78, 0x79)  # may start a header still to come
        cut = min(starts) if starts else len(buf) - half_header
        junk = bytes(buf[:cut])
        del buf[:cut]
        self._scan = 2
        raise FramingError(f"{len(junk)} bytes outside a frame", discarded=junk, reason="garbage")


# ---------------------------------------------------------------- codec


class Gt06Codec(Codec):
    name = "gt06"
    first_bytes = b"\x78\x79"
    priority = 10
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 4096

    def detect(self, head: bytes, transport: str) -> Detection:
        if len(head) < 2:
            return Detection.MORE if head in (b"", b"\x78", b"\x79") else Detection.NO
        if head[:2] not in (SHORT, LONG):
            return Detection.NO
        bounds = _total(head)
        if bounds is None:
            return Detection.MORE
        header, total = bounds
        if total - header - 2 < MIN_LENGTH or total > self.max_frame:
            return Detection.NO  # no room for serial + CRC: Topin and other look-alikes
        if len(head) < total:
            # a whole 0D 0A-terminated frame shorter than announced: Topin's login
            return Detection.NO if head[:2] == SHORT and head.endswith(TRAILER) else Detection.MORE
        if head[total - 2 : total] != TRAILER:
            return Detection.NO
        crc = int.from_bytes(head[total - 4 : total - 2], "big")
        return Detection.YES if crc == crc_x25(head[2 : total - 4]) else Detection.NO

    def new_framer(self) -> Framer:
        return Gt06Framer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        f = _parse(frame)
        if not f.crc_ok:
            raise ChecksumError(f"CRC mismatch in frame type 0x{f.type:02x}")
        device_id = _imei(f.body) if f.type == LOGIN else None
        return FrameInfo(_kind(f), device_id, _reply(f), clock_reply=f.type == TIME_REQUEST and not f.extended)

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        return time_reply(now) if is_time_request(frame) else None

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        f = _parse(frame)
        unit = _Unit(ctx.options.get("model", "").upper(), _variant(f))
        if f.type == LOGIN:
            return Decoded("login", _imei(f.body), [])
        records = _records(f, unit)
        kind = _kind(f)
        if any(rec.archive for rec in records):
            kind = "batch"
        return Decoded(kind, None, records)


def _reply(f: _Frame) -> bytes | None:
    """The echo ack `78 78 05 <type> <serial> <crc> 0D 0A` where one is due."""
    if f.serial is None:
        if f.type in (WIFI, WIFI_2) and len(f.body) >= 6:
            return SHORT + bytes([0, f.type]) + f.body[:6] + TRAILER
        return None
    if f.type == ADDRESS_REQUEST:
        text = b"NA&&NA&&0##"
        return build_frame(ADDRESS_RESPONSE, bytes([len(text)]) + bytes(4) + text, 0, extended=True)
    if f.extended:
        if f.type not in EXTENDED_ACK:
            return None
        return build_frame(f.type, b"", f.serial, extended=EXTENDED_ACK[f.type])
    if f.type in NO_ACK:
        return None
    return build_frame(f.type, b"", f.serial)


CODEC = Gt06Codec()
