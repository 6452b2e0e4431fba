"""HuaSheng HS3000-type OBD plug-in trackers (Traccar `huasheng`).  TCP only.

SLIP-style binary frames, big-endian::

    C0 | flag(1) | reserved(1) | len(2) | type(2) | checksum(2) | index(4) | body | C0

`len` counts the bytes between the two `C0` markers once unescaped; inside a frame
`C0` travels as `DB DC` and `DB` as `DB DD` (the framer undoes this, so frames are
handed on unescaped).

Types: AA02 login (TLVs: type(2) len(2, incl. these 4) value; 0003 = IMEI in ASCII),
0002 handshake ("HSO"), AA00 position, AA12 fault codes (DTCs), AA04/AA16 answers to
settings and controls, 0060 (seen, not documented).  A position body: status word
(bit15 fix valid, bit14 ignition), event word (alarms), time ``yyMMddHHmmss`` (ASCII,
UTC), longitude and latitude (int32 / 100 000), speed (km/h), course, altitude,
odometer speed, then TLVs: 0001 OBD block (coolant, rpm, average speed, fuel
consumption, trip odometer, power, fuel level, [fuel level 2], trip id, [AdBlue]),
0005 RSSI/HDOP, 0009 VIN, 0010 odometer (km, ASCII), 0011 engine hours (1/20 h),
0014 engine block (load, timing advance, air temperature, air flow, throttle), 0020
cells ``mcc@mnc@lac@cid+...``, 0021 Wi-Fi.

The IMEI travels only in the login: later frames belong to the connection's device.

Replies ``C0 01 00 <len = 12 + content> <type> 00 00 <request index> [content] C0``:
login (with an IMEI) -> FF03 ``00`` (accepted), handshake -> 0003, position -> FF01.
"""

from __future__ import annotations

import struct

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
from .kit import framing
from .kit.framing import garbage, no_end_marker
from .kit.readers import Reader, utc

MARK = 0xC0
ESC = 0xDB
ESC_MARK = 0xDC
ESC_ESC = 0xDD
HEADER = 1 + 12  # C0 + flag .. index
MAX_FRAME = 2048

POSITION = 0xAA00
POSITION_REPLY = 0xFF01
LOGIN = 0xAA02
LOGIN_REPLY = 0xFF03
FAULT = 0xAA12
FAULT_REPLY = 0xFF13
HSO = 0x0002
HSO_REPLY = 0x0003
SET_REPLY_FROM_UNIT = 0xAA04
CTRL_REPLY_FROM_UNIT = 0xAA16
UNKNOWN_0060 = 0x0060
TYPES = frozenset({POSITION, LOGIN, FAULT, HSO, SET_REPLY_FROM_UNIT, CTRL_REPLY_FROM_UNIT, UNKNOWN_0060})

ALARMS = {
    4: A.FATIGUE_DRIVING,
    6: A.SOS,
    7: A.BRAKING,
    8: A.ACCELERATION,
    9: A.CORNERING,
    10: A.ACCIDENT,
    16: A.REMOVING,
}
TLV_IMEI = 0x0003
TLV_FIRMWARE = 0x0001


CODES = {ESC_MARK: MARK, ESC_ESC: ESC}


def unescape(raw: bytes | bytearray) -> bytes:
    return framing.unescape(raw, ESC, CODES)


def escape(inner: bytes) -> bytes:
    return framing.escape(inner, ESC, CODES)


def build(type_: int, index: int, body: bytes = b"", flag: int = 0, reserved: int = 0) -> bytes:
    """A frame as it travels (escaped)."""
    inner = struct.pack(">BBHHHI", flag, reserved, 12 + len(body), type_, 0, index) + body
    return bytes((MARK,)) + escape(inner) + bytes((MARK,))


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value) + 4) + value


# ------------------------------------------------------------------ framing


class HuaShengFramer(Framer):
    """`C0` ... `C0`, unescaped on the way out."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 1

    def next_frame(self) -> bytes | None:
        buf = self._buf
        while len(buf) >= 2 and buf[0] == MARK and buf[1] == MARK:
            del buf[:1]  # a closing marker followed by the next opening one
            self._scan = 1
        if not buf:
            return None
        if buf[0] != MARK:
            self._scan = 1
            cut = buf.find(bytes((MARK,)))
            raise garbage(buf, cut if cut >= 0 else len(buf))
        end = buf.find(bytes((MARK,)), self._scan)
        if end < 0:
            self._scan = max(1, len(buf))
            if len(buf) > self.max_frame:
                self._scan = 1
                raise no_end_marker(buf, self.max_frame)
            return None
        self._scan = 1
        raw = bytes(buf[: end + 1])
        del buf[: end + 1]
        if len(raw) > self.max_frame:
            raise FramingError(f"frame of {len(raw)} bytes", discarded=raw, fatal=True, reason="frame too large")
        return unescape(raw)


# ------------------------------------------------------------------ parsing


class _Frame:
    __slots__ = ("body", "index", "type")

    def __init__(self, frame: bytes) -> None:
        if len(frame) < HEADER or frame[0] != MARK:
            raise DecodeError("not a HuaSheng frame")
        length = int.from_bytes(frame[3:5], "big")
        if length < 12 or length + 1 > len(frame):
            raise DecodeError(f"length field {length} for a frame of {len(frame)} bytes")
        self.type = int.from_bytes(frame[5:7], "big")
        self.index = int.from_bytes(frame[9:13], "big")
        self.body = frame[HEADER : 1 + length]


def _tlvs(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    r = Reader(body)
    while r.remaining > 4:
        tag, length = r.u16(), r.u16() - 4
        if length < 0:
            raise DecodeError("TLV length below its header")
        out.append((tag, r.bytes(min(length, r.remaining))))
    return out


def _imei(f: _Frame) -> str | None:
    if f.type != LOGIN:
        return None
    for tag, value in _tlvs(f.body):
        if tag == TLV_IMEI:
            text = value.decode("latin-1").strip("\0 ")
            return text or None
    return None


def _reply_frame(type_: int, index: int, content: bytes = b"") -> bytes:
    return build(type_, index, content, flag=0x01, reserved=0x00)


def _kind_and_reply(f: _Frame) -> tuple[str, bytes | None]:
    if f.type == LOGIN:
        return "login", (_reply_frame(LOGIN_REPLY, f.index, b"\x00") if _imei(f) else None)
    if f.type == HSO:
        return "heartbeat", _reply_frame(HSO_REPLY, f.index)
    if f.type == POSITION:
        event = int.from_bytes(f.body[2:4], "big") if len(f.body) >= 4 else 0
        return ("alarm" if event in ALARMS else "position"), _reply_frame(POSITION_REPLY, f.index)
    if f.type == FAULT:
        return "status", None
    return "other", None


def dtc(code: bytes) -> str:
    text = code.hex()
    digit = int(text[0], 16)
    return "PCBU"[digit >> 2] + str(digit % 4) + text[1:]


def _obd_block(rec: Record, value: bytes) -> None:
    r = Reader(value)
    a = rec.attributes
    a["coolantTemp"] = str(r.u8() - 40)
    a["rpm"] = str(r.u16())
    a["averageSpeed"] = str(r.u8())
    r.skip(2)  # interval fuel consumption
    a["fuelConsumption"] = repr(r.u16() / 100)
    a["tripOdometer"] = str(r.u16())
    rec.power = r.u16() / 100
    a["fuel"] = repr(r.u8() * 0.4)
    if r.remaining >= 7:
        a["fuelLevel2"] = str(r.u16())
    r.skip(4)  # trip id
    if r.remaining:
        a["adBlueLevel"] = repr(r.u8() * 0.4)


def _engine_block(rec: Record, value: bytes) -> None:
    r = Reader(value)
    a = rec.attributes
    r.skip(1)  # valid flag
    a["engineLoad"] = repr(r.u8() / 255)
    a["timingAdvance"] = repr(r.u8() * 0.5)
    a["airTemp"] = str(r.u8() - 40)
    a["airFlow"] = repr(r.u16() / 100)
    a["throttle"] = repr(r.u8() / 255)


def _cells(rec: Record, value: bytes) -> None:
    first = value.decode("latin-1").split("+")[0].split("@")
    if len(first) >= 4:
        try:
            rec.attributes.update(
                mcc=str(int(first[0])), mnc=str(int(first[1])), lac=str(int(first[2], 16)), cid=str(int(first[3], 16))
            )
        except ValueError:
            pass


def _position(f: _Frame) -> Record:
    r = Reader(f.body)
    status = r.u16()
    event = r.u16()
    stamp = r.ascii(12)
    if not (stamp.isascii() and stamp.isdigit()):
        raise DecodeError(f"bad time {stamp!r}")
    when = utc(*(int(stamp[i : i + 2]) for i in range(0, 12, 2)))
    lon = r.i32() / 100_000
    lat = r.i32() / 100_000
    if abs(lat) > 90 or abs(lon) > 180:
        raise DecodeError(f"coordinates out of range: {lat}, {lon}")
    rec = Record(
        fix_time=when,
        valid=bool(status >> 15 & 1),
        latitude=lat,
        longitude=lon,
        speed=float(r.u16()),
        course=float(r.u16()),
        altitude=float(r.u16()),
        ignition=bool(status >> 14 & 1),
    )
    r.skip(2)  # odometer speed
    rec.attributes["status"] = str(status)
    rec.attributes["event"] = str(event)
    if event in ALARMS:
        rec.alarms.append(ALARMS[event])
    for tag, value in _tlvs(r.rest()):
        try:
            _apply_tlv(rec, tag, value)
        except (DecodeError, ValueError, IndexError):
            continue  # a short or garbled block: keep the rest of the report
    return rec


def _apply_tlv(rec: Record, tag: int, value: bytes) -> None:
    a = rec.attributes
    if tag == 0x0001:
        _obd_block(rec, value)
    elif tag == 0x0005:
        a["rssi"] = str(value[0])
        a["hdop"] = str(value[1])
    elif tag == 0x0009:
        a["vin"] = value.decode("latin-1")
    elif tag == 0x0010:
        rec.odometer = float(value.decode("latin-1")) * 1000
    elif tag == 0x0011:
        a["hours"] = repr(int.from_bytes(value[:4], "big") / 20)
    elif tag == 0x0014:
        _engine_block(rec, value)
    elif tag == 0x0020:
        _cells(rec, value)


def _faults(f: _Frame, ctx: Context) -> Record:
    body = f.body[4:]  # TLV type and length
    codes = [dtc(body[i : i + 2]) for i in range(0, len(body) - 1, 2)]
    rec = Record(fix_time=ctx.received_at)
    rec.attributes["dtcs"] = " ".join(codes)
    return rec


class HuaShengCodec(Codec):
    name = "huasheng"
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME
    first_bytes = bytes((MARK,))
    priority = 10
    replies = True

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] != MARK:
            return Detection.NO
        if len(head) > 1 and head[1] not in (0x00, 0x01):
            return Detection.NO
        if len(head) < 7:
            return Detection.MORE
        length = int.from_bytes(head[3:5], "big")
        if length < 12 or length + 2 > MAX_FRAME or int.from_bytes(head[5:7], "big") not in TYPES:
            return Detection.NO
        end = head.find(bytes((MARK,)), 1)
        if end < 0:
            return Detection.MORE
        if len(unescape(head[: end + 1])) == length + 2:
            return Detection.YES  # as it travels
        if len(head) >= length + 2 and head[length + 1] == MARK:
            return Detection.YES  # already unescaped (a frame handed on by a framer)
        if len(head) < length + 2:
            return Detection.MORE
        return Detection.NO

    def new_framer(self) -> Framer:
        return HuaShengFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        f = _Frame(frame)
        kind, reply = _kind_and_reply(f)
        return FrameInfo(kind, _imei(f), reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        f = _Frame(frame)
        kind, _ = _kind_and_reply(f)
        if f.type == POSITION:
            records = [_position(f)]
        elif f.type == FAULT:
            records = [_faults(f, ctx)]
        else:
            records = []  # login, handshake, answers: nothing positional
        return Decoded(kind, _imei(f), records)


CODEC = HuaShengCodec()
