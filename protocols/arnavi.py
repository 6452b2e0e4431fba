"""ARNAVI vehicle terminals (Russia; Traccar `arnavi`), TCP only.

Two wire forms share the port.

Text lines, ``$AV,`` ... ``\\r\\n`` (no reply)::

    $AV,V2,<id>,<index>,<power/100 V>,<battery/100 V>,<n>,<moving 0|1>,<ignition 0|1>,<inputs>,
        <in1a>,<in1b>,[<in2a>,<in2b>,]<fix 0|1>,<sats>,[<alt>,<geoid>,]hhmmss,ddmm.mmmm[NS],
        dddmm.mmmm[EW],<speed km/h>,<course>,ddmmyy,...*cs

  ``V2``/``V3``/``V4`` lines carry a position; ``V3DI``, ``V6SD``, ``V3GSMINFO`` (device,
  SD-card and GSM info) are status lines without one.  The device id is in every line.

Binary: the first frame of a connection is a 10-byte header, then packets::

    header  FF  version(1: 22, 23, 24, 25)  IMEI uint64 LE
    packet  5B  index(1)  { type(1) len(2 LE) time(4 LE, unix) data(len) checksum(1) } ...  5D
    result  5B  FD  x  x                              (4 bytes)

  Record types: ``00`` ping, ``01`` data (tag-value pairs, one tag byte + 4 value bytes),
  ``03`` text, ``04`` file, ``06`` binary; only ``01`` carries a position.  The packet is
  walked record by record to its ``5D`` (the per-record checksum is not verified: the
  public captures do not agree on what it sums).

Replies (TCP): header version ``22`` -> ``7B 00 00 7D``; versions ``23``/``25`` ->
``7B 04 00 <sum8 of time> <server time uint32 LE> 7D`` (a clock reply); version ``24``
-> ``7B 7D`` (as Traccar writes it).  Each packet -> ``7B 00 <index> 7D``.

Binary packets carry no id: the edge binds the IMEI of the header to the connection.
"""

from __future__ import annotations

import struct
from datetime import datetime

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
from .kit import keys
from .kit.checksums import sum8
from .kit.framing import garbage, no_end_marker
from .kit.readers import Reader, ddmm, ddmmyy_hhmmss, unix

HEADER = 0xFF
HEADER_LEN = 10
VERSIONS = (0x22, 0x23, 0x24, 0x25)
CLOCK_VERSIONS = (0x23, 0x25)
PACKET_START = 0x5B
PACKET_END = 0x5D
RESULT = 0xFD
RESULT_LEN = 4
RECORD_TYPES = (0x00, 0x01, 0x03, 0x04, 0x06)
RECORD_DATA = 0x01
RECORD_WRAPPER = 8  # type + len(2) + time(4) + checksum
TEXT_PREFIX = b"$AV,"
MAX_IMEI = 10**16


def _header_ok(head: bytes) -> Detection:
    if head[0] != HEADER:
        return Detection.NO
    if len(head) < 2:
        return Detection.MORE
    if head[1] not in VERSIONS:
        return Detection.NO
    if len(head) < HEADER_LEN:
        return Detection.MORE
    imei = int.from_bytes(head[2:HEADER_LEN], "little")
    return Detection.YES if 0 < imei < MAX_IMEI else Detection.NO


def _packet_end(data: bytes | bytearray, start: int = 2) -> int | None:
    """Index just past the `5D` closing the packet at data[0], None when incomplete;
    -1 when the bytes cannot be a packet (an unknown record type)."""
    i = start
    while True:
        if i >= len(data):
            return None
        if data[i] == PACKET_END:
            return i + 1
        if data[i] not in RECORD_TYPES:
            return -1
        if i + 3 > len(data):
            return None
        i += RECORD_WRAPPER + int.from_bytes(data[i + 1 : i + 3], "little")


def _packet_detect(head: bytes) -> Detection:
    if len(head) < 2:
        return Detection.MORE
    if head[1] == RESULT:
        return Detection.MORE if len(head) < RESULT_LEN else Detection.YES
    if len(head) < 3:
        return Detection.MORE
    if head[2] not in RECORD_TYPES:  # a packet holds at least one record
        return Detection.NO
    end = _packet_end(head)
    if end is None:
        return Detection.MORE
    return Detection.YES if end > 0 else Detection.NO


def _text_detect(head: bytes) -> Detection:
    sig = TEXT_PREFIX + b"V"
    n = min(len(head), len(sig))
    if head[:n] != sig[:n]:
        return Detection.NO
    if len(head) <= len(sig):
        return Detection.MORE
    return Detection.YES if 0x30 <= head[len(sig)] <= 0x39 else Detection.NO


class ArnaviFramer(Framer):
    """`$`...`\\r\\n` lines, the 10-byte `FF` header, `5B`...`5D` packets walked by record."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0
        self._walk = 2  # where the record walk of a `5B` packet resumes

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if not buf:
            return None
        first = buf[0]
        if first == 0x24:  # $
            end = buf.find(b"\n", self._scan)
            if end < 0:
                self._scan = len(buf)
                if len(buf) > self.max_frame:
                    self._scan = 0
                    raise no_end_marker(buf, self.max_frame)
                return None
            return self._take(end + 1)
        if first == HEADER:
            if len(buf) < 2:
                return None
            if buf[1] not in VERSIONS:
                raise self._garbage()
            return self._take(HEADER_LEN) if len(buf) >= HEADER_LEN else None
        if first == PACKET_START:
            if len(buf) < 2:
                return None
            if buf[1] == RESULT:
                return self._take(RESULT_LEN) if len(buf) >= RESULT_LEN else None
            end = _packet_end(buf, self._walk)
            if end is None:
                self._walk = self._resume(buf)
            if end == -1:
                raise self._garbage()
            if end is None:
                if len(buf) > self.max_frame:
                    raise no_end_marker(buf, self.max_frame)
                return None
            if end > self.max_frame:
                frame = bytes(buf[:end])
                del buf[:end]
                raise FramingError(f"frame of {end} bytes", discarded=frame, fatal=True, reason="frame too large")
            return self._take(end)
        if first in b"\r\n":
            i = 0
            while i < len(buf) and buf[i] in b"\r\n":
                i += 1
            del buf[:i]
            return self.next_frame()
        raise self._garbage()

    def _take(self, size: int) -> bytes:
        frame = bytes(self._buf[:size])
        del self._buf[:size]
        self._scan = 0
        self._walk = 2
        return frame

    def _resume(self, buf: bytearray) -> int:
        """The start of the last record not yet complete: the next walk begins there."""
        i = self._walk
        while i + 3 <= len(buf) and buf[i] in RECORD_TYPES:
            step = RECORD_WRAPPER + int.from_bytes(buf[i + 1 : i + 3], "little")
            if i + step >= len(buf):
                break
            i += step
        return i

    def _garbage(self) -> FramingError:
        buf = self._buf
        cut = 1
        while cut < len(buf) and buf[cut] not in (0x24, HEADER, PACKET_START):
            cut += 1
        self._scan = 0
        self._walk = 2
        return garbage(buf, cut)


def _f32(reader: Reader) -> float:
    return struct.unpack("<f", reader.bytes(4))[0]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def _data_record(reader: Reader, time: datetime) -> Record:
    """The tag/value pairs of one `01` record."""
    rec = Record(fix_time=time)
    attrs = rec.attributes
    lat = lon = None
    cid = lac = mcc = mnc = rssi = 0
    while reader.remaining > 0:
        tag = reader.u8()
        v = reader.sub(4)
        if tag == 1:
            battery, power = v.u16_le(), v.u16_le()
            if battery not in (0, 0xFFFF):
                rec.battery = battery / 1000
            if power not in (0, 0xFFFF):
                rec.power = power / 1000
        elif tag == 2:
            attrs[keys.DRIVER_UNIQUE_ID] = str(v.u32_le())
        elif tag == 3:
            lat = _f32(v)
        elif tag == 4:
            lon = _f32(v)
        elif tag == 5:
            rec.course = v.u8() * 2.0
            rec.altitude = v.u8() * 10.0
            sats = v.u8()
            rec.valid = sats not in (0xFE, 0xFF)
            rec.satellites = (sats & 0x0F) + (sats >> 4)
            rec.speed = float(v.u8())
        elif tag == 6:
            sub = v.u8()
            if sub == 0x01:
                flags = v.u8()
                rec.ignition = bool(flags & 1)
                attrs["callButton"] = "true" if flags & 2 else "false"
                attrs[keys.INPUT] = str(v.u16_le())
            elif sub in (0x06, 0x07, 0x08):
                n = v.u8()
                value = v.u16_le()
                if sub == 0x08:
                    attrs[f"adc{n}"] = _num(value / 1000)
                else:
                    attrs[("pulses" if sub == 0x06 else "freq") + str(n)] = str(value)
        elif tag == 7:
            cid, lac = v.u16_le(), v.u16_le()
        elif tag == 8:
            rssi, mcc, mnc = v.u8(), v.u16_le(), v.u8()
        elif tag == 9:
            attrs[keys.STATUS] = str(v.u32_le())
        elif 30 <= tag <= 37:
            attrs[f"adc{tag - 29}"] = _num(v.u16_le() / 1000)
        elif 40 <= tag <= 49:
            attrs[f"temp{tag - 39}"] = _num(v.i16_le() / 100)
        elif tag == 51:
            attrs["canStatus"] = str(v.u32_le())
        elif tag == 52:
            attrs[keys.HOURS] = str(v.u32_le() * 3600000 // 100)  # milliseconds, as Traccar
        elif tag == 53:
            rec.odometer = float(v.u32_le() * 10)
        elif tag == 54:
            attrs[keys.FUEL_USED] = _num(v.u32_le() / 10)
        elif tag == 55:
            attrs[keys.FUEL_LEVEL] = _num(v.u16_le() / 10)
        elif tag == 56:
            attrs[keys.FUEL] = str(v.u32_le())
        elif tag == 57:
            attrs[keys.RPM] = str(v.u16_le())
        elif tag == 58:
            attrs[keys.ENGINE_TEMP] = str(v.u32_le())
        elif tag == 59:
            attrs[keys.OBD_SPEED] = str(v.u32_le())
        elif 60 <= tag <= 64:
            attrs[f"axleLoad{tag - 59}"] = str(v.u32_le())
        elif tag == 67:
            attrs["adBlueLevel"] = _num(v.u16_le() / 10)
        elif tag == 69:
            attrs[keys.ENGINE_LOAD] = str(v.u8())
            attrs[keys.THROTTLE] = str(v.u8())
            motion = v.u16_le()
            if motion:
                attrs["motionStatus"] = str(motion)
        elif 71 <= tag <= 79:
            level = v.u16_le()
            if level not in (0, 0xFFFF):
                attrs[f"llsLevel{tag - 70}"] = str(level)
                attrs[f"llsTemp{tag - 70}"] = _num((v.u16_le() - 100) / 10)
        elif tag == 100:
            attrs["tachographOdometer"] = str(v.u32_le() * 10)
        elif tag == 102:
            attrs["tachographPower"] = _num(v.u32_le() / 1000)
        elif tag == 151:
            attrs[keys.HDOP] = _num(v.u16_le() / 100)
    if lat is not None and lon is not None:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError(f"coordinates out of range: {lat}, {lon}")
        rec.latitude, rec.longitude = lat, lon
    if mcc or mnc or lac or cid or rssi:
        attrs.update({keys.MCC: str(mcc), keys.MNC: str(mnc), keys.LAC: str(lac), keys.CELL_ID: str(cid)})
        attrs[keys.RSSI] = str(rssi)
    return rec


def _decode_packet(frame: bytes) -> list[Record]:
    reader = Reader(frame, 2)
    records = []
    while reader.remaining > 1:
        kind = reader.u8()
        if kind not in RECORD_TYPES:
            break
        length = reader.u16_le()
        time = unix(reader.u32_le())
        body = reader.sub(length)
        reader.skip(1)  # checksum
        if kind == RECORD_DATA:
            records.append(_data_record(body, time))
    return records


def _text_fields(frame: bytes) -> list[str]:
    text = frame.decode("latin-1").rstrip("\r\n")
    star = text.rfind("*")
    if star > 0:
        text = text[:star]
    return text.split(",")


def _is_coord(token: str, whole: int, hemispheres: str) -> bool:
    return (
        len(token) > whole + 2
        and token[-1] in hemispheres
        and token[whole] == "."
        and token[:whole].isdigit()
        and token[whole + 1 : -1].isdigit()
    )


def _decode_text(frame: bytes) -> Decoded:
    fields = _text_fields(frame)
    if len(fields) < 4 or fields[0] != "$AV":
        raise DecodeError("not an Arnavi text line")
    version, device_id = fields[1], fields[2]
    if not device_id.isdigit():
        raise DecodeError("Arnavi text line without a numeric id")
    positional = len(version) == 2 and version[0] == "V" and version[1].isdigit()
    lat_at = next((i for i, f in enumerate(fields) if _is_coord(f, 4, "NS")), -1)
    if not positional or lat_at < 11 or lat_at + 4 >= len(fields):
        return Decoded("status", device_id, [])
    try:
        index, power, battery = int(fields[3]), int(fields[4]), int(fields[5])
        ignition, inputs = fields[8] == "1", int(fields[9])
        middle = fields[12 : lat_at - 1]  # after the first input pair, before the time
        if len(middle) == 4 and middle[2] in ("0", "1") and middle[0] and middle[1]:
            middle = middle[2:]  # second input pair, fix, sats
        elif len(middle) == 6:
            middle = middle[2:]
        satellites = int(middle[1])
        altitude = float(middle[2]) if len(middle) >= 3 and middle[2] else 0.0
        hhmmss, lon_token = fields[lat_at - 1], fields[lat_at + 1]
        speed, course, date = float(fields[lat_at + 2]), float(fields[lat_at + 3]), fields[lat_at + 4]
    except (ValueError, IndexError) as exc:
        raise DecodeError(f"malformed Arnavi line: {exc}") from exc
    if not _is_coord(lon_token, 5, "EW") or len(hhmmss) != 6 or len(date) != 6 or not (hhmmss + date).isdigit():
        raise DecodeError("malformed Arnavi position block")
    rec = Record(
        fix_time=ddmmyy_hhmmss(date, hhmmss),
        valid=True,
        latitude=ddmm(fields[lat_at][:-1], fields[lat_at][-1]),
        longitude=ddmm(lon_token[:-1], lon_token[-1]),
        altitude=altitude,
        speed=speed,
        course=course,
        satellites=satellites,
        power=power / 100,
        battery=battery / 100,
        ignition=ignition,
    )
    if rec.fix_time is None:
        raise DecodeError("bad Arnavi date/time")
    rec.attributes[keys.INDEX] = str(index)
    rec.attributes[keys.INPUT] = str(inputs)
    return Decoded("position", device_id, [rec])


class ArnaviCodec(Codec):
    name = "arnavi"
    first_bytes = b"\xff[$"
    priority = 10
    replies = True
    transports = frozenset({"tcp"})
    max_frame = 65536

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == HEADER:
            return _header_ok(head)
        if head[0] == PACKET_START:
            return _packet_detect(head)
        if head[0] == 0x24:
            return _text_detect(head)
        return Detection.NO

    def new_framer(self) -> Framer:
        return ArnaviFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if not frame:
            raise DecodeError("empty frame")
        first = frame[0]
        if first == HEADER:
            if _header_ok(frame[:HEADER_LEN]) is not Detection.YES:
                raise DecodeError("bad Arnavi header")
            imei = str(int.from_bytes(frame[2:HEADER_LEN], "little"))
            version = frame[1]
            if version in CLOCK_VERSIONS:
                return FrameInfo("login", imei, None, clock_reply=True)
            reply = b"\x7b\x00\x00\x7d" if version == 0x22 else b"\x7b\x7d"
            return FrameInfo("login", imei, reply)
        if first == PACKET_START:
            if len(frame) < 2:
                raise DecodeError("short packet")
            if frame[1] == RESULT:
                return FrameInfo("other")
            if _packet_end(frame) != len(frame):
                raise DecodeError("Arnavi packet does not end with its 5D")
            return FrameInfo("position", None, bytes((0x7B, 0x00, frame[1], 0x7D)))
        if first == 0x24:
            fields = _text_fields(frame)
            if len(fields) < 3 or fields[0] != "$AV":
                raise DecodeError("not an Arnavi text line")
            kind = "position" if len(fields[1]) == 2 else "status"
            return FrameInfo(kind, fields[2] or None, None)
        raise DecodeError("not an Arnavi frame")

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        if len(frame) < 2 or frame[0] != HEADER or frame[1] not in CLOCK_VERSIONS:
            return None
        seconds = int(now.timestamp()).to_bytes(4, "little")
        return b"\x7b\x04\x00" + bytes((sum8(seconds),)) + seconds + b"\x7d"

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if not frame:
            raise DecodeError("empty frame")
        first = frame[0]
        if first == HEADER:
            if len(frame) < HEADER_LEN or frame[1] not in VERSIONS:
                raise DecodeError("bad Arnavi header")
            return Decoded("login", str(int.from_bytes(frame[2:HEADER_LEN], "little")), [])
        if first == PACKET_START:
            if len(frame) >= 2 and frame[1] == RESULT:
                return Decoded("other", None, [])
            return Decoded("position", None, _decode_packet(frame))
        if first == 0x24:
            return _decode_text(frame)
        raise DecodeError("not an Arnavi frame")


CODEC = ArnaviCodec()
