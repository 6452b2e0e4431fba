"""JT/T 808 ("Huabao"): Carscop 4G units (CCTR-830G-4G, CC888) and most Chinese 4G trackers.

Wire layout (TCP stream or UDP datagram, one or more frames)::

    7E | header | body | xor | 7E

Between the flags `7E` is sent as `7D 02` and `7D` as `7D 01`; lengths and the
checksum refer to the unescaped bytes.  Header (big-endian)::

    msg id      WORD
    attributes  WORD   bits 0-9 body length, 10-12 encryption, 13 sub-package,
                       14 2019 version flag, 15 reserved
    [version    BYTE]  only when bit 14 is set (JT/T 808-2019)
    terminal id BCD[6] (BCD[10] in 2019): phone number or IMEI digits
    serial      WORD   (BYTE for the Jointech lock messages 0x5501/0x5502)
    [packets    WORD total, WORD index]  only when bit 13 is set

The checksum is the XOR of header and body.  Location body (0x0200, also each
item of a 0x0704 batch)::

    alarm flags DWORD, status DWORD, latitude DWORD (1e-6 deg), longitude DWORD,
    altitude WORD (m), speed WORD (0.1 km/h), course WORD, time BCD[6] yymmddhhmmss,
    then additional items: id BYTE, length BYTE, value.

The time is GMT+8 unless the device was configured otherwise; the option
`jt808.timezone` (e.g. "+00:00") overrides it.

Some units answer platform text commands with an ASCII frame `(` ... `)` on the
same connection; those are framed and decoded (kind "other") as well.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import NoReturn

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
from .kit.framing import no_end_marker

FLAG = 0x7E
ESCAPE = 0x7D
TEXT_OPEN = 0x28  # "("
TEXT_CLOSE = 0x29  # ")"
_FLAG_BYTE = b"\x7e"
_ESCAPED_FLAG = b"\x7d\x02"
_ESCAPE_BYTE = b"\x7d"
_ESCAPED_ESCAPE = b"\x7d\x01"

# uplink messages (terminal -> platform)
MSG_TERMINAL_RESPONSE = 0x0001
MSG_HEARTBEAT = 0x0002
MSG_LOGOUT = 0x0003
MSG_REGISTER = 0x0100
MSG_AUTH = 0x0102
MSG_PARAMETER_RESPONSE = 0x0104
MSG_ATTRIBUTES = 0x0107
MSG_LOCATION = 0x0200
MSG_LOCATION_RESPONSE = 0x0201
MSG_BATTERY_REPORT = 0x0210  # vendor: battery level + time
MSG_HEARTBEAT_CC888 = 0x0506  # Carscop CC888 T-Box
MSG_BATCH = 0x0704
MSG_TRANSPARENT = 0x0900
MSG_TIMEZONE_SYNC = 0x1007  # vendor
MSG_TEXT_RESPONSE = 0x1300  # vendor: UTF-16 answer to a text command
MSG_ACCELERATION = 0x2070  # vendor
MSG_LOCK_LOCATION = 0x5501  # Jointech lock
MSG_LOCK_LOCATION_BLIND = 0x5502  # Jointech lock
MSG_TEXT_REPORT = 0x6006  # vendor: text answer
# downlink messages (platform -> terminal)
MSG_PLATFORM_RESPONSE = 0x8001
MSG_REGISTER_RESPONSE = 0x8100
MSG_LOCK_RESPONSE = 0x4401  # Jointech lock acknowledgement

#: standard uplink ids are 0x0001-0x0FFF; these vendor extensions are also seen
VENDOR_UPLINK = frozenset(
    {
        MSG_TIMEZONE_SYNC,
        MSG_TEXT_RESPONSE,
        MSG_ACCELERATION,
        MSG_LOCK_LOCATION,
        MSG_LOCK_LOCATION_BLIND,
        MSG_TEXT_REPORT,
    }
)
STANDARD_UPLINK_END = 0x1000
SHORT_SERIAL = frozenset({MSG_LOCK_LOCATION, MSG_LOCK_LOCATION_BLIND})
#: answers to platform requests: the terminal does not wait for an acknowledgement
NOT_ACKNOWLEDGED = frozenset({MSG_TERMINAL_RESPONSE, MSG_PARAMETER_RESPONSE, MSG_LOCATION_RESPONSE, MSG_TEXT_RESPONSE})

ATTR_LENGTH_MASK = 0x03FF
ATTR_ENCRYPTION_MASK = 0x1C00
ATTR_SUBPACKAGE = 0x2000
ATTR_VERSION = 0x4000
ATTR_LOCK_ACK = 0x8000  # Jointech: the lock wants a 0x4401 acknowledgement

ID_LENGTH_2013 = 6
ID_LENGTH_2019 = 10
PACKET_INFO_LENGTH = 4
BASE_HEADER = 4  # msg id + attributes
MIN_CONTENT = BASE_HEADER + ID_LENGTH_2013 + 1 + 1  # shortest serial, empty body, checksum
MAX_HEADER = BASE_HEADER + 1 + ID_LENGTH_2019 + 2 + PACKET_INFO_LENGTH
MAX_BODY = ATTR_LENGTH_MASK
#: every byte between the flags may be escaped into two
MAX_FRAME = 2 + 2 * (MAX_HEADER + MAX_BODY + 1)
MAX_TEXT_FRAME = 512
TEXT_ID_DIGITS = 12
TEXT_DIGIT = ord("d")
#: "d" stands for any digit
TEXT_TEMPLATE = b"(" + b"d" * TEXT_ID_DIGITS + b",d,ddd,"

RESULT_SUCCESS = 0
BATCH_BLIND_AREA = 1  # 0x0704 type byte: re-upload of points stored without network
LOCATION_LENGTH = 28
#: CCTR-830G-4G block after the location (Traccar counts 20 with checksum and flag)
CARSCOP_EXTENSION_LENGTH = 18
DEFAULT_UTC_OFFSET = timedelta(hours=8)
TIMEZONE_OPTION = "jt808.timezone"

# status DWORD bits
STATUS_ACC = 1 << 0
STATUS_FIX = 1 << 1
STATUS_SOUTH = 1 << 2
STATUS_WEST = 1 << 3
STATUS_OIL_CUT = 1 << 10

#: alarm flag bit -> normalized alarm.  Bits 0-14 and 18-31 follow the JT/T 808
#: table (0 emergency, 1 overspeed, 2 fatigue, 4 GNSS module fault, 5/6 GNSS
#: antenna open/short, 7 main power under-voltage, 8 main power lost, 9-11
#: LCD/TTS/camera fault, 19 parking overtime, 20 area in/out, 26 vehicle stolen,
#: 28 illegal displacement, 29 collision, 30 rollover, 31 illegal door opening);
#: 15-17 are reserved there and used by many vendors for vibration / tamper.
#: Bit 7 is reported as lowBattery (the vehicle battery; Traccar does the same).
ALARM_BITS: dict[int, str] = {
    0: "sos",
    1: "overspeed",
    2: "fatigueDriving",
    4: "fault",
    5: "gpsAntennaCut",
    6: "gpsAntennaCut",
    7: "lowBattery",
    8: "powerCut",
    9: "fault",
    10: "fault",
    11: "fault",
    15: "vibration",
    16: "tampering",
    17: "tampering",
    19: "parking",
    20: "geofence",
    26: "general",
    28: "movement",
    29: "accident",
    30: "accident",
    31: "door",
}
ALARM_MASK = sum(1 << bit for bit in ALARM_BITS)
#: normalized alarm -> the bit a simulated device sets
ALARM_FLAG_FOR: dict[str, int] = {}
for _bit, _name in sorted(ALARM_BITS.items(), reverse=True):
    ALARM_FLAG_FOR[_name] = 1 << _bit


# ---------------------------------------------------------------- bytes helpers


def unescape(data: bytes) -> bytes:
    """`7D 02` -> `7E`, `7D 01` -> `7D` (the replacement order keeps `7D 01 02` intact)."""
    if ESCAPE not in data:
        return data
    return data.replace(_ESCAPED_FLAG, _FLAG_BYTE).replace(_ESCAPED_ESCAPE, _ESCAPE_BYTE)


def escape(data: bytes) -> bytes:
    return data.replace(_ESCAPE_BYTE, _ESCAPED_ESCAPE).replace(_FLAG_BYTE, _ESCAPED_FLAG)


def xor(data: bytes) -> int:
    """XOR of all bytes, folded in big integers instead of a per-byte loop."""
    width = len(data)
    if not width:
        return 0
    value = int.from_bytes(data, "big")
    while width > 1:
        half = (width + 1) // 2
        bits = half * 8
        value = (value >> bits) ^ (value & ((1 << bits) - 1))
        width = half
    return value


def build_frame(msg_id: int, terminal: bytes, serial: int, body: bytes, version: int | None = None) -> bytes:
    """Build an escaped frame (2-byte serial; `version` selects the 2019 header)."""
    attr = len(body)
    prefix = b""
    if version is not None:
        attr |= ATTR_VERSION
        prefix = bytes((version,))
    content = struct.pack(">HH", msg_id, attr) + prefix + terminal + struct.pack(">H", serial) + body
    return _FLAG_BYTE + escape(content + bytes((xor(content),))) + _FLAG_BYTE


def _luhn_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return str(-total % 10)


def terminal_id(raw: bytes) -> str:
    """The device id: BCD digits without the zero padding (2019 ids are padded to
    20 digits).  A 6-byte id that is not BCD carries the first 14 IMEI digits as a
    binary number (Jimi units); the Luhn check digit completes the IMEI."""
    digits = raw.hex()
    if digits.isdigit():
        return digits.lstrip("0") or "0"
    if len(raw) == ID_LENGTH_2013:
        number = str(int.from_bytes(raw, "big"))
        return number + _luhn_digit(number)
    return digits


# ---------------------------------------------------------------- header


@dataclass(slots=True, frozen=True)
class Header:
    msg_id: int
    attr: int
    version: int | None
    terminal: bytes
    serial: int
    length: int  # header bytes (body starts here)

    @property
    def body_length(self) -> int:
        return self.attr & ATTR_LENGTH_MASK

    @property
    def subpackage(self) -> bool:
        return bool(self.attr & ATTR_SUBPACKAGE)


def _header_length(msg_id: int, attr: int) -> int:
    length = BASE_HEADER + (1 + ID_LENGTH_2019 if attr & ATTR_VERSION else ID_LENGTH_2013)
    length += 1 if msg_id in SHORT_SERIAL else 2
    return length + (PACKET_INFO_LENGTH if attr & ATTR_SUBPACKAGE else 0)


def _uplink(msg_id: int) -> bool:
    return 0 < msg_id < STANDARD_UPLINK_END or msg_id in VENDOR_UPLINK


def parse_content(content: bytes) -> tuple[Header, bytes]:
    """Validate unescaped `header | body | xor` and split it."""
    if len(content) < MIN_CONTENT:
        raise DecodeError(f"frame of {len(content)} bytes is shorter than a JT808 header")
    if xor(content[:-1]) != content[-1]:
        raise ChecksumError(f"xor {xor(content[:-1]):02x} != {content[-1]:02x}")
    msg_id, attr = struct.unpack_from(">HH", content)
    length = _header_length(msg_id, attr)
    announced, present = attr & ATTR_LENGTH_MASK, len(content) - 1 - length
    if announced != present:
        raise DecodeError(f"length field says {announced} body bytes, frame has {present}")
    offset = BASE_HEADER
    version = None
    if attr & ATTR_VERSION:
        version = content[offset]
        offset += 1
    id_length = ID_LENGTH_2019 if version is not None else ID_LENGTH_2013
    terminal = content[offset : offset + id_length]
    offset += id_length
    if msg_id in SHORT_SERIAL:
        serial = content[offset]
    else:
        (serial,) = struct.unpack_from(">H", content, offset)
    header = Header(msg_id, attr, version, terminal, serial, length)
    return header, content[length:-1]


def _binary_content(data: bytes) -> bytes:
    if len(data) < 2 or data[0] != FLAG or data[-1] != FLAG:
        raise DecodeError("a JT808 frame starts and ends with 7E")
    return unescape(data[1:-1])


def _text_id(text: bytes) -> str | None:
    digits = text[1 : 1 + TEXT_ID_DIGITS]
    if len(text) > TEXT_ID_DIGITS + 1 and digits.isdigit() and text[1 + TEXT_ID_DIGITS] == ord(","):
        return digits.decode().lstrip("0") or "0"
    return None


# ---------------------------------------------------------------- replies


def _reply(header: Header, msg_id: int, body: bytes) -> bytes:
    """Reply reusing the terminal id and version; the serial echoes the device's
    (inspect is stateless, and terminals match replies on the ack serial only)."""
    return build_frame(msg_id, header.terminal, header.serial, body, header.version)


def reply_for(header: Header) -> bytes | None:
    msg_id = header.msg_id
    if msg_id == MSG_REGISTER:
        # auth code: the terminal id as text, so it is derived from the frame alone
        code = terminal_id(header.terminal).encode()
        return _reply(header, MSG_REGISTER_RESPONSE, struct.pack(">HB", header.serial, RESULT_SUCCESS) + code)
    if msg_id in SHORT_SERIAL:
        if not header.attr & ATTR_LOCK_ACK:
            return None
        content = (
            struct.pack(">HH", MSG_LOCK_RESPONSE, 3)
            + header.terminal
            + bytes((header.serial,))
            + struct.pack(">HB", msg_id, RESULT_SUCCESS)
        )
        return _FLAG_BYTE + escape(content + bytes((xor(content),))) + _FLAG_BYTE
    if msg_id in NOT_ACKNOWLEDGED:
        return None
    return _reply(header, MSG_PLATFORM_RESPONSE, struct.pack(">HHB", header.serial, msg_id, RESULT_SUCCESS))


def _kind(header: Header, body: bytes) -> str:
    msg_id = header.msg_id
    if msg_id in (MSG_REGISTER, MSG_AUTH):
        return "login"
    if msg_id in (MSG_HEARTBEAT, MSG_HEARTBEAT_CC888):
        return "heartbeat"
    if msg_id == MSG_LOCATION and not header.subpackage:
        return "alarm" if len(body) >= 4 and int.from_bytes(body[:4], "big") & ALARM_MASK else "position"
    if msg_id == MSG_LOCATION_RESPONSE:
        return "position"
    if msg_id == MSG_BATCH:
        return "batch"
    if msg_id in (MSG_BATTERY_REPORT, MSG_ATTRIBUTES):
        return "status"
    return "other"


# ---------------------------------------------------------------- detection


def _detect_binary(head: bytes) -> Detection:
    end = head.find(FLAG, 1)
    if end < 0:
        content = unescape(head[1:-1] if head.endswith(_ESCAPE_BYTE) else head[1:])
        return Detection.MORE if _consistent_prefix(content) else Detection.NO
    if _valid(unescape(head[1:end])):
        return Detection.YES
    # Frames copied from logs (as in Traccar's tests) are already unescaped and may
    # hold a bare 7E or 7D: accept them when the length field lands on the end flag.
    if len(head) < 1 + BASE_HEADER:
        return Detection.NO
    msg_id, attr = struct.unpack_from(">HH", head, 1)
    if not _uplink(msg_id):
        return Detection.NO
    total = 1 + _header_length(msg_id, attr) + (attr & ATTR_LENGTH_MASK) + 2
    if len(head) < total:
        return Detection.MORE
    return Detection.YES if head[total - 1] == FLAG and _valid(head[1 : total - 1]) else Detection.NO


def _consistent_prefix(content: bytes) -> bool:
    if len(content) >= 2 and not _uplink(int.from_bytes(content[:2], "big")):
        return False
    if len(content) >= BASE_HEADER:
        msg_id, attr = struct.unpack_from(">HH", content)
        return len(content) <= _header_length(msg_id, attr) + (attr & ATTR_LENGTH_MASK) + 1
    return True


def _valid(content: bytes) -> bool:
    if len(content) < BASE_HEADER or not _uplink(int.from_bytes(content[:2], "big")):
        return False
    try:
        parse_content(content)
    except (ChecksumError, DecodeError):
        return False
    return True


def _detect_text(head: bytes) -> Detection:
    """`(<12-digit id>,<digit>,<3 digits>,<COMMAND>,...)` in ASCII (a TK103 frame
    has letters where this has the single digit)."""
    for char, expected in zip(head, TEXT_TEMPLATE, strict=False):
        matches = 0x30 <= char <= 0x39 if expected == TEXT_DIGIT else char == expected
        if not matches:
            return Detection.NO
    end = head.find(TEXT_CLOSE)
    if end < 0:
        return Detection.MORE if len(head) < MAX_TEXT_FRAME else Detection.NO
    return Detection.YES if end > len(TEXT_TEMPLATE) and head[:end].isascii() else Detection.NO


# ---------------------------------------------------------------- framing


class Jt808Framer(Framer):
    """Binary `7E`...`7E` frames (returned escaped, both flags included) and text
    `(`...`)` answers.  A doubled flag (`7E 7E`, the end of a lost frame followed by
    the next start) is skipped without complaint."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        super().__init__(max_frame)
        self._scan = 1

    def next_frame(self) -> bytes | None:
        buf = self._buf
        while len(buf) >= 2 and buf[0] == FLAG and buf[1] == FLAG:
            del buf[0]
            self._scan = 1
        if not buf:
            return None
        first = buf[0]
        if first == FLAG:
            closing = FLAG
        elif first == TEXT_OPEN:
            closing = TEXT_CLOSE
        else:
            self._drop_garbage()
        end = buf.find(closing, self._scan)
        if end < 0:
            self._scan = max(1, len(buf))
            if closing == TEXT_CLOSE and len(buf) > MAX_TEXT_FRAME:
                self._drop_garbage()  # a stray "(" in binary noise
            if len(buf) > self.max_frame:
                self._scan = 1
                raise no_end_marker(buf, self.max_frame)
            return None
        result = bytes(buf[: end + 1])
        del buf[: end + 1]
        self._scan = 1
        return result

    def _drop_garbage(self) -> NoReturn:
        """Drop everything before the next start byte after the first one."""
        buf = self._buf
        starts = [i for i in (buf.find(FLAG, 1), buf.find(TEXT_OPEN, 1)) if i >= 0]
        cut = min(starts) if starts else len(buf)
        junk = bytes(buf[:cut])
        del buf[:cut]
        self._scan = 1
        raise FramingError(f"{len(junk)} bytes outside a frame", discarded=junk, reason="garbage")


# ---------------------------------------------------------------- location decoding


def _bcd_time(raw: bytes, offset: timedelta) -> datetime | None:
    digits = raw.hex()
    if not digits.isdigit():
        return None
    try:
        local = datetime(
            2000 + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def utc_offset(ctx: Context) -> timedelta:
    """`jt808.timezone`: "+08:00", "-03:30", "+8", "UTC", "UTC+05:30" (default UTC+8)."""
    text = ctx.options.get(TIMEZONE_OPTION)
    if text is None:
        return DEFAULT_UTC_OFFSET
    spec = text.strip().upper().removeprefix("UTC").removeprefix("GMT")
    if not spec or spec == "Z":
        return timedelta(0)
    hours, _, minutes = spec[1:].partition(":")
    if spec[0] not in "+-" or not hours.isdigit() or not (minutes.isdigit() or not minutes):
        raise DecodeError(f"bad {TIMEZONE_OPTION} option {text!r}", reason="config")
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return -offset if spec[0] == "-" else offset


def _flag(rec: Record, key: str, value: bool) -> None:
    rec.attributes[key] = "true" if value else "false"


def _battery_level(rec: Record, value: bytes) -> None:
    if len(value) == 1:
        rec.battery_level = value[0]


def _battery_level_or_charge(rec: Record, value: bytes) -> None:
    if len(value) == 1:
        if value[0] == 0xFF:
            _flag(rec, "charge", True)
        else:
            rec.battery_level = value[0]


def _item_e1(rec: Record, value: bytes) -> None:
    if len(value) == 2:
        rec.power = int.from_bytes(value, "big") / 10
    else:
        _battery_level_or_charge(rec, value)


def _charge_and_level(rec: Record, value: bytes) -> None:
    if len(value) == 2:
        if value[0] == 0:
            _flag(rec, "charge", True)
        rec.battery_level = value[1]


def _temperatures(rec: Record, value: bytes) -> None:
    """Words in sign-magnitude 0.1 degC, 0xFFFF = no sensor."""
    if len(value) not in (2, 16):
        return
    for index in range(len(value) // 2):
        word = int.from_bytes(value[2 * index : 2 * index + 2], "big")
        if word != 0xFFFF:
            celsius = (word & 0x7FFF) / 10
            rec.attributes[f"temp{index + 1}"] = str(-celsius if word & 0x8000 else celsius)


def _extended_status(rec: Record, value: bytes) -> None:
    """0xEB: "UTC+08:00" text, a cell list, or sub-items (length WORD, id WORD, value)."""
    if value.isascii() and value.decode().startswith(("UTC", "GMT")):
        rec.attributes["timezone"] = value.decode()
        return
    offset = 0
    while offset + 4 <= len(value):
        length, sub_id = struct.unpack_from(">HH", value, offset)
        sub = value[offset + 4 : offset + 2 + length]
        offset += 2 + length
        if length < 2 or offset > len(value):
            return
        handler = _EXTENDED_ITEMS.get(sub_id)
        if handler is not None:
            handler(rec, sub)


def _ext_voltage(rec: Record, value: bytes) -> None:
    volts = int.from_bytes(value, "big") / 1000
    if len(value) == 4:
        rec.power = volts
    elif len(value) == 2:
        rec.battery = volts


def _ext_alarm_status(rec: Record, value: bytes) -> None:
    """Active-low bits: 0 main power present, 12 device in place."""
    if len(value) == 4:
        bits = int.from_bytes(value, "big")
        if not bits & 1:
            rec.alarms.append("powerCut")
        if not bits & (1 << 12):
            rec.alarms.append("removing")


def _ext_motion_status(rec: Record, value: bytes) -> None:
    """Bit 6 active-low vibration; bits 23-24 motion state (0 moving, 1 still)."""
    if len(value) == 4:
        bits = int.from_bytes(value, "big")
        if not bits & (1 << 6):
            rec.alarms.append("vibration")
        state = (bits >> 23) & 0b11
        if state in (0, 1):
            _flag(rec, "motion", state == 0)


def _ext_fuel_text(rec: Record, value: bytes) -> None:
    """Fuel level as 6 ASCII characters, e.g. "001.47"."""
    try:
        rec.attributes["fuel2"] = str(float(value.decode("ascii")))
    except ValueError:
        return


def _ext_iccid(rec: Record, value: bytes) -> None:
    rec.attributes["iccid"] = value.hex().rstrip("f")


def _ext_power(rec: Record, value: bytes) -> None:
    if len(value) == 2:
        rec.power = int.from_bytes(value, "big") / 100


_EXTENDED_ITEMS: dict[int, Callable[[Record, bytes], None]] = {
    0x0023: _ext_fuel_text,
    0x002D: _ext_voltage,
    0x0089: _ext_alarm_status,
    0x00A8: _battery_level,
    0x00B2: _ext_iccid,
    0x00C5: _ext_motion_status,
    0x00CE: _ext_power,
    0x00E1: _battery_level,
}


def _uint_attr(key: str, scale: float = 1, size: int | None = None) -> Callable[[Record, bytes], None]:
    def handler(rec: Record, value: bytes) -> None:
        if value and (size is None or len(value) == size):
            number = int.from_bytes(value, "big")
            rec.attributes[key] = str(number / scale if scale != 1 else number)

    return handler


def _odometer(rec: Record, value: bytes) -> None:
    if len(value) == 4:
        rec.odometer = int.from_bytes(value, "big") * 100.0  # 1/10 km


def _satellites(rec: Record, value: bytes) -> None:
    if len(value) == 1:
        rec.satellites = value[0]


def _level_tens(rec: Record, value: bytes) -> None:
    if len(value) == 2:
        rec.battery_level = value[0] * 10


def _power_millivolts(rec: Record, value: bytes) -> None:
    if len(value) == 4:
        rec.power = int.from_bytes(value, "big") / 1000


def _motion(rec: Record, value: bytes) -> None:
    if len(value) == 1:
        _flag(rec, "motion", value[0] == 1)


def _event(rec: Record, value: bytes) -> None:
    if len(value) >= 2:
        rec.attributes["event"] = str(int.from_bytes(value[:2], "big"))


#: additional information items of a location report.  0x01-0x31 are standard
#: (0x14 from JT/T 1078); the others are widespread vendor items.
ITEMS: dict[int, Callable[[Record, bytes], None]] = {
    0x01: _odometer,
    0x02: _uint_attr("fuel", 10, 2),  # 1/10 L
    0x03: _uint_attr("obdSpeed", 10, 2),  # tachograph speed, 1/10 km/h
    0x06: _battery_level,
    0x14: _uint_attr("videoAlarm", size=4),
    0x25: _uint_attr("input", size=4),
    0x30: _uint_attr("rssi", size=1),
    0x31: _satellites,
    0x51: _temperatures,
    0x56: _level_tens,
    0x60: _event,
    0xD4: _battery_level_or_charge,
    0xE1: _item_e1,
    0xE4: _charge_and_level,
    0xE5: _motion,
    0xE9: _battery_level_or_charge,
    0xEB: _extended_status,
    0xF1: _power_millivolts,
}


def _tlv_chain_fits(data: bytes) -> bool:
    offset = 0
    while offset + 2 <= len(data):
        offset += 2 + data[offset + 1]
    return offset == len(data)


def _carscop_extension(rec: Record, data: bytes) -> None:
    """CCTR-830G-4G: battery+mileage DWORD, odometer DWORD (km), battery WORD
    (0.1 V), area id DWORD, rssi BYTE, 3 reserved."""
    _, km, decivolts, _, rssi = struct.unpack_from(">IIHIB", data)
    rec.odometer = km * 1000.0
    rec.battery = decivolts / 10
    rec.attributes["rssi"] = str(rssi)


def decode_location(body: bytes, offset: timedelta) -> Record:
    if len(body) < LOCATION_LENGTH:
        raise DecodeError(f"location body of {len(body)} bytes (needs {LOCATION_LENGTH})")
    alarm, status, lat, lon, altitude, speed, course = struct.unpack_from(">IIIIhHH", body)
    rec = Record(
        fix_time=_bcd_time(body[22:28], offset),
        valid=bool(status & STATUS_FIX),
        latitude=-lat / 1e6 if status & STATUS_SOUTH else lat / 1e6,
        longitude=-lon / 1e6 if status & STATUS_WEST else lon / 1e6,
        altitude=float(altitude),
        speed=speed / 10,
        course=float(course),
        ignition=bool(status & STATUS_ACC),
        alarms=[name for bit, name in ALARM_BITS.items() if alarm >> bit & 1],
    )
    rec.attributes["status"] = str(status)
    _flag(rec, "blocked", bool(status & STATUS_OIL_CUT))
    extra = body[LOCATION_LENGTH:]
    if len(extra) == CARSCOP_EXTENSION_LENGTH and not _tlv_chain_fits(extra):
        _carscop_extension(rec, extra)
    else:
        _apply_items(rec, extra)
    rec.alarms = list(dict.fromkeys(rec.alarms))  # several bits share a name
    return rec


def _apply_items(rec: Record, extra: bytes) -> None:
    position = 0
    while position + 2 <= len(extra):
        item_id, length = extra[position], extra[position + 1]
        value = extra[position + 2 : position + 2 + length]
        position += 2 + length
        if len(value) < length:
            break  # truncated item: keep what was read
        handler = ITEMS.get(item_id)
        if handler is not None:
            handler(rec, value)


def decode_batch(body: bytes, offset: timedelta) -> list[Record]:
    """0x0704: count WORD, type BYTE (0 normal, 1 blind-area), count x (length WORD, location)."""
    if len(body) < 3:
        raise DecodeError("batch body shorter than its header")
    count, batch_type = struct.unpack_from(">HB", body)
    records = []
    position = 3
    for _ in range(count):
        if position + 2 > len(body):
            raise DecodeError(f"batch announces {count} items, body ends after {len(records)}")
        (length,) = struct.unpack_from(">H", body, position)
        item = body[position + 2 : position + 2 + length]
        if len(item) < length:
            raise DecodeError("batch item runs past the body")
        rec = decode_location(item, offset)
        rec.archive = batch_type == BATCH_BLIND_AREA
        records.append(rec)
        position += 2 + length
    return records


# ---------------------------------------------------------------- other bodies


def _status_record(**attributes: str) -> Record:
    return Record(attributes=dict(attributes))


def _decode_body(header: Header, body: bytes, offset: timedelta) -> list[Record]:
    msg_id = header.msg_id
    if msg_id == MSG_LOCATION:
        return [decode_location(body, offset)]
    if msg_id == MSG_LOCATION_RESPONSE:
        return [decode_location(body[2:], offset)]  # after the answered serial
    if msg_id == MSG_BATCH:
        return decode_batch(body, offset)
    if msg_id == MSG_HEARTBEAT and len(body) >= 3:
        rec = _status_record(rssi=str(body[1]), status=str(body[2]))
        rec.battery_level = body[0]
        return [rec]
    if msg_id == MSG_BATTERY_REPORT and len(body) == 7:
        rec = Record(fix_time=_bcd_time(body[1:7], offset), battery_level=body[0])
        return [rec]
    if msg_id == MSG_ATTRIBUTES:
        # terminal type WORD, maker BYTE[5], model BYTE[20], terminal id BYTE[7], ICCID BCD[10]
        iccid = body[34:44]
        return [_status_record(iccid=iccid.hex())] if len(iccid) == 10 else []
    if msg_id == MSG_TEXT_REPORT and body:
        return [_status_record(result=body[1:].decode("gbk", errors="replace"))]
    if msg_id == MSG_TEXT_RESPONSE and len(body) >= 2:
        text = body[2 : 2 + (len(body) - 2) // 2 * 2].decode("utf-16-be", errors="replace")
        return [_status_record(result=text.strip())]
    return []


# ---------------------------------------------------------------- codec


class Jt808Codec(Codec):
    name = "jt808"
    first_bytes = b"\x7e("
    priority = 20
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == FLAG:
            return _detect_binary(head)
        if head[0] == TEXT_OPEN:
            return _detect_text(head)
        return Detection.NO

    def new_framer(self) -> Framer:
        return Jt808Framer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        """Every whole frame of the datagram; stray bytes are dropped unless no frame
        is left, in which case they are reported."""
        framer = self.new_framer()
        framer.feed(datagram)
        frames: list[bytes] = []
        discarded = b""
        while True:
            try:
                item = framer.next_frame()
            except FramingError as exc:
                discarded += exc.discarded
                continue
            if item is None:
                break
            frames.append(item)
        if not frames:
            raise FramingError("no JT808 frame in datagram", discarded=discarded + framer.take_rest(), reason="garbage")
        return frames

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if frame[:1] == bytes((TEXT_OPEN,)):
            return FrameInfo("other", _text_id(frame))
        header, body = parse_content(_binary_content(frame))
        return FrameInfo(_kind(header, body), terminal_id(header.terminal), reply_for(header))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if frame[:1] == bytes((TEXT_OPEN,)):
            if not frame.endswith(b")") or not frame.isascii():
                raise DecodeError("text frame must be ASCII within parentheses")
            text = frame.decode()
            records = [] if "BASE,2" in text else [_status_record(result=text)]
            return Decoded("other", _text_id(frame), records)
        header, body = parse_content(_binary_content(frame))
        device_id = terminal_id(header.terminal)
        kind = _kind(header, body)
        if header.subpackage or header.msg_id in SHORT_SERIAL:
            # sub-packages are not reassembled (decode is stateless); the Jointech
            # lock bodies are not decoded
            return Decoded(kind, device_id, [])
        if header.attr & ATTR_ENCRYPTION_MASK:
            raise DecodeError(f"encrypted body (attributes {header.attr:04x}) is not supported")
        return Decoded(kind, device_id, _decode_body(header, body, utc_offset(ctx)))


CODEC = Jt808Codec()
