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

Variant: some units delimit with `E7` instead (escapes `E6 01` = E6, `E6 02` = E7,
`3E 01` = 3E, `3E 02` = 3D) and send a 7-byte terminal id; replies use the same form.

Decoded uplinks: 0x0200 location (standard items 0x01-0x31 and the vendor items
Traccar reads: tires 0x77, locks 0x0B/0x63/0xD5, temperatures 0x51/0xE6/0xF6, OBD 0x80
block/0x91/0xF3, 0xEB/0xEA extension blocks, 0xE8 Jimi events ...), 0x0704/0x0210
batches, 0x0201 location answer, 0x0002 heartbeat, 0x0107 attributes, 0x0900
transparent data (0x40 text, 0x41 OBD-RT, 0xF0 vehicle data, 0xFF, 0xF3, 0x53/0x54
sensors), 0x2070 acceleration, 0x0701/0x0702, 0x5501/0x5502 Jointech lock reports,
0x1300/0x6006 text answers.  0x0001/0x0003/0x0102/0x0104/0x0108 carry no position and
give no record.  Of a sub-packaged message the first packet decodes on its own; later
packets give no record (decode is stateless).  0x0109 is answered with the time
(`reply_at`).  The option `model` applies Traccar's model overrides (AL300/GL100,
JC371 family, MV710G/MV810G, G-360P/G-508P, C5/C5L, DT800, VL300, G1C Pro).
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
from .kit import alarms
from .kit.framing import no_end_marker
from .kit.readers import KNOTS, Reader, java_trim, sign_magnitude

FLAG = 0x7E
ESCAPE = 0x7D
ALT_FLAG = 0xE7  # variant delimiter: E6 01 = E6, E6 02 = E7, 3E 01 = 3E, 3E 02 = 3D; 7-byte id
_ALT_UNESCAPE = ((b"\xe6\x02", b"\xe7"), (b"\xe6\x01", b"\xe6"), (b"\x3e\x02", b"\x3d"), (b"\x3e\x01", b"\x3e"))
_ALT_ESCAPE = ((b"\x3e", b"\x3e\x01"), (b"\x3d", b"\x3e\x02"), (b"\xe6", b"\xe6\x01"), (b"\xe7", b"\xe6\x02"))
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
MSG_UPGRADE_RESULT = 0x0108
MSG_TIME_SYNC_REQUEST = 0x0109
MSG_LOCATION = 0x0200
MSG_LOCATION_RESPONSE = 0x0201
MSG_BATTERY_REPORT = 0x0210  # vendor: battery level + time
MSG_HEARTBEAT_CC888 = 0x0506  # Carscop CC888 T-Box
MSG_COMMAND_RESPONSE = 0x0701
MSG_DRIVER_IDENTITY = 0x0702
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
MSG_TIME_SYNC_RESPONSE = 0x8109
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
NOT_ACKNOWLEDGED = frozenset(
    {
        MSG_TERMINAL_RESPONSE,
        MSG_PARAMETER_RESPONSE,
        MSG_LOCATION_RESPONSE,
        MSG_TEXT_RESPONSE,
        MSG_TIME_SYNC_REQUEST,  # answered with the time (0x8109), see `Codec.reply_at`
        MSG_ACCELERATION,
        MSG_COMMAND_RESPONSE,
        MSG_DRIVER_IDENTITY,
    }
)

#: model overrides (option `model`) that change the meaning of fields, as Traccar has them
PADLOCK_MODELS = frozenset({"G-360P", "G-508P"})
AOVX_MODELS = frozenset({"AL300", "GL100"})
JC_MODELS = frozenset({"JC371", "JC181", "JC182", "JC450", "JC451"})
DOOR_MODELS = frozenset({"MV810G", "MV710G"})

ATTR_LENGTH_MASK = 0x03FF
ATTR_ENCRYPTION_MASK = 0x1C00
ATTR_SUBPACKAGE = 0x2000
ATTR_VERSION = 0x4000
ATTR_LOCK_ACK = 0x8000  # Jointech: the lock wants a 0x4401 acknowledgement

ID_LENGTH_2013 = 6
ID_LENGTH_2019 = 10
ID_LENGTH_ALT = 7
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
#: Bits 7 and 18 are reported as lowBattery (Traccar does the same); bit 31 is not
#: reported (Traccar ignores it).  Models AL300/GL100 and G-360P/G-508P use their own bits.
ALARM_BITS: dict[int, str] = {
    0: "sos",
    1: "overspeed",
    2: "fatigueDriving",
    4: "fault",
    5: "gpsAntennaCut",
    6: "gpsAntennaCut",
    7: "lowBattery",
    8: "powerCut",
    18: "lowBattery",
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


def unescape_alt(data: bytes) -> bytes:
    """The E7 variant's escapes (single left-to-right passes in this order keep `E6 01 02` intact)."""
    for old, new in _ALT_UNESCAPE:
        data = data.replace(old, new)
    return data


def escape_alt(data: bytes) -> bytes:
    for old, new in _ALT_ESCAPE:
        data = data.replace(old, new)
    return data


def _wrap(content: bytes, delimiter: int = FLAG) -> bytes:
    """Append the checksum, escape and add the delimiters."""
    content += bytes((xor(content),))
    if delimiter == ALT_FLAG:
        return bytes((ALT_FLAG,)) + escape_alt(content) + bytes((ALT_FLAG,))
    return _FLAG_BYTE + escape(content) + _FLAG_BYTE


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


def build_frame(
    msg_id: int, terminal: bytes, serial: int, body: bytes, version: int | None = None, delimiter: int = FLAG
) -> bytes:
    """Build an escaped frame (2-byte serial; `version` selects the 2019 header)."""
    attr = len(body)
    prefix = b""
    if version is not None:
        attr |= ATTR_VERSION
        prefix = bytes((version,))
    content = struct.pack(">HH", msg_id, attr) + prefix + terminal + struct.pack(">H", serial) + body
    return _wrap(content, delimiter)


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
    delimiter: int = FLAG
    packet_count: int = 0  # sub-packaged messages: total packets and this one's index (from 1)
    packet_index: int = 0

    @property
    def body_length(self) -> int:
        return self.attr & ATTR_LENGTH_MASK

    @property
    def subpackage(self) -> bool:
        return bool(self.attr & ATTR_SUBPACKAGE)


def _id_length(attr: int, delimiter: int) -> int:
    if attr & ATTR_VERSION:
        return ID_LENGTH_2019
    return ID_LENGTH_ALT if delimiter == ALT_FLAG else ID_LENGTH_2013


def _header_length(msg_id: int, attr: int, delimiter: int = FLAG) -> int:
    length = BASE_HEADER + _id_length(attr, delimiter) + (1 if attr & ATTR_VERSION else 0)
    length += 1 if msg_id in SHORT_SERIAL else 2
    return length + (PACKET_INFO_LENGTH if attr & ATTR_SUBPACKAGE else 0)


def _uplink(msg_id: int) -> bool:
    return 0 < msg_id < STANDARD_UPLINK_END or msg_id in VENDOR_UPLINK


def parse_content(content: bytes, delimiter: int = FLAG) -> tuple[Header, bytes]:
    """Validate unescaped `header | body | xor` and split it."""
    if len(content) < MIN_CONTENT:
        raise DecodeError(f"frame of {len(content)} bytes is shorter than a JT808 header")
    if xor(content[:-1]) != content[-1]:
        raise ChecksumError(f"xor {xor(content[:-1]):02x} != {content[-1]:02x}")
    msg_id, attr = struct.unpack_from(">HH", content)
    length = _header_length(msg_id, attr, delimiter)
    announced, present = attr & ATTR_LENGTH_MASK, len(content) - 1 - length
    if announced != present:
        raise DecodeError(f"length field says {announced} body bytes, frame has {present}")
    offset = BASE_HEADER
    version = None
    if attr & ATTR_VERSION:
        version = content[offset]
        offset += 1
    id_length = _id_length(attr, delimiter)
    terminal = content[offset : offset + id_length]
    offset += id_length
    if msg_id in SHORT_SERIAL:
        serial = content[offset]
    else:
        (serial,) = struct.unpack_from(">H", content, offset)
    packets = (0, 0)
    if attr & ATTR_SUBPACKAGE:
        packets = struct.unpack_from(">HH", content, length - PACKET_INFO_LENGTH)
    header = Header(msg_id, attr, version, terminal, serial, length, delimiter, *packets)
    return header, content[length:-1]


def parse_frame(data: bytes) -> tuple[Header, bytes]:
    """Split a whole frame, flags included.  Frames come escaped off the wire; frames copied
    from logs (Traccar's tests) are already unescaped and may hold a bare 7D: the escaped
    reading is tried first, the literal one when the first fails its length or checksum."""
    if len(data) < 2 or data[0] not in (FLAG, ALT_FLAG) or data[-1] != data[0]:
        raise DecodeError("a JT808 frame starts and ends with 7E (or E7)")
    delimiter = data[0]
    raw = data[1:-1]
    content = unescape_alt(raw) if delimiter == ALT_FLAG else unescape(raw)
    try:
        return parse_content(content, delimiter)
    except (ChecksumError, DecodeError):
        if content == raw:
            raise
        try:
            return parse_content(raw, delimiter)
        except (ChecksumError, DecodeError):
            pass
        raise


def _text_id(text: bytes) -> str | None:
    digits = text[1 : 1 + TEXT_ID_DIGITS]
    if len(text) > TEXT_ID_DIGITS + 1 and digits.isdigit() and text[1 + TEXT_ID_DIGITS] == ord(","):
        return digits.decode().lstrip("0") or "0"
    return None


# ---------------------------------------------------------------- replies


def _reply(header: Header, msg_id: int, body: bytes) -> bytes:
    """Reply reusing the terminal id and version; the serial echoes the device's
    (inspect is stateless, and terminals match replies on the ack serial only)."""
    return build_frame(msg_id, header.terminal, header.serial, body, header.version, header.delimiter)


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
        return _wrap(content, header.delimiter)
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
    if msg_id in (MSG_LOCK_LOCATION, MSG_LOCK_LOCATION_BLIND):
        return "position"
    if msg_id == MSG_BATTERY_REPORT and len(body) != 7:
        return "batch"
    if msg_id in (MSG_BATTERY_REPORT, MSG_ATTRIBUTES, MSG_ACCELERATION):
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


def _detect_alt(head: bytes) -> Detection:
    """The E7-delimited variant: only the escaped wire form, checked whole."""
    end = head.find(ALT_FLAG, 1)
    if end < 0:
        body = head[1:-1] if head[-1:] in (b"\xe6", b"\x3e") else head[1:]
        return Detection.MORE if _consistent_prefix(unescape_alt(body), ALT_FLAG) else Detection.NO
    return Detection.YES if _valid(unescape_alt(head[1:end]), ALT_FLAG) else Detection.NO


def _consistent_prefix(content: bytes, delimiter: int = FLAG) -> bool:
    if len(content) >= 2 and not _uplink(int.from_bytes(content[:2], "big")):
        return False
    if len(content) >= BASE_HEADER:
        msg_id, attr = struct.unpack_from(">HH", content)
        return len(content) <= _header_length(msg_id, attr, delimiter) + (attr & ATTR_LENGTH_MASK) + 1
    return True


def _valid(content: bytes, delimiter: int = FLAG) -> bool:
    if len(content) < BASE_HEADER or not _uplink(int.from_bytes(content[:2], "big")):
        return False
    try:
        parse_content(content, delimiter)
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
    """Binary `7E`...`7E` (or `E7`...`E7`) frames (returned escaped, both flags included) and text
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
        if first in (FLAG, ALT_FLAG):
            closing = first
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
        starts = [i for i in (buf.find(FLAG, 1), buf.find(ALT_FLAG, 1), buf.find(TEXT_OPEN, 1)) if i >= 0]
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


def _num(value: float) -> str:
    return str(value)


def _set(rec: Record, key: str, value: float | int | str) -> None:
    """Set a Traccar key: the normalized Record fields, or a text attribute."""
    if key == "batteryLevel":
        rec.battery_level = float(value)
    elif key == "battery":
        rec.battery = float(value)
    elif key == "power":
        rec.power = float(value)
    elif key == "odometer":
        rec.odometer = float(value)
    elif key == "sat":
        rec.satellites = int(value)
    else:
        rec.attributes[key] = str(value)


def _printable(raw: bytes) -> bool:
    return bool(raw) and all(0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D) for b in raw)


def _ascii(raw: bytes) -> str:
    return raw.decode("latin-1")


@dataclass(slots=True)
class _Item:
    """One additional-information item being decoded."""

    rec: Record
    r: Reader
    length: int
    model: str | None

    @property
    def aovx(self) -> bool:
        return self.model in AOVX_MODELS


def _battery_level_or_charge(rec: Record, level: int) -> None:
    if level == 0xFF:
        _flag(rec, "charge", True)
    else:
        rec.battery_level = level


def _it_odometer(it: _Item) -> None:
    it.rec.odometer = it.r.u32() * 100.0  # 1/10 km


def _it_fuel(it: _Item) -> None:
    word = it.r.u16()
    _set(it.rec, "fuel", word & 0x7FFF if word & 0x8000 else word / 10)


def _it_lock(it: _Item) -> None:
    """0x0B (also in 0x5501): command BYTE, card DWORD or password ASCII[6], result BYTE."""
    r, n, rec = it.r, it.length, it.rec
    _set(rec, "lockCommand", r.u8())
    if 5 <= n <= 6:
        _set(rec, "lockCard", r.u32())
    elif n >= 7:
        _set(rec, "lockPassword", _ascii(r.bytes(6)))
    if n % 2 == 0:
        _set(rec, "unlockResult", r.u8())


def _it_adc(it: _Item) -> None:
    _set(it.rec, "adc1", it.r.u16() / 100)
    _set(it.rec, "adc2", it.r.u16() / 100)


def _it_mode_or_lock_text(it: _Item) -> None:
    """0x33: working mode BYTE, or a lock status text `*M00,<..>,<7 chars>...` (battery in chars 2-4, 1/100 V)."""
    if it.length == 1:
        _set(it.rec, "mode", it.r.u8())
        return
    text = _ascii(it.r.rest())
    status = text[8:15]
    if text.startswith("*M00") and status[2:5].isdigit():
        it.rec.battery = int(status[2:5]) / 100


def _it_temperatures(it: _Item) -> None:
    """Words in sign-magnitude 0.1 degC, 0xFFFF = no sensor."""
    if it.length not in (2, 16):
        return
    for index in range(1, it.length // 2 + 1):
        word = it.r.u16()
        if word != 0xFFFF:
            _set(it.rec, f"temp{index}", sign_magnitude(word, 16) / 10)


def _it_level_tens(it: _Item) -> None:
    it.rec.battery_level = it.r.u8() * 10


def _it_driving_alarms(it: _Item) -> None:
    """0x57: driving alarm WORD (bits 8-10), switch WORD, extended alarm DWORD (MV710G bit 16 door)."""
    rec, r = it.rec, it.r
    bits = r.u16()
    for index, name in ((8, alarms.ACCELERATION), (9, alarms.BRAKING), (10, alarms.CORNERING)):
        if bits >> index & 1:
            rec.alarms.append(name)
    r.skip(2)
    extended = r.u32()
    if it.model in DOOR_MODELS and extended >> 16 & 1:
        rec.alarms.append(alarms.DOOR)


def _it_event(it: _Item) -> None:
    event = it.r.u16()
    _set(it.rec, "event", event)
    if 0x61 <= event <= 0x66:
        it.r.skip(6)  # lock id
        _set(it.rec, "driverUniqueId", _ascii(it.r.bytes(8)))


def _it_locks(it: _Item) -> None:
    """0x63: per lock id BYTE[6], battery WORD (mV), seal BYTE ('1' sealed), state BYTE, rssi BYTE."""
    for index in range(1, it.length // 11 + 1):
        _set(it.rec, f"lock{index}Id", it.r.bytes(6).hex())
        _set(it.rec, f"lock{index}Battery", it.r.u16() / 1000)
        _flag(it.rec, f"lock{index}Seal", it.r.u8() == 0x31)
        it.r.skip(2)


def _it_adas(it: _Item, key: str) -> None:
    """0x64 ADAS / 0x65 DMS (JT/T 1078 active safety): serial DWORD, status BYTE, type BYTE ...,
    the 16-byte alarm label at the end of long items."""
    start = it.r.pos
    it.r.skip(5)
    _set(it.rec, key, it.r.u8())
    if it.length >= 47:
        it.r.pos = start + it.length - 16
        _set(it.rec, "alarmLabel", it.r.bytes(16).hex())


def _it_password(it: _Item) -> None:
    _set(it.rec, "password", _ascii(it.r.bytes(8)))


def _it_safety_event(it: _Item) -> None:
    it.r.skip(5)
    name = {1: alarms.ACCELERATION, 2: alarms.BRAKING, 3: alarms.CORNERING, 0x16: alarms.ACCIDENT}.get(it.r.u8())
    if name:
        it.rec.alarms.append(name)


def _it_tires(it: _Item) -> None:
    """0x77: per tire index BYTE, sensor id BYTE[3], pressure WORD (10 bits, 1/40 bar), temp BYTE (+50), status BYTE."""
    r, rec = it.r, it.rec
    while r.remaining >= 7:
        index = r.u8()
        _set(rec, f"tire{index}SensorId", r.bytes(3).hex())
        _set(rec, f"tire{index}Pressure", (r.u16() & 0x3FF) / 40)
        _set(rec, f"tire{index}Temp", r.u8() - 50)
        _set(rec, f"tire{index}Status", r.u8())


def _it_obd_block(it: _Item) -> None:
    """0x91: battery WORD 0.1 V, rpm WORD, speed BYTE, throttle BYTE, load BYTE, coolant BYTE (+40),
    WORD, instant consumption WORD 1/100, WORD, DWORD, WORD, fuel used WORD 1/100."""
    r, rec = it.r, it.rec
    rec.battery = r.u16() / 10
    _set(rec, "rpm", r.u16())
    _set(rec, "obdSpeed", r.u8())
    _set(rec, "throttle", r.u8() * 100 // 255)
    _set(rec, "engineLoad", r.u8() * 100 // 255)
    _set(rec, "coolantTemp", r.u8() - 40)
    r.skip(2)
    _set(rec, "fuelConsumption", r.u16() / 100)
    r.skip(8)
    _set(rec, "fuelUsed", r.u16() / 100)


def _it_text(key: str, strip: bool = False) -> Callable[[_Item], None]:
    def handler(it: _Item) -> None:
        if it.length:
            text = _ascii(it.r.rest())
            _set(it.rec, key, java_trim(text) if strip else text)

    return handler


def _it_uint(key: str, size: int, scale: float = 1, bias: int = 0) -> Callable[[_Item], None]:
    def handler(it: _Item) -> None:
        value = it.r.uint(size) + bias
        _set(it.rec, key, value / scale if scale != 1 else value)

    return handler


def _it_user_status(it: _Item) -> None:
    if it.r.u32() >> 3 & 1:
        it.rec.alarms.append(alarms.VIBRATION)


def _first_cell(rec: Record, mcc: int, mnc: int, lac: int, cid: int) -> None:
    """Traccar keeps a cell tower list; the first tower is kept here as mcc/mnc/lac/cid."""
    if "cid" not in rec.attributes:
        rec.attributes.update(mcc=str(mcc), mnc=str(mnc), lac=str(lac), cid=str(cid))


def _it_d4_e1_e9(it: _Item, item_id: int) -> None:
    """Battery level (0xFF charging); 0xE1 may also carry cells, or the power voltage; else a card number."""
    r, n, rec = it.r, it.length, it.rec
    if n == 1:
        _battery_level_or_charge(rec, r.u8())
    elif item_id == 0xE1 and n >= 12 and (n - 4) % 8 == 0:
        mcc, mnc = r.u16(), r.u16()
        while r.remaining >= 8:
            lac, cid = r.u24(), r.u32()
            r.skip(1)
            _first_cell(rec, mcc, mnc, lac, cid)
    elif item_id == 0xE1 and n == 2:
        rec.power = r.u16() / 10
    else:
        _set(rec, "driverUniqueId", r.u32())


def _it_d5(it: _Item) -> None:
    """0xD5: battery WORD 1/100 V, or locks: count BYTE, then id BYTE[5], card BYTE[5], battery BYTE, status WORD."""
    r, rec = it.r, it.rec
    if it.length == 2:
        rec.battery = r.u16() / 100
        return
    for index in range(1, r.u8() + 1):
        _set(rec, f"lock{index}Id", r.bytes(5).hex())
        _set(rec, f"lock{index}Card", r.bytes(5).hex())
        _set(rec, f"lock{index}Battery", r.u8())
        _flag(rec, f"lock{index}Locked", not r.u16() >> 5 & 1)


def _it_da(it: _Item) -> None:
    it.r.skip(2)  # string cut count
    status = it.r.u8()
    _flag(it.rec, "string", bool(status & 1))
    _flag(it.rec, "motion", bool(status >> 2 & 1))
    _flag(it.rec, "cover", bool(status >> 3 & 1))


def _it_e2(it: _Item) -> None:
    if it.model != "DT800":
        _set(it.rec, "fuel", it.r.u32() / 10)


def _it_e3(it: _Item) -> None:
    it.r.skip(1)
    it.rec.battery_level = it.r.u8()
    it.rec.battery = it.r.u16() / 100


def _it_e4(it: _Item) -> None:
    if it.r.u8() == 0:
        _flag(it.rec, "charge", True)
    it.rec.battery_level = it.r.u8()


def _it_e5(it: _Item) -> None:
    if it.length == 1:
        _flag(it.rec, "motion", it.r.u8() == 1)


def _custom_double(r: Reader) -> float:
    whole, fraction = r.i8(), r.u8()
    sign = -1 if whole < 0 else 1
    return sign * (abs(whole) + fraction / 255)


def _it_e6(it: _Item) -> None:
    """`$OBD-RT,...` text, or BLE sensors: index BYTE, mac BYTE[6], temperature, humidity (custom doubles)."""
    r, n = it.r, it.length
    head = r.data[r.pos : r.pos + 7]
    if n >= 7 and head == b"$OBD-RT":
        _obd_rt(it.rec, _ascii(r.rest()))
    elif n >= 11 and n % 11 == 0:
        while r.remaining >= 11:
            index = r.u8()
            r.skip(6)
            _set(it.rec, f"temp{index}", _custom_double(r))
            _set(it.rec, f"humidity{index}", _custom_double(r))


def _it_e7(it: _Item) -> None:
    if it.length == 8:
        bits = it.r.u16()
        if bits & 1:
            it.rec.alarms.append(alarms.VIBRATION)
        if bits >> 1 & 0b111:
            it.rec.alarms.append(alarms.SOS)


#: Jimi JC371/JC181... event codes in item 0xE8
JC_EVENTS: dict[int, str] = {
    0x0001: alarms.FAULT,
    0x0400: alarms.ACCELERATION,
    0x0412: alarms.ACCELERATION,
    0x0401: alarms.BRAKING,
    0x0413: alarms.BRAKING,
    0x0402: alarms.CORNERING,
    0x0414: alarms.CORNERING,
    0x0403: alarms.OVERSPEED,
    0x0405: alarms.ACCIDENT,
    0x0416: alarms.ACCIDENT,
    0x0417: alarms.ACCIDENT,
    0x0406: alarms.VIBRATION,
    0x0407: alarms.TOW,
    0x0408: alarms.GEOFENCE_ENTER,
    0x0409: alarms.GEOFENCE_EXIT,
    0x040C: alarms.DOOR,
    0x0415: alarms.LANE_CHANGE,
    0x0C01: alarms.SOS,
    0x0C02: alarms.LOW_POWER,
    0x0C05: alarms.GENERAL,
    0x0C0E: alarms.POWER_CUT,
    0x0C0F: alarms.LOW_BATTERY,
    0x0C10: alarms.POWER_OFF,
    0x0C12: alarms.TAMPERING,
}


def _it_e8(it: _Item) -> None:
    """0xE8: Jimi (JC models) event/status TLV; other units a lock status (3 bytes)."""
    r, rec = it.r, it.rec
    if it.model not in JC_MODELS:
        _set(rec, "lockStatus", r.u24())
        return
    kind = r.u16()
    if kind == 0x2002:
        r.skip(1)
        _set(rec, "uploadMode", r.u8())
        _flag(rec, "buffered", r.u8() == 1)
    elif kind == 0x2003:
        r.skip(1)
        _flag(rec, "charge", r.u8() == 1)
        status = r.u8()
        if 1 <= status <= 6:
            rec.battery_level = status * 100 // 6
        rec.battery = r.u16() / 100
        _set(rec, "rssi", r.u8())
        rec.power = r.u16() / 100
    elif kind == 0x2005:
        r.skip(1)
        while r.remaining >= 3:
            status_id, size = r.u16(), r.u8()
            sub = r.sub(min(size, r.remaining))
            _jc_status(rec, status_id, sub)
    elif kind in (0x0C03, 0x0C04):
        rec.ignition = kind == 0x0C03
    elif kind in JC_EVENTS:
        rec.alarms.append(JC_EVENTS[kind])


def _jc_status(rec: Record, status_id: int, r: Reader) -> None:
    if status_id == 0x0001:
        rec.battery = r.u16() / 100
    elif status_id == 0x0002:
        _set(rec, "dataUsage", r.u32())
    elif status_id == 0x0003:
        rec.battery_level = r.u8()
    elif status_id == 0x0004:
        _flag(rec, "charge", r.u8() == 0)
    elif status_id == 0x0005:
        _set(rec, "iccid", r.bytes(10).hex()[:19])
    elif status_id == 0x0007:
        _set(rec, "hdop", r.u16() / 10)
    elif status_id == 0x2001:
        rec.power = r.u16() / 10


def _it_ea(it: _Item) -> None:
    """0xEA: type BYTE, then sub-items id BYTE, length BYTE (external sensor values)."""
    r, rec = it.r, it.rec
    if it.length <= 2:
        return
    r.skip(1)
    while r.remaining >= 2:
        kind, size = r.u8(), r.u8()
        if size > r.remaining:
            break
        sub = r.sub(size)
        if kind == 0x11:
            _set(rec, "externalAlarms", sub.u16())
            _set(rec, "alarmThresholdType", sub.u8())
        elif kind == 0x13:
            _set(rec, "externalIlluminance", sub.u16())
        elif kind == 0x14:
            _set(rec, "externalAirPressure", sub.u16())
        elif kind == 0x15:
            _set(rec, "externalHumidity", sub.u16() / 10)
        elif kind == 0x16:
            _set(rec, "externalTemp", sub.u16() / 10 - 50)


def _it_eb(it: _Item) -> None:
    """0xEB: cells (mcc WORD, mnc BYTE, n x (lac WORD, cid WORD, rssi BYTE)), a printable time
    zone ("UTC+08:00"), or sub-items (length WORD, id WORD, value)."""
    r, n, rec = it.r, it.length, it.rec
    raw = r.data[r.pos : r.pos + n]
    if n >= 2 and int.from_bytes(raw[:2], "big") > 200 and (n - 3) % 5 == 0:
        mcc, mnc = r.u16(), r.u8()
        while r.remaining >= 5:
            lac, cid = r.u16(), r.u16()
            r.skip(1)
            _first_cell(rec, mcc, mnc, lac, cid)
        return
    if _printable(raw):
        _set(rec, "timezone", raw.decode("ascii"))
        return
    while r.remaining >= 4:
        size = r.u16()
        if size < 2 or size > r.remaining:
            return
        sub = r.sub(size)
        handler = _EXTENDED_ITEMS.get(sub.u16())
        if handler is not None:
            try:
                handler(rec, sub, size)
            except DecodeError:
                continue


def _ext_fuel1(rec: Record, r: Reader, size: int) -> None:
    _set(rec, "fuel1", r.u16() / 10)


def _ext_fuel_text(rec: Record, r: Reader, size: int) -> None:
    """Fuel level as 6 ASCII characters, e.g. "001.47"."""
    try:
        _set(rec, "fuel2", float(r.bytes(6).decode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return


def _ext_voltage(rec: Record, r: Reader, size: int) -> None:
    if size == 6:
        rec.power = r.u32() / 1000
    else:
        rec.battery = r.u16() / 1000


def _ext_alarm_status(rec: Record, r: Reader, size: int) -> None:
    """Active-low bits: 0 main power present, 12 device in place."""
    bits = r.u32()
    if not bits & 1:
        rec.alarms.append(alarms.POWER_CUT)
    if not bits & (1 << 12):
        rec.alarms.append(alarms.REMOVING)


def _ext_iccid(rec: Record, r: Reader, size: int) -> None:
    _set(rec, "iccid", r.bytes(10).hex().rstrip("f"))


def _ext_motion_status(rec: Record, r: Reader, size: int) -> None:
    """Bit 6 active-low vibration; bits 23-24 motion state (0 moving, 1 still)."""
    bits = r.u32()
    if not bits & (1 << 6):
        rec.alarms.append(alarms.VIBRATION)
    state = (bits >> 23) & 0b11
    if state in (0, 1):
        _flag(rec, "motion", state == 0)


def _ext_battery_alarm(rec: Record, r: Reader, size: int) -> None:
    value = r.u8()
    if value in (3, 4):
        rec.alarms.append(alarms.LOW_BATTERY)
    _set(rec, "batteryAlarm", value)


def _ext_power(rec: Record, r: Reader, size: int) -> None:
    rec.power = r.u16() / 100


def _ext_cell(rec: Record, r: Reader, size: int) -> None:
    mcc, mnc, lac, cid = r.u16(), r.u8(), r.u16(), r.u32()
    _first_cell(rec, mcc, mnc, lac, cid)


def _ext_battery_level(rec: Record, r: Reader, size: int) -> None:
    rec.battery_level = r.u8()


_EXTENDED_ITEMS: dict[int, Callable[[Record, Reader, int], None]] = {
    0x0001: _ext_fuel1,
    0x0023: _ext_fuel_text,
    0x002D: _ext_voltage,
    0x0089: _ext_alarm_status,
    0x00A8: _ext_battery_level,
    0x00B2: _ext_iccid,
    0x00C5: _ext_motion_status,
    0x00C6: _ext_battery_alarm,
    0x00CE: _ext_power,
    0x00D8: _ext_cell,
    0x00E1: _ext_battery_level,
}


def _it_ee(it: _Item) -> None:
    if it.length == 6:
        r, rec = it.r, it.rec
        _set(rec, "rssi", r.u8())
        rec.power = r.u16() / 1000
        rec.battery = r.u16() / 1000
        rec.satellites = r.u8()


def _it_f0_cells(it: _Item) -> None:
    r = it.r
    while r.remaining >= 13:
        mcc, mnc, cid, lac = r.u16(), r.u16(), r.u32(), r.u32()
        r.skip(1)
        _first_cell(it.rec, mcc, mnc, lac, cid)


def _it_f3(it: _Item) -> None:
    """0xF3: BLE tags (AL300/GL100), else OBD sub-items (id WORD, length BYTE)."""
    r, rec = it.r, it.rec
    if it.aovx:
        mask = r.u8()
        index = 0
        while r.remaining >= 7:
            index += 1
            _set(rec, f"tag{index}Mac", r.bytes(6).hex())
            _set(rec, f"tag{index}Rssi", r.i8())
            if mask & 1:
                _set(rec, f"tag{index}Name", _ascii(r.bytes(10)).strip())
            if mask >> 1 & 1:
                r.skip(2)
            if mask >> 2 & 1:
                _set(rec, f"tag{index}Battery", r.u16() / 1000)
            if mask >> 3 & 1:
                _set(rec, f"tag{index}Temp", r.i16() / 10)
            if mask >> 4 & 1:
                _set(rec, f"tag{index}Humidity", r.i16() / 10)
            for bit, size in ((5, 6), (6, 2), (7, 2)):
                if mask >> bit & 1:
                    r.skip(size)
        return
    while r.remaining >= 3:
        kind, size = r.u16(), r.u8()
        sub = r.sub(min(size, r.remaining))
        handler = _OBD_ITEMS.get(kind)
        if handler is not None:
            try:
                handler(rec, sub, size)
            except DecodeError:
                continue


def _obd(key: str, size: int, scale: float = 1, bias: int = 0, integer: bool = False) -> Callable[..., None]:
    def handler(rec: Record, r: Reader, length: int) -> None:
        value = r.uint(size) + bias
        if integer:
            _set(rec, key, value * 100 // 255)
        else:
            _set(rec, key, value / scale if scale != 1 else value)

    return handler


def _obd_text(key: str, hexadecimal: bool = False) -> Callable[..., None]:
    def handler(rec: Record, r: Reader, length: int) -> None:
        raw = r.rest()
        if raw:
            _set(rec, key, raw.hex() if hexadecimal else _ascii(raw.split(b"\0")[0]))

    return handler


def _obd_power(rec: Record, r: Reader, length: int) -> None:
    rec.power = r.u16() / 1000


_OBD_ITEMS: dict[int, Callable[[Record, Reader, int], None]] = {
    0x0002: _obd("obdSpeed", 2, 10),
    0x0003: _obd("rpm", 2),
    0x0004: _obd_power,
    0x0005: _obd("obdOdometer", 4, 1 / 100),
    0x0007: _obd("fuelConsumption", 2, 10),
    0x0008: _obd("engineLoad", 2, 10),
    0x0009: _obd("coolantTemp", 2, bias=-40),
    0x000B: _obd("intakePressure", 2),
    0x000C: _obd("intakeTemp", 2, bias=-40),
    0x000D: _obd("intakeFlow", 2),
    0x000E: _obd("throttle", 2, integer=True),
    0x0050: _obd_text("vin"),
    0x0051: _obd_text("cvn", hexadecimal=True),
    0x0052: _obd_text("calid"),
    0x0100: _obd("tripOdometer", 2, 10),
    0x0102: _obd("tripFuel", 2, 10),
    0x0112: _obd("hardAccelerationCount", 2),
    0x0113: _obd("hardDecelerationCount", 2),
    0x0114: _obd("hardCorneringCount", 2),
}


def _it_wifi(it: _Item) -> None:
    """0xEC/0xF4: access points (mac BYTE[6], rssi BYTE); Traccar geolocates them: the count is kept."""
    count = it.length // 7
    if count:
        _set(it.rec, "wifiCount", count)


def _it_f5(it: _Item) -> None:
    if it.length == 2:
        _set(it.rec, "illuminance", it.r.u16())


def _it_f6(it: _Item) -> None:
    """0xF6: air pressure WORD, an IMEI (BCD[8]), or a sensor block: event BYTE, mask BYTE, values."""
    r, n, rec = it.r, it.length, it.rec
    if not it.aovx and n == 2:
        _set(rec, "airPressure", r.u16())
        return
    if not it.aovx and n == 8:
        _set(rec, "imei", r.bytes(8).hex()[1:])
        return
    event = r.u8()
    _set(rec, "event", event)
    if event == 2:
        _flag(rec, "motion", True)
    mask = r.u8()
    if mask & 1:
        _set(rec, "lightSensor", r.u16())
    if mask >> 1 & 1:
        _set(rec, "temp1", r.i16() / 10)
    if mask >> 2 & 1:
        _set(rec, "humidity", r.i16() / 10)
    if mask >> 3 & 1:
        _set(rec, "gSensor", f"[{r.i16()},{r.i16()},{r.i16()}]")
    if mask >> 4 & 1:
        r.skip(10)
    if mask >> 5 & 1:
        _set(rec, "airPressure", r.u16())


def _it_f7(it: _Item) -> None:
    r, n, rec = it.r, it.length, it.rec
    if n == 2:
        _set(rec, "humidity", r.u16() / 10)
        return
    rec.battery = r.u32() / 1000
    if n >= 5 and r.u8() in (2, 3):
        _flag(rec, "charge", True)
    if n >= 6:
        rec.battery_level = r.u8()


def _it_f8(it: _Item) -> None:
    r, rec = it.r, it.rec
    if it.aovx:
        r.skip(9)  # working mode, IMEI
        _set(rec, "iccid", r.bytes(10).hex())
    elif it.model in ("C5", "C5L"):
        _set(rec, "steps", r.u16())
    else:
        _set(rec, "temp2", r.u16() / 10 - 50)


def _it_f9(it: _Item) -> None:
    r, rec = it.r, it.rec
    mask = r.u16()
    for bit, size in ((0, 4), (1, 4)):
        if mask >> bit & 1:
            r.skip(size)
    if mask >> 2 & 1:
        _set(rec, "hdop", r.u16() / 10)
    if mask >> 3 & 1:
        r.skip(6)
    if mask >> 5 & 1:
        r.skip(8)
    if mask >> 6 & 1:
        _set(rec, "temp3", r.i16() / 10)


def _it_fe(it: _Item) -> None:
    r, n, rec = it.r, it.length, it.rec
    if n == 1:
        rec.battery_level = r.u8()
    elif n == 2:
        rec.power = r.u16() / 10
    elif n == 4:
        rec.odometer = float(r.u32())
    else:
        if r.u8() == 0x7C:
            while r.remaining >= 2:
                kind, size = r.u8(), r.u8()
                if kind == 0x01:
                    bits = r.u32()
                    names = (alarms.ACCELERATION, alarms.BRAKING, alarms.CORNERING, alarms.ACCIDENT, alarms.TAMPERING)
                    rec.alarms.extend(name for index, name in enumerate(names) if bits >> index & 1)
                else:
                    r.skip(min(size, r.remaining))
        if r.remaining:
            rec.battery_level = r.u8()


def _it_e1(it: _Item) -> None:
    _it_d4_e1_e9(it, 0xE1)


def _it_d4_e9(it: _Item) -> None:
    _it_d4_e1_e9(it, 0xD4)


def _it_battery_level(it: _Item) -> None:
    it.rec.battery_level = it.r.u8()


def _it_satellites(it: _Item) -> None:
    it.rec.satellites = it.r.u8()


def _it_power_tenths(it: _Item) -> None:
    it.rec.power = it.r.u16() / 10


def _it_battery_hundredths(it: _Item) -> None:
    it.rec.battery = it.r.u16() / 100


def _it_power_millivolts(it: _Item) -> None:
    it.rec.power = it.r.u32() / 1000


def _it_odometer_metres(it: _Item) -> None:
    it.rec.odometer = float(it.r.u32())


def _it_battery_level_hundredths(it: _Item) -> None:
    it.rec.battery_level = it.r.u16() / 100


#: additional information items of a location report.  0x01-0x31 are standard
#: (0x14 and 0x64-0x70 from JT/T 1078 / active safety); the others are vendor items.
ITEMS: dict[int, Callable[[_Item], None]] = {
    0x01: _it_odometer,
    0x02: _it_fuel,
    0x03: _it_uint("obdSpeed", 2, 10),
    0x06: _it_battery_level,
    0x0B: _it_lock,
    0x14: _it_uint("videoAlarm", 4),
    0x25: _it_uint("input", 4),
    0x2B: _it_adc,
    0xA7: _it_adc,
    0x30: _it_uint("rssi", 1),
    0x31: _it_satellites,
    0x33: _it_mode_or_lock_text,
    0x51: _it_temperatures,
    0x56: _it_level_tens,
    0x57: _it_driving_alarms,
    0x60: _it_event,
    0x63: _it_locks,
    0x64: lambda it: _it_adas(it, "adasAlarm"),
    0x65: lambda it: _it_adas(it, "dmsAlarm"),
    0x67: _it_password,
    0x68: _it_battery_level_hundredths,
    0x69: _it_battery_hundredths,
    0x70: _it_safety_event,
    0x77: _it_tires,
    0x82: _it_power_tenths,
    0x91: _it_obd_block,
    0x94: _it_text("vin"),
    0xAC: _it_odometer_metres,
    0xBC: _it_text("driver", strip=True),
    0xBD: _it_text("driverUniqueId"),
    0xD0: _it_user_status,
    0xD3: _it_power_tenths,
    0xD4: _it_d4_e9,
    0xD5: _it_d5,
    0xDA: _it_da,
    0xE1: _it_e1,
    0xE2: _it_e2,
    0xE3: _it_e3,
    0xE4: _it_e4,
    0xE5: _it_e5,
    0xE6: _it_e6,
    0xE7: _it_e7,
    0xE8: _it_e8,
    0xE9: _it_d4_e9,
    0xEA: _it_ea,
    0xEB: _it_eb,
    0xEC: _it_wifi,
    0xED: _it_text("card", strip=True),
    0xEE: _it_ee,
    0xF0: _it_f0_cells,
    0xF1: _it_power_millivolts,
    0xF2: _it_text("versionFw"),
    0xF3: _it_f3,
    0xF4: _it_wifi,
    0xF5: _it_f5,
    0xF6: _it_f6,
    0xF7: _it_f7,
    0xF8: _it_f8,
    0xF9: _it_f9,
    0xFB: _it_text("container"),
    0xFC: _it_uint("geofence", 1),
    0xFE: _it_fe,
}

#: OBD extension block after item 0x80 (runs to the end of the body): id BYTE, length BYTE, value
OBD_EXTENSION: dict[int, Callable[[_Item], None]] = {
    0x01: _it_odometer,
    0x02: _it_uint("fuel", 2, 10),
    0x03: _it_uint("obdSpeed", 2, 10),
    0x56: lambda it: setattr(it.rec, "battery_level", float(it.r.bytes(2)[1])),
    0x61: lambda it: setattr(it.rec, "power", it.r.u16() / 100),
    0x69: _it_battery_hundredths,
    0x80: _it_uint("obdSpeed", 1),
    0x81: _it_uint("rpm", 2),
    0x82: _it_power_tenths,
    0x83: _it_uint("engineLoad", 1),
    0x84: _it_uint("coolantTemp", 1, bias=-40),
    0x85: _it_uint("fuelConsumption", 2),
    0x86: _it_uint("intakeTemp", 1, bias=-40),
    0x87: _it_uint("intakeFlow", 2),
    0x88: _it_uint("intakePressure", 1),
    0x89: _it_uint("throttle", 1),
    0x8B: lambda it: _set(it.rec, "vin", _ascii(it.r.bytes(17))),
    0x8C: lambda it: _set(it.rec, "obdOdometer", it.r.u32() * 100),
    0x8D: lambda it: _set(it.rec, "tripOdometer", it.r.u16() * 1000),
    0x8E: _it_uint("fuel", 1),
    0xA0: lambda it: _set(it.rec, "dtcs", _ascii(it.r.rest()).replace(",", " ")),
    0xCC: lambda it: _set(it.rec, "iccid", _ascii(it.r.bytes(20))),
}


def _obd_rt(rec: Record, text: str) -> None:
    """`$OBD-RT,power,rpm,speed,throttle,load,coolant,instant l/h,average l/100km,trip,odometer,trip fuel,fuel used`."""
    keys = (
        "power",
        "rpm",
        "obdSpeed",
        "throttle",
        "engineLoad",
        "coolantTemp",
        "fuelConsumption",
        "fuelConsumption",
        "tripOdometer",
        "obdOdometer",
        "tripFuelUsed",
        "fuelUsed",
    )
    values = text.strip().split(",")[1:]
    for key, value in zip(keys, values, strict=False):
        try:
            number = float(value)
        except ValueError:
            continue
        _set(rec, key, int(number) if key == "coolantTemp" else number)


def _apply_items(
    rec: Record, extra: bytes, model: str | None, table: dict[int, Callable[[_Item], None]] = ITEMS
) -> None:
    """id BYTE, length BYTE, value; a truncated or malformed item is skipped (the rest is kept)."""
    position = 0
    while position + 2 <= len(extra):
        item_id, length = extra[position], extra[position + 1]
        start = position + 2
        position = start + length
        if table is ITEMS and item_id == 0x80:
            # OBD extension: a content byte, then its own items up to the end of the body
            _apply_items(rec, extra[start + 1 :], model, OBD_EXTENSION)
            return
        if position > len(extra):
            break  # truncated item: keep what was read
        handler = table.get(item_id)
        if handler is not None:
            try:
                handler(_Item(rec, Reader(extra, start, position), length, model))
            except (DecodeError, ValueError):
                continue


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


def _alarms_of(flags: int, model: str | None) -> list[str]:
    if not flags:  # the usual report: no bit set names no alarm, whatever the model
        return []
    if model in PADLOCK_MODELS:
        out = []
        if flags & 0b10001:
            out.append(alarms.REMOVING)
        if flags & 0b10:
            out.append(alarms.TAMPERING)
        return out
    if model in AOVX_MODELS:
        return [alarms.MOVEMENT] if flags >> 16 & 1 else []
    out = [name for bit, name in ALARM_BITS.items() if flags >> bit & 1]
    if model == "VL300":
        out = [name for name in out if name != alarms.ACCIDENT]
    return out


def _status_fields(rec: Record, status: int, model: str | None) -> None:
    """Status DWORD: ACC, fix, hemispheres, oil cut, charging (bit 26); some models more."""
    rec.ignition = bool(status & STATUS_ACC)
    rec.valid = bool(status & STATUS_FIX)
    rec.attributes["status"] = str(status)
    _flag(rec, "blocked", bool(status & STATUS_OIL_CUT))
    _flag(rec, "charge", bool(status >> 26 & 1))
    if model == "G1C Pro":
        _flag(rec, "motion", bool(status >> 4 & 1))
    if model in DOOR_MODELS:
        _flag(rec, "door", bool(status >> 16 & 1))


def _coordinates(rec: Record, status: int, lat: int, lon: int) -> None:
    rec.latitude = -lat / 1e6 if status & STATUS_SOUTH else lat / 1e6
    rec.longitude = -lon / 1e6 if status & STATUS_WEST else lon / 1e6


def decode_location(body: bytes, offset: timedelta, model: str | None = None) -> Record:
    if len(body) < LOCATION_LENGTH:
        raise DecodeError(f"location body of {len(body)} bytes (needs {LOCATION_LENGTH})")
    alarm, status, lat, lon, altitude, speed, course = struct.unpack_from(">IIIIhHH", body)
    rec = Record(
        fix_time=_bcd_time(body[22:28], offset),
        altitude=float(altitude),
        speed=speed / 10,
        course=float(course),
        alarms=_alarms_of(alarm, model),
    )
    _status_fields(rec, status, model)
    _coordinates(rec, status, lat, lon)
    extra = body[LOCATION_LENGTH:]
    if len(extra) == CARSCOP_EXTENSION_LENGTH and not _tlv_chain_fits(extra):
        _carscop_extension(rec, extra)
    else:
        _apply_items(rec, extra, model)
    rec.alarms = list(dict.fromkeys(rec.alarms))  # several bits share a name
    return rec


def decode_batch(body: bytes, offset: timedelta, model: str | None = None) -> list[Record]:
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
        rec = decode_location(item, offset, model)
        rec.archive = batch_type == BATCH_BLIND_AREA
        records.append(rec)
        position += 2 + length
    return records


def decode_batch_short(body: bytes, offset: timedelta, model: str | None = None) -> list[Record]:
    """0x0210 (vendor) batch: n x (length BYTE, location)."""
    records = []
    r = Reader(body)
    while r.remaining >= 2:
        records.append(decode_location(r.bytes(r.u8()), offset, model))
    return records


def _lock_coordinate(digits: str) -> float:
    """`dddmmmmmm`: degrees and minutes with 4 decimals."""
    raw = int(digits)
    return raw // 1_000_000 + (raw % 1_000_000) / 10_000 / 60


def decode_lock_location(body: bytes, blind: bool) -> Record:
    """Jointech JT701/JT709 0x5501 (live) / 0x5502 (blind area).  Body::

    time BCD[6] ddmmyyhhmmss (UTC), latitude BCD 8 digits (ddmm.mmmm), longitude BCD
    9 digits (dddmm.mmmm) and a flag nibble (bit 0 fix, 1 north, 2 east), speed BCD[1]
    (knots), course BYTE (x2 degrees), rssi BYTE, satellites BYTE, odometer DWORD (km),
    battery BYTE (percent; 0xAA/0xAB charging), cell id DWORD, lac WORD, product BYTE,
    status WORD, alarm WORD, then items id BYTE, length BYTE, value.
    """
    r = Reader(body)
    digits = r.bytes(6).hex()
    coordinates = r.bytes(9).hex()
    if not (digits.isdigit() and coordinates[:17].isdigit()):
        raise DecodeError("lock location time or coordinates are not BCD")
    when = _lock_time(digits)
    flags = int(coordinates[17], 16)
    latitude = _lock_coordinate(coordinates[:8])
    longitude = _lock_coordinate(coordinates[8:17])
    speed_digits = r.bytes(1).hex()
    rec = Record(
        fix_time=when,
        valid=not blind,
        latitude=latitude if flags & 0b10 else -latitude,
        longitude=longitude if flags & 0b100 else -longitude,
        speed=int(speed_digits) * KNOTS if speed_digits.isdigit() else None,
        course=r.u8() * 2.0,
    )
    _set(rec, "rssi", r.u8())
    rec.satellites = r.u8()
    rec.odometer = r.u32() * 1000.0
    battery = r.u8()
    if battery <= 100:
        rec.battery_level = battery
    elif battery in (0xAA, 0xAB):
        _flag(rec, "charge", True)
    cid, lac = r.u32(), r.u16()
    if cid and lac:
        rec.attributes.update(lac=str(lac), cid=str(cid))
    product, status, alarm = r.u8(), r.u16(), r.u16()
    if product in (1, 2):
        if alarm & 1:
            rec.alarms.append(alarms.LOW_POWER)
    elif product == 3:
        _flag(rec, "blocked", bool(status >> 5 & 1))
        names = (alarms.OVERSPEED, alarms.LOW_POWER, alarms.VIBRATION, alarms.LOW_BATTERY, None)
        rec.alarms.extend(name for index, name in enumerate(names) if name and alarm >> index & 1)
        if alarm >> 5 & 1:
            rec.alarms.append(alarms.GEOFENCE_ENTER)
        if alarm >> 6 & 1:
            rec.alarms.append(alarms.GEOFENCE_EXIT)
    _set(rec, "status", status)
    while r.remaining >= 2:
        item_id, length = r.u8(), r.u8()
        if length > r.remaining:
            break
        sub = r.sub(length)
        try:
            _lock_item(rec, item_id, sub, length)
        except DecodeError:
            continue
    return rec


def _lock_time(digits: str) -> datetime | None:
    try:
        return datetime(
            2000 + int(digits[4:6]),
            int(digits[2:4]),
            int(digits[0:2]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _lock_item(rec: Record, item_id: int, r: Reader, length: int) -> None:
    if item_id == 0x02:
        rec.altitude = float(r.i16())
    elif item_id == 0x10:
        _set(rec, "wakeSource", r.u8())
    elif item_id == 0x0B:
        _it_lock(_Item(rec, r, length, None))
    elif item_id == 0x0C:
        x, y, z = (_signed_tilt(r.u16()) for _ in range(3))
        _set(rec, "tilt", f"[{x},{y},{z}]")
    elif item_id == 0xFC:
        _set(rec, "geofence", r.u8())


def _signed_tilt(word: int) -> int:
    return word - 0x10000 if word > 0x8000 else word


def _acceleration(body: bytes) -> Record:
    """0x2070: n x (time BCD[6], x, y, z sign-magnitude WORDs)."""
    r = Reader(body)
    samples = []
    while r.remaining >= 12:
        r.skip(6)
        samples.append("[" + ",".join(str(sign_magnitude(r.u16(), 16)) for _ in range(3)) + "]")
    return _status_record(gSensor="[" + ",".join(samples) + "]")


def _transparent(body: bytes, offset: timedelta, model: str | None) -> list[Record]:
    """0x0900 uplink pass-through: type BYTE then a vendor payload (see `TRANSPARENT_TYPES`)."""
    if not body:
        return []
    kind, payload = body[0], body[1:]
    if kind == 0x40:
        text = java_trim(_ascii(payload))
        if text.startswith("GTSL"):
            values = text.split("|")
            return [_status_record(driverUniqueId=values[4])] if len(values) > 4 else []
        return [_status_record(data=text)] if text else []
    if kind == 0x41:
        rec = Record()
        _obd_rt(rec, _ascii(payload))
        return [rec]
    if kind == 0xF0:
        return _transparent_f0(Reader(payload), offset, model)
    if kind == 0xFF:
        r = Reader(payload)
        when = _bcd_time(r.bytes(6), offset)
        lat, lon, altitude, speed, course = r.i32(), r.i32(), r.i16(), r.u16(), r.u16()
        rec = Record(fix_time=when, valid=True, latitude=lat / 1e6, longitude=lon / 1e6)
        rec.altitude, rec.speed, rec.course = float(altitude), speed / 10, float(course)
        return [rec]
    if kind == 0xF3:
        r = Reader(payload)
        rec = Record()
        while r.remaining > 4:
            sub_id, length = r.u16(), r.u16()
            sub = r.sub(min(length, r.remaining))
            if sub_id == 0x0002 and sub.remaining >= 2:
                _set(rec, "collision", sub.u16() / 256 / 100)
            elif sub_id == 0x0006 and sub.remaining >= 6:
                _set(rec, "deviceTime", _iso(_bcd_time(sub.bytes(6), offset)))
        return [rec]
    if kind in (0x53, 0x54):
        return [_transparent_sensors(kind, Reader(payload), offset, model)]
    return []


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _transparent_f0(r: Reader, offset: timedelta, model: str | None) -> list[Record]:
    """0xF0 vehicle data: time BCD[6], archive BYTE, vehicle type BYTE, subtype BYTE, data;
    subtypes 01 (OBD values), 02 (fault codes), 03 (events) end with status and coordinates."""
    when = _bcd_time(r.bytes(6), offset)
    rec = Record(fix_time=when, archive=r.u8() > 0)
    r.skip(1)  # vehicle type
    subtype = r.u8()
    if subtype == 0x01:
        for _ in range(r.u8()):
            item_id, length = r.u16(), r.u8()
            _vehicle_value(rec, item_id, r.sub(length), length)
    elif subtype == 0x02:
        codes = []
        for _ in range(r.u16()):
            r.skip(4)  # system id
            for _ in range(r.u16()):
                r.skip(8)  # dtc, status
                codes.append(java_trim(_ascii(r.bytes(r.u16()))))
        _set(rec, "dtcs", " ".join(codes))
    elif subtype == 0x03:
        for _ in range(r.u8()):
            event, length = r.u8(), r.u8()
            r.skip(length)
            if event in VEHICLE_EVENTS:
                rec.alarms.append(VEHICLE_EVENTS[event])
    elif subtype == 0x04:
        trip = r.u8()
        _set(rec, "tripNumber", r.u32())
        r.skip(6)
        if trip == 0x02:
            r.skip(23)
            _set(rec, "idlingCount", r.u16())
            _set(rec, "idlingTime", r.u16())
            _set(rec, "tripOdometer", r.u16() * 100)
            _set(rec, "tripFuel", r.u16() / 100)
        return [rec]
    elif subtype == 0x0B:
        if r.u8() > 0:
            _set(rec, "vin", _ascii(r.bytes(17)))
        return [rec]
    elif subtype == 0x15:
        event = r.i32()
        name = {51: alarms.ACCELERATION, 52: alarms.BRAKING, 53: alarms.CORNERING, 54: alarms.LANE_CHANGE}.get(event)
        name = alarms.ACCIDENT if event == 56 else name
        if name:
            rec.alarms.append(name)
        else:
            _set(rec, "event", event)
        return [rec]
    else:
        return []
    status, lat, lon = r.u32(), r.u32(), r.u32()
    _status_fields(rec, status, model)
    _coordinates(rec, status, lat, lon)
    return [rec]


VEHICLE_EVENTS: dict[int, str] = {
    0x01: alarms.POWER_RESTORED,
    0x02: alarms.POWER_CUT,
    0x0E: alarms.IDLE,
    0x1A: alarms.ACCELERATION,
    0x1B: alarms.BRAKING,
    0x1C: alarms.CORNERING,
    0x1D: alarms.LANE_CHANGE,
    0x1E: alarms.LANE_CHANGE,
    0x1F: alarms.LANE_CHANGE,
    0x23: alarms.FATIGUE_DRIVING,
    0x25: alarms.OVERSPEED,
    0x26: alarms.ACCIDENT,
    0x27: alarms.ACCIDENT,
    0x28: alarms.ACCIDENT,
    0x31: alarms.DOOR,
    0x32: alarms.DOOR,
}

#: 0x0900/F0/01 vehicle data ids -> (key, size, scale, bias)
VEHICLE_VALUES: dict[int, tuple[str, int, float, int]] = {
    0x0102: ("odometer", 4, 0.01, 0),
    0x0528: ("odometer", 4, 0.01, 0),
    0x0546: ("odometer", 4, 0.01, 0),
    0x0103: ("fuel", 4, 100, 0),
    0x0111: ("fuelTemp", 1, 1, -40),
    0x012E: ("oilLevel", 2, 10, 0),
    0x052A: ("fuel", 2, 100, 0),
    0x0105: ("fuelUsed", 4, 100, 0),
    0x052C: ("fuelUsed", 4, 100, 0),
    0x014A: ("fuelConsumption", 2, 100, 0),
    0x0537: ("fuelConsumption", 2, 100, 0),
    0x0538: ("fuelConsumption", 2, 100, 0),
    0x0539: ("fuelConsumption", 2, 100, 0),
    0x052B: ("fuel", 1, 1, 0),
    0x052D: ("coolantTemp", 1, 1, -40),
    0x052E: ("airTemp", 1, 1, -40),
    0x0530: ("power", 2, 1000, 0),
    0x0535: ("obdSpeed", 2, 10, 0),
    0x0536: ("rpm", 2, 1, 0),
    0x053D: ("intakePressure", 2, 10, 0),
    0x0544: ("liquidLevel", 1, 1, 0),
    0x0547: ("throttle", 1, 1, 0),
    0x0548: ("throttle", 1, 1, 0),
}


def _vehicle_value(rec: Record, item_id: int, r: Reader, length: int) -> None:
    spec = VEHICLE_VALUES.get(item_id)
    if spec is not None:
        key, size, scale, bias = spec
        value = r.uint(size) + bias
        _set(rec, key, value / scale if scale != 1 else value)
    elif item_id == 0xFEEC:
        _set(rec, "vin", _ascii(r.rest()))
    elif length in (1, 2, 4):
        _set(rec, f"io{item_id}", r.uint(length))


def _transparent_sensors(kind: int, r: Reader, offset: timedelta, model: str | None) -> Record:
    """0x53 BLE tag scan / 0x54 sensor samples: status DWORD, coordinates, altitude, speed,
    course, time, then tags (index BYTE, mac BYTE[6], rssi BYTE, length BYTE, data) or samples
    (mask WORD, time BCD[6], light WORD, temperature + humidity, temp3, acceleration, pressure)."""
    status, lat, lon = r.u32(), r.u32(), r.u32()
    rec = Record()
    _status_fields(rec, status, model)
    _coordinates(rec, status, lat, lon)
    rec.altitude, rec.speed, rec.course = float(r.i16()), r.u16() / 10, float(r.u16())
    rec.fix_time = _bcd_time(r.bytes(6), offset)
    if kind == 0x53:
        r.skip(1)  # total tags over all sub-packages
        while r.remaining >= 9:
            index = r.u8() + 1
            _set(rec, f"tag{index}Mac", r.bytes(6).hex())
            _set(rec, f"tag{index}Rssi", r.i8())
            _set(rec, f"tag{index}Data", r.bytes(r.u8()).hex())
        return rec
    while r.remaining >= 8:
        mask = r.u16()
        r.skip(6)
        if mask & 1:
            _set(rec, "lightSensor", r.u16())
        if mask >> 1 & 1:
            _set(rec, "deviceTemp", r.i16() / 10)
            _set(rec, "humidity", r.i16() / 10)
        if mask >> 2 & 1:
            _set(rec, "temp3", r.i16() / 10)
        if mask >> 3 & 1:
            r.skip(6)
        if mask >> 4 & 1:
            _set(rec, "airPressure", r.u16())
    return rec


def _driver_identity(body: bytes, offset: timedelta) -> Record:
    """0x0702 (2013): card status BYTE, time BCD[6], result BYTE, name (length BYTE), card code
    ASCII[20], agency (length BYTE), validity BCD[4]."""
    r = Reader(body)
    rec = Record()
    _set(rec, "cardStatus", r.u8())
    _set(rec, "deviceTime", _iso(_bcd_time(r.bytes(6), offset)))
    _set(rec, "cardResult", r.u8())
    _set(rec, "driver", _ascii(r.bytes(r.u8())))
    _set(rec, "cardCode", java_trim(_ascii(r.bytes(20))))
    _set(rec, "cardAgency", _ascii(r.bytes(r.u8())))
    _set(rec, "cardValidity", r.bytes(4).hex())
    return rec


# ---------------------------------------------------------------- other bodies


def _status_record(**attributes: str) -> Record:
    return Record(attributes=dict(attributes))


def _decode_body(header: Header, body: bytes, offset: timedelta, model: str | None = None) -> list[Record]:
    msg_id = header.msg_id
    if msg_id == MSG_LOCATION:
        return [decode_location(body, offset, model)]
    if msg_id == MSG_LOCATION_RESPONSE:
        return [decode_location(body[2:], offset, model)]  # after the answered serial
    if msg_id == MSG_BATCH:
        return decode_batch(body, offset, model)
    if msg_id == MSG_HEARTBEAT and len(body) >= 3:
        rec = _status_record(rssi=str(body[1]), status=str(body[2]))
        rec.battery_level = body[0]
        return [rec]
    if msg_id == MSG_BATTERY_REPORT:
        if len(body) == 7:
            return [Record(fix_time=_bcd_time(body[1:7], offset), battery_level=body[0])]
        return decode_batch_short(body, offset, model)
    if msg_id in (MSG_LOCK_LOCATION, MSG_LOCK_LOCATION_BLIND):
        return [decode_lock_location(body, msg_id == MSG_LOCK_LOCATION_BLIND)]
    if msg_id == MSG_ATTRIBUTES:
        # terminal type WORD, maker BYTE[5], model BYTE[20], terminal id BYTE[7], ICCID BCD[10]
        iccid = body[34:44]
        return [_status_record(iccid=iccid.hex())] if len(iccid) == 10 else []
    if msg_id == MSG_TEXT_REPORT and body:
        return [_status_record(result=body[1:].decode("gbk", errors="replace"))]
    if msg_id == MSG_TEXT_RESPONSE and len(body) >= 2:
        text = body[2 : 2 + (len(body) - 2) // 2 * 2].decode("utf-16-be", errors="replace")
        return [_status_record(result=text.strip())]
    if msg_id == MSG_ACCELERATION:
        return [_acceleration(body)]
    if msg_id == MSG_TRANSPARENT:
        return _transparent(body, offset, model)
    if msg_id == MSG_COMMAND_RESPONSE:
        r = Reader(body)
        return [_status_record(result=_ascii(r.bytes(r.u32())))]
    if msg_id == MSG_DRIVER_IDENTITY:
        return [_driver_identity(body, offset)]
    return []


# ---------------------------------------------------------------- codec


class Jt808Codec(Codec):
    name = "jt808"
    first_bytes = b"\x7e(\xe7"
    priority = 20
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == FLAG:
            return _detect_binary(head)
        if head[0] == ALT_FLAG:
            return _detect_alt(head)
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
        header, body = parse_frame(frame)
        if header.msg_id == MSG_TIME_SYNC_REQUEST:
            return FrameInfo("other", terminal_id(header.terminal), clock_reply=True)
        return FrameInfo(_kind(header, body), terminal_id(header.terminal), reply_for(header))

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        """0x0109 time request -> 0x8109: year WORD, month, day, hour, minute, second, result (UTC)."""
        if frame[:1] == bytes((TEXT_OPEN,)):
            return None
        header, _ = parse_frame(frame)
        if header.msg_id != MSG_TIME_SYNC_REQUEST:
            return None
        utc = now.astimezone(UTC)
        body = struct.pack(">HBBBBBB", utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, RESULT_SUCCESS)
        return _reply(header, MSG_TIME_SYNC_RESPONSE, body)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if frame[:1] == bytes((TEXT_OPEN,)):
            if not frame.endswith(b")") or not frame.isascii():
                raise DecodeError("text frame must be ASCII within parentheses")
            text = frame.decode()
            records = [] if "BASE,2" in text else [_status_record(result=text)]
            return Decoded("other", _text_id(frame), records)
        header, body = parse_frame(frame)
        device_id = terminal_id(header.terminal)
        kind = _kind(header, body)
        model = ctx.options.get("model") or None
        if header.msg_id in SHORT_SERIAL:
            # Jointech locks use the encryption bits for their own flags
            return Decoded(kind, device_id, _decode_body(header, body, utc_offset(ctx), model))
        if header.subpackage:
            # the first packet of a long body carries its head: decode what it holds; later
            # packets cannot be reassembled by a stateless decoder, so they are dead-lettered
            # (with the packet numbers) instead of being dropped silently
            where = f"sub-package {header.packet_index}/{header.packet_count} of message 0x{header.msg_id:04x}"
            if header.packet_index == 1:
                try:
                    return Decoded(kind, device_id, _decode_body(header, body, utc_offset(ctx), model))
                except DecodeError as exc:
                    raise DecodeError(f"{where}: {exc}", reason="subpackage") from exc
            raise DecodeError(f"{where}: not reassembled (stateless decode)", reason="subpackage")
        if header.attr & ATTR_ENCRYPTION_MASK:
            raise DecodeError(f"encrypted body (attributes {header.attr:04x}) is not supported")
        return Decoded(kind, device_id, _decode_body(header, body, utc_offset(ctx), model))


CODEC = Jt808Codec()
