"""Meitrack MVT100/340/380/600/800, T1/T3, T333/T366/T622, MT90, TC68 (Traccar `meitrack`).

Every frame, text or binary, shares one envelope::

    $$ <flag> <length> , <imei> , <cmd> , <body> * <sum> \\r\\n

* ``flag`` -- one printable byte (``A``...``z``, also ``[``, ``^``, ``_``...), a sequence tag
  the server echoes in its answers;
* ``length`` -- 2-4 decimal digits counting from the first ``,`` through the final
  ``\\r\\n``: the frame's size is (offset of the first comma) + length;
* ``imei`` -- the unit's id (15 digits, 14 on some old units), in every frame;
* ``cmd`` -- three characters: ``AAA`` text position, ``CCC`` binary buffered points,
  ``CCE`` binary tagged points, ``AAC`` configuration/time request, ``D00``/``D03`` photo
  transfer, ``D82`` command result ... (``AFF`` and other text reports share AAA's body);
* ``sum`` -- two hex digits, the sum of every byte from ``$$`` through ``*`` (mod 256).

AAA body (comma separated)::

    event, lat, lon, yymmddhhmmss, A|V, sats, rssi, speed km/h, course, hdop, altitude m,
    odometer m, runtime s, mcc|mnc|lac|cid, input(2 hex)output(2 hex),
    analog, [event data, reserved, protocol, fuel(4 hex), temps(6 hex|...), count, data...]

``analog`` is either ``battery|power|rtc|mcu|gps`` volts (newer units, decimals) or
``adc1|adc2|adc3|battery|power`` raw hex whose scale depends on the model (option
``model``, as Traccar's model override).  Latitude/longitude are signed decimal degrees;
times are UTC.

CCC body: protocol (2), record size (2), cache count (4), then 52-byte records, all
little-endian: event u8, lat i32/1e6, lon i32/1e6, seconds since 2000 u32, valid u8,
sats u8, rssi u8, speed u16 km/h, course u16, hdop u16/10, altitude u16, odometer u32,
runtime u32, mcc/mnc/lac/cid u16 each, status u16, adc1 u16, battery u16/100 V,
power u16, geofence u32.  CCC points are buffered uploads (``archive``) and the unit
waits for ``@@<flag><27 + n/10>,<imei>,CCC,<n>*<sum>\\r\\n`` (n = points received).

CCE body: cache count u32, point count u16, then per point: length u16, index u16 and four
parameter groups (1-, 2-, 4-byte values, then id + length + bytes), each a count byte
then ids (one byte, or two when the first is ``FE``).  CCE is the tagged format units use
for live and buffered data alike (no marker tells them apart), so points are not flagged
``archive``; Traccar sends no answer.

``AAC`` is answered ``@@z27,<imei>,AAC,1*<sum>\\r\\n``; ``D03`` (photo taken) by the request
for the photo's first packet ``@@O<len>,<imei>,D00,camera_picture.jpg,0*<sum>\\r\\n``, and
``D00`` packets by the request for the next eight when one batch is complete (the photo
bytes themselves are not assembled here: no record).  Event codes
map to alarms: 1 SOS, 17 low battery, 18 low external power, 19 overspeed, 20/21 geofence
enter/exit, 22/23 external power restored/cut, 36 tow, 44 jamming, 78 accident, 90/91
cornering, 129 braking, 130 acceleration, 135 fatigue driving.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

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
from .kit import alarms as A
from .kit.framing import drop_leading, garbage, resync_cut, split_with, take_sized
from .kit.readers import EPOCH, Reader, int_or_none, twos_complement, utc

MAGIC = b"$$"
TRAILER = b"\r\n"
MAX_LENGTH_DIGITS = 4
Y2000 = EPOCH + timedelta(seconds=946684800)
CCC_RECORD = 0x34  # 52 bytes
CCC_HEADER = 8  # protocol, record size, cache count
PHOTO_BATCH = 8

EVENT_ALARMS: dict[int, str] = {
    1: A.SOS,
    17: A.LOW_BATTERY,
    18: A.LOW_POWER,
    19: A.OVERSPEED,
    20: A.GEOFENCE_ENTER,
    21: A.GEOFENCE_EXIT,
    22: A.POWER_RESTORED,
    23: A.POWER_CUT,
    36: A.TOW,
    44: A.JAMMING,
    78: A.ACCIDENT,
    90: A.CORNERING,
    91: A.CORNERING,
    129: A.BRAKING,
    130: A.ACCELERATION,
    135: A.FATIGUE_DRIVING,
}
EVENT_TRACK = 35  # "track by time interval": the ordinary report
EVENT_DRIVER = 37  # RFID swipe: event data is the driver's card

# first 2 bytes `$$`, flag, 2-4 digits, comma, 10-20 digits, comma, 3 alphanumerics, comma
_SIGNATURE = re.compile(rb"\$\$[\x41-\x7a]\d{2,4},\d{10,20},[0-9A-Z]{3},")
_HEAD = re.compile(rb"\$(?:\$(?:[\x41-\x7a](?:\d{1,4}(?:,(?:\d{1,20}(?:,[0-9A-Z]{0,3})?)?)?)?)?)?")


def checksum(data: bytes) -> str:
    """Meitrack's sum: every byte up to and including `*`, mod 256, two upper-case hex digits."""
    return f"{sum(data) & 0xFF:02X}"


def build_reply(flag: str, imei: str, content: str, length: int | None = None) -> bytes:
    """`@@<flag><len>,<imei>,<content>*<sum>\\r\\n`; `len` counts from the comma through CRLF."""
    if length is None:
        length = 1 + len(imei) + 1 + len(content) + 5
    head = f"@@{flag}{length:02d},{imei},{content}*".encode("latin-1")
    return head + checksum(head).encode() + TRAILER


def build_frame(flag: str, imei: str, content: bytes) -> bytes:
    """A device frame `$$<flag><len>,<imei>,<content>*<sum>\\r\\n` (content starts with the command)."""
    length = 1 + len(imei) + 1 + len(content) + 5
    head = f"$${flag}{length},{imei},".encode("latin-1") + content + b"*"
    return head + checksum(head).encode() + TRAILER


def _size_of(buf: bytes | bytearray) -> int | None:
    """The frame size announced by the head of `buf` (None: not enough bytes yet); DecodeError if malformed."""
    comma = buf.find(b",", 3, 3 + MAX_LENGTH_DIGITS + 1)
    if comma < 0:
        if len(buf) >= 3 + MAX_LENGTH_DIGITS + 1 or (len(buf) > 3 and not buf[3:].isdigit()):
            raise DecodeError("no length field")
        return None
    digits = bytes(buf[3:comma])
    if not digits.isdigit():
        raise DecodeError("no length field")
    total = comma + int(digits)
    if total < comma + 1 + 15:
        raise DecodeError("length field too small")
    return total


class _MeitrackFramer(Framer):
    """`$$` frames whose size is announced by their decimal length field."""

    def next_frame(self) -> bytes | None:
        buf = self._buf
        drop_leading(buf, TRAILER)
        if not buf:
            return None
        if not buf.startswith(MAGIC):
            if len(buf) < 2 and MAGIC.startswith(buf):
                return None
            raise garbage(buf, resync_cut(buf, MAGIC))
        try:
            total = _size_of(buf)
        except DecodeError:
            raise garbage(buf, resync_cut(buf, MAGIC)) from None
        if total is None:
            return None
        return take_sized(buf, total, self.max_frame)


class _Envelope:
    """The common head of a frame: flag, imei, command, where the body starts/ends."""

    __slots__ = ("body_end", "body_start", "command", "flag", "imei")

    def __init__(self, frame: bytes) -> None:
        if not frame.startswith(MAGIC) or len(frame) < 4:
            raise DecodeError("not a Meitrack frame")
        first = frame.find(b",")
        second = frame.find(b",", first + 1) if first > 0 else -1
        if first < 4 or second < 0 or not frame[3:first].isdigit():
            raise DecodeError("not a Meitrack frame ($$<flag><len>,<imei>,<cmd>)")
        imei = frame[first + 1 : second]
        if not imei.isdigit() or not 1 <= len(imei) <= 20:
            raise DecodeError("bad IMEI field")
        self.flag = chr(frame[2])
        self.imei = imei.decode()
        self.command = frame[second + 1 : second + 4].decode("latin-1")
        if len(self.command) < 3:
            raise DecodeError("no command")
        self.body_start = second + 5
        end = len(frame)
        if frame.endswith(TRAILER):
            end -= 2
        # the `*XX` trailer, when present
        if end >= 3 and frame[end - 3 : end - 2] == b"*":
            end -= 3
        self.body_end = max(end, self.body_start)


def _check(frame: bytes) -> None:
    """Verify `*XX` when the frame carries it (Traccar's frame decoder does not; captures may lack it)."""
    end = len(frame) - (2 if frame.endswith(TRAILER) else 0)
    if end >= 3 and frame[end - 3] == ord("*"):
        given = frame[end - 2 : end]
        try:
            value = int(given, 16)
        except ValueError:
            return
        if value != sum(frame[: end - 2]) & 0xFF:
            raise ChecksumError(f"checksum {given.decode('latin-1')} != {checksum(frame[: end - 2])}")


def _ccc_count(frame: bytes, env: _Envelope) -> int:
    body = len(frame) - env.body_start - CCC_HEADER
    return max(body, 0) // CCC_RECORD


def _photo_request(imei: str, name: str, index: int) -> bytes:
    return build_reply("O", imei, f"D00,{name},{index}")


def _reply(frame: bytes, env: _Envelope) -> bytes | None:
    cmd = env.command
    if cmd == "CCC":
        n = _ccc_count(frame, env)
        return build_reply(env.flag, env.imei, f"CCC,{n}", 27 + n // 10)
    if cmd == "AAC":
        return build_reply("z", env.imei, "AAC,1", 27)
    if cmd == "D03":
        return _photo_request(env.imei, "camera_picture.jpg", 0)
    if cmd == "D00":
        parts = frame[env.body_start : env.body_end].split(b",", 3)
        if len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
            total, current = int(parts[1]), int(parts[2])
            if current != total - 1 and (current + 1) % PHOTO_BATCH == 0:
                return _photo_request(env.imei, parts[0].decode("latin-1"), current + 1)
    return None


def _kind(env: _Envelope) -> str:
    cmd = env.command
    if cmd == "CCC":
        return "batch"
    if cmd in ("AAA", "CCE") or (cmd[0] == "A" and cmd not in ("AAC",)):
        return "position"
    return "other"


# --------------------------------------------------------------------- text reports
# Battery/power scales of the raw hex analog field, per model (Traccar's model override).
_HEX_SCALES: dict[str, tuple[float, float | None]] = {
    "MVT340": (3.0 * 2.0 / 1024.0, 3.0 * 16.0 / 1024.0),
    "MVT380": (3.0 * 2.0 / 1024.0, 3.0 * 16.0 / 1024.0),
    "MT90": (3.3 * 2.0 / 4096.0, None),
    "MT90G": (3.0 * 2.0 / 4096.0, None),
    **dict.fromkeys(
        ("T1", "T3", "MVT100", "MVT600", "MVT800", "TC68", "TC68S"), (3.3 * 2.0 / 4096.0, 3.3 * 16.0 / 4096.0)
    ),
}
_DEFAULT_SCALE = (0.01, 0.01)


def _temperature(rec: Record, item: str, protocol: int) -> None:
    if len(item) != 6 or int_or_none(item, 16) is None:
        return
    index = int(item[:2], 16)
    if protocol >= 3:
        raw = int(item[2:], 16)
        value = twos_complement(raw, 16) / 100.0
    else:
        whole = int(item[2:4], 16)
        whole = whole - 0x100 if whole & 0x80 else whole
        value = whole + (-0.01 if whole < 0 else 0.01) * int(item[4:], 16)
    rec.attributes[f"temp{index}"] = str(value)


def _data_fields(rec: Record, values: list[str]) -> None:
    if len(values) > 1 and values[1]:
        rec.attributes["tempData"] = values[1]
    if len(values) > 5 and values[5]:
        data = values[5].split("|")
        if len(data[0]) < 2 or len(data) < 2:
            return
        rec.attributes["taximeterOn"] = str(data[0][1] == "0").lower()
        rec.attributes["taximeterStart"] = data[1]
        if len(data) > 6:
            rec.attributes["taximeterEnd"] = data[2]
            rec.attributes["taximeterDistance"] = data[3]
            rec.attributes["taximeterFare"] = data[4]
            rec.attributes["taximeterTrip"] = data[5]
            rec.attributes["taximeterWait"] = data[6]


def _analog(rec: Record, field: str, model: str) -> None:
    parts = field.split("|")
    if "." in field:
        if len(parts) >= 2:
            rec.battery = float(parts[0])
            rec.power = float(parts[1])
        return
    if len(parts) < 5:
        raise DecodeError(f"bad analog field {field!r}")
    for i in range(3):
        value = int_or_none(parts[i], 16)
        if value is not None:
            rec.attributes[f"adc{i + 1}"] = str(value)
    battery_scale, power_scale = _HEX_SCALES.get(model.upper(), _DEFAULT_SCALE)
    battery, power = int_or_none(parts[3], 16), int_or_none(parts[4], 16)
    if battery is None:
        raise DecodeError(f"bad battery in {field!r}")
    rec.battery = battery * battery_scale
    power = power or 0
    rec.power = float(power) if power_scale is None else power * power_scale


def _text_report(text: str, model: str) -> Record:
    f = text.split(",")
    # an extra numeric field before the event (AFF reports): the latitude is the first with a dot
    if len(f) > 2 and "." not in f[1] and "." in f[2]:
        f = f[1:]
    if len(f) < 16:
        raise DecodeError(f"text report of {len(f)} fields")
    try:
        event = int(f[0])
        lat, lon = float(f[1]), float(f[2])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError("coordinates out of range")
        stamp = f[3]
        if len(stamp) != 12 or not stamp.isdigit():
            raise DecodeError(f"bad time {stamp!r}")
        fix_time = utc(*(int(stamp[i : i + 2]) for i in range(0, 12, 2)))
        if fix_time is None or f[4] not in ("A", "V"):
            raise DecodeError("bad time or validity")
        rec = Record(fix_time=fix_time, valid=f[4] == "A", latitude=lat, longitude=lon)
        rec.attributes["event"] = str(event)
        if event in EVENT_ALARMS:
            rec.alarms.append(EVENT_ALARMS[event])
        rec.satellites = int(f[5])
        rssi = int(f[6])
        rec.attributes["rssi"] = str(rssi)
        rec.speed = float(f[7])
        rec.course = float(f[8])
        rec.attributes["hdop"] = str(float(f[9]))
        rec.altitude = float(f[10])
        rec.odometer = float(int(f[11]))
        rec.attributes["runtime"] = f[12]
        cell = f[13].split("|")
        if len(cell) == 4:
            mcc, mnc = int(cell[0] or 0), int(cell[1] or 0)
            if mcc and mnc:
                rec.attributes.update(
                    mcc=str(mcc),
                    mnc=str(mnc),
                    lac=str(int_or_none(cell[2], 16) or 0),
                    cid=str(int_or_none(cell[3], 16) or 0),
                )
        io = f[14]
        if len(io) != 4 or int_or_none(io, 16) is None:
            raise DecodeError(f"bad io field {io!r}")
        rec.attributes["input"] = str(int(io[:2], 16))
        rec.attributes["output"] = str(int(io[2:], 16))
        _analog(rec, f[15], model)
    except ValueError as exc:
        raise DecodeError(f"bad text report: {exc}") from exc
    _tail(rec, event, f[16:])
    return rec


def _tail(rec: Record, event: int, tail: list[str]) -> None:
    if not tail:
        return
    if tail[0]:
        rec.attributes["driverUniqueId" if event == EVENT_DRIVER else "eventData"] = tail[0]
    protocol = int(tail[2]) if len(tail) > 2 and tail[2].isdigit() else 0
    if len(tail) > 2 and tail[2].isdigit():
        rec.attributes["protocol"] = tail[2]
    if len(tail) > 3 and len(tail[3]) == 4 and int_or_none(tail[3], 16) is not None:
        fuel = tail[3]
        rec.attributes["fuel"] = str(int(fuel[:2], 16) + int(fuel[2:], 16) / 100.0)
    if len(tail) > 4 and tail[4]:
        for item in tail[4].split("|"):
            _temperature(rec, item, protocol)
    if len(tail) > 6 and tail[5].isdigit():
        _data_fields(rec, tail[6:])


# --------------------------------------------------------------------- binary reports


def _ccc(r: Reader) -> list[Record]:
    r.skip(CCC_HEADER)
    records = []
    while r.remaining >= CCC_RECORD:
        rec = Record(archive=True)
        event = r.u8()
        rec.attributes["event"] = str(event)
        if event in EVENT_ALARMS:
            rec.alarms.append(EVENT_ALARMS[event])
        rec.latitude = r.i32_le() / 1e6
        rec.longitude = r.i32_le() / 1e6
        rec.fix_time = Y2000 + timedelta(seconds=r.u32_le())
        rec.valid = r.u8() == 1
        rec.satellites = r.u8()
        rssi = r.u8()
        rec.speed = float(r.u16_le())
        rec.course = float(r.u16_le())
        rec.attributes["hdop"] = str(r.u16_le() / 10.0)
        rec.altitude = float(r.u16_le())
        rec.odometer = float(r.u32_le())
        rec.attributes["runtime"] = str(r.u32_le())
        mcc, mnc, lac, cid = r.u16_le(), r.u16_le(), r.u16_le(), r.u16_le()
        rec.attributes.update(rssi=str(rssi), mcc=str(mcc), mnc=str(mnc), lac=str(lac), cid=str(cid))
        rec.attributes["status"] = str(r.u16_le())
        rec.attributes["adc1"] = str(r.u16_le())
        rec.battery = r.u16_le() / 100.0
        rec.power = float(r.u16_le())
        r.skip(4)  # geofence
        if not (-90 <= rec.latitude <= 90 and -180 <= rec.longitude <= 180):
            raise DecodeError("coordinates out of range")
        records.append(rec)
    return records


def _param_id(r: Reader) -> int:
    return r.u16() if r.peek() == 0xFE else r.u8()


def _cce_point(r: Reader) -> Record:
    rec = Record()
    at = rec.attributes
    for _ in range(r.u8()):
        pid = _param_id(r)
        v = r.u8()
        if pid == 0x01:
            at["event"] = str(v)
        elif pid == 0x05:
            rec.valid = v > 0
        elif pid == 0x06:
            rec.satellites = v
        elif pid == 0x07:
            at["rssi"] = str(v)
        elif pid == 0x14:
            at["output"] = str(v)
        elif pid == 0x15:
            at["input"] = str(v)
        elif pid == 0x47:
            if v > 0:
                at["lock"] = str(v == 2).lower()
        elif pid == 0x97:
            at["throttle"] = str(v)
        elif pid == 0x9D:
            at["fuel"] = str(v)
        elif pid == 0xFE69:
            rec.battery_level = float(v)
    for _ in range(r.u8()):
        pid = _param_id(r)
        raw = r.u16_le()
        signed = twos_complement(raw, 16)
        if pid == 0x08:
            rec.speed = float(raw)
        elif pid == 0x09:
            rec.course = float(raw)
        elif pid == 0x0A:
            at["hdop"] = str(raw)
        elif pid == 0x0B:
            rec.altitude = float(signed)
        elif pid == 0x16:
            at["adc1"] = str(raw / 100.0)
        elif pid == 0x17:
            at["adc2"] = str(raw / 100.0)
        elif pid == 0x19:
            rec.battery = raw / 100.0
        elif pid == 0x1A:
            rec.power = raw / 100.0
        elif pid == 0x29:
            at["fuel"] = str(raw / 100.0)
        elif pid == 0x40:
            at["event"] = str(raw)
        elif pid in (0x91, 0x92):
            at["obdSpeed"] = str(raw)
        elif pid == 0x98:
            at["fuelUsed"] = str(raw)
        elif pid == 0x99:
            at["rpm"] = str(raw)
        elif pid == 0x9C:
            at["coolantTemp"] = str(raw)
        elif pid == 0x9F:
            at["temp1"] = str(raw)
        elif pid == 0xC9:
            at["fuelConsumption"] = str(raw)
    for _ in range(r.u8()):
        pid = _param_id(r)
        raw = r.u32_le()
        if pid == 0x02:
            rec.latitude = twos_complement(raw, 32) / 1e6
        elif pid == 0x03:
            rec.longitude = twos_complement(raw, 32) / 1e6
        elif pid == 0x04:
            rec.fix_time = Y2000 + timedelta(seconds=raw)
        elif pid == 0x0C:
            rec.odometer = float(raw)
        elif pid == 0x0D:
            at["runtime"] = str(raw)
        elif pid == 0x25:
            at["driverUniqueId"] = str(raw)
        elif pid == 0x9B:
            at["obdOdometer"] = str(raw)
        elif pid == 0xA0:
            at["fuelUsed"] = str(raw / 1000.0)
        elif pid == 0xA2:
            at["fuelConsumption"] = str(raw / 100.0)
        elif pid == 0xFEF4:
            at["hours"] = str(raw * 60000)
    for _ in range(r.u8()):
        pid = _param_id(r)
        length = r.u8()
        _cce_variable(rec, pid, r.sub(length), length)
    event = at.get("event")
    if event is not None and int(event) in EVENT_ALARMS:
        rec.alarms.append(EVENT_ALARMS[int(event)])
    if (
        rec.latitude is not None
        and rec.longitude is not None
        and not (-90 <= rec.latitude <= 90 and -180 <= rec.longitude <= 180)
    ):
        raise DecodeError("coordinates out of range")
    if (rec.latitude is None) != (rec.longitude is None):
        rec.latitude = rec.longitude = None
    return rec


def _cce_variable(rec: Record, pid: int, v: Reader, length: int) -> None:
    at = rec.attributes
    if 0x1D <= pid <= 0x25 and length >= 8:
        mac = v.bytes(6).hex()
        at.setdefault("wifi", "")
        entry = ":".join(mac[i : i + 2] for i in range(0, 12, 2)) + f"/{v.i16_le()}"
        at["wifi"] = f"{at['wifi']},{entry}" if at["wifi"] else entry
    elif pid in (0x0E, 0x0F, 0x10, 0x12, 0x13) and length >= 12:
        mcc, mnc, lac, cid, rssi = v.u16_le(), v.u16_le(), v.u16_le(), v.u32_le(), v.i16_le()
        if pid == 0x0E or "mcc" not in at:
            at.update(mcc=str(mcc), mnc=str(mnc), lac=str(lac), cid=str(cid), rssi=str(rssi))
    elif 0x2A <= pid <= 0x31 and length >= 3:
        v.skip(1)  # label
        at[f"temp{pid - 0x2A}"] = str(v.i16_le() / 100.0)
    elif pid == 0xFE31 and length >= 2:
        alarm_protocol = v.u8()
        at["alarmType"] = str(v.u8())
        if alarm_protocol == 0x02 and length > 3:
            name = v.rest().decode("latin-1")
            folder = name[:8]
            if len(folder) == 8 and folder.isdigit():
                folder = f"{folder[:4]}-{folder[4:6]}-{folder[6:]}"
            at["image"] = f"{folder}/{name}"
    elif pid == 0xFE73:
        v.skip(1)  # version
        at["tagName"] = v.bytes(v.u8()).decode("latin-1")
        v.skip(6)  # mac
        at["tagBattery"] = str(v.u8())
        at["tagTemp"] = str(v.i16_le() / 256.0)
        at["tagHumidity"] = str(v.i16_le() / 256.0)
    elif pid == 0xFEA8 and length >= 6:
        for k in range(1, 4):
            present, level = v.u8(), v.u8()
            if present > 0:
                if k == 1:
                    rec.battery_level = float(level)
                else:
                    at[f"battery{k}Level"] = str(level)


def _cce(r: Reader) -> list[Record]:
    r.skip(4)  # points still cached in the unit
    count = r.u16_le()
    records = []
    for _ in range(count):
        length = r.u16_le()
        point = r.sub(length)
        point.skip(2)  # index
        records.append(_cce_point(point))
    return records


class MeitrackCodec(Codec):
    name = "meitrack"
    first_bytes = b"$"
    priority = 10
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 8192  # CCC/CCE batches of dozens of points (a 4-digit length allows 10006)

    def detect(self, head: bytes, transport: str) -> Detection:
        if _SIGNATURE.match(head):
            return Detection.YES
        m = _HEAD.match(head)
        if m and m.end() == len(head):
            return Detection.MORE
        return Detection.NO

    def new_framer(self) -> Framer:
        return _MeitrackFramer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        try:
            return split_with(self.new_framer(), datagram)
        except FramingError:
            if datagram.startswith(MAGIC) and _SIGNATURE.match(datagram):
                return [datagram]  # length field off by a byte or two: the decoder copes
            raise

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        env = _Envelope(frame)
        _check(frame)
        return FrameInfo(_kind(env), env.imei, _reply(frame, env))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        env = _Envelope(frame)
        _check(frame)
        cmd = env.command
        kind = _kind(env)
        if cmd == "CCC":
            return Decoded(kind, env.imei, _ccc(Reader(frame, env.body_start)))
        if cmd == "CCE":
            return Decoded(kind, env.imei, _cce(Reader(frame, env.body_start)))
        body = frame[env.body_start : env.body_end].decode("latin-1")
        if cmd == "AAC" or (cmd[0] == "D" and cmd != "D82"):
            return Decoded(kind, env.imei, [])
        if cmd == "D82":
            return Decoded(kind, env.imei, [Record(attributes={"result": body})])
        if cmd[0] != "A":
            return Decoded("other", env.imei, [Record(attributes={"command": cmd, "result": body})])
        return Decoded(kind, env.imei, [_text_report(body, ctx.options.get("model", ""))])


def ccc_reply(flag: str, imei: str, count: int) -> bytes:
    return build_reply(flag, imei, f"CCC,{count}", 27 + count // 10)


def y2000_seconds(moment: datetime) -> int:
    return int((moment - Y2000).total_seconds())


CODEC = MeitrackCodec()
