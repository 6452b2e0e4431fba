"""Aplicom A-series / TRIX units (Finland, Siemens/Cinterion TC65 based; Traccar `aplicom`), TCP.

Binary, big-endian.  A connection may open with an "alive" run of ASCII digits (the IMEI),
which the framer drops.  Every message::

    protocol(1: 'D' 'E' 'F' 'H')  flags(1)  id(3, or 7 when flags bit 7)  length(2)
    [selector(3) when flags bit 6]  body(length)

The 7-byte id is the IMEI itself; a 3-byte unit id is mapped to an IMEI by trying the
TC65i v1.1, TC65 v2.8 and TC65 v2.0 IMEI bases and keeping the first Luhn-valid result.
Without a selector the defaults are ``0x0002FC`` (D, H), ``0x007FFC`` (E), ``0x0007FD`` (F).

Body: event(1) eventInfo(1), then by protocol and selector bits:

* ``D`` (positions): 0x0008 GPS validity(1, bit 6); 0x0004 device time (u32 unix); 0x0008 fix
  time (u32), latitude, longitude (i32, 1e-6 deg), satellites; 0x0010 speed (km/h), maximum
  speed, course (x2); 0x0040 inputs; 0x0020 4 x ADC; 0x8000 power, battery (mV); 0x10000 /
  0x20000 pulse rates; 0x0080 / 0x0100 trips; 0x0040 outputs; 0x0200 driver id (6 B); 0x0400
  keypad; 0x0800 altitude; 0x2000 snapshot counter; 0x4000 state flags (8 B); 0x80000 cell
  info (11 B); 0x1000 event data (by event number; event 119 is a CAN block, decoded into
  reefer attributes when option ``can`` is ``true``; ``EB`` blocks on event 188).
* ``E`` (tachograph): tachograph event, time, work/driver states, speed, odometers, rpm,
  VIN, driver cards.
* ``F`` (FMS / J1939): rpm, engine temperature, hours, fuel, odometer, speeds, ...
* ``H`` (histograms/counters): ``h<n>...`` attributes.

Only ``D`` with the GPS bit carries a position; the other messages are status records at the
device time.  The 48-bit driver id is kept as a number (Traccar concatenates its two parts as
text).  A buffer holding several messages decodes all of them.  A ``C`` message (CAN info) is
not decoded (no records), as in Traccar.  The server never answers.
"""

from __future__ import annotations

from datetime import datetime

from .base import (
    Codec,
    Context,
    Decoded,
    DecodeError,
    Detection,
    FrameInfo,
    Framer,
    ProtocolError,
    Record,
)
from .kit import keys
from .kit.checksums import luhn_valid
from .kit.framing import garbage, take_sized
from .kit.readers import Reader, java_trim, unix

PROTOCOLS = b"CDEFH"
DEFAULT_SELECTORS = {ord("D"): 0x0002FC, ord("E"): 0x007FFC, ord("F"): 0x0007FD, ord("H"): 0x0002FC}
MIN_HEADER = 11
EVENT_CAN = 119
IMEI_BASE_TC65_V20 = 0x1437207000000
IMEI_BASE_TC65_V28 = 358244010000000
IMEI_BASE_TC65I_V11 = 0x14143B4000000


def _header_size(head: bytes | bytearray) -> tuple[int, int] | None:
    """(header size, whole message size), None when fewer than 11 bytes are in."""
    if len(head) < MIN_HEADER:
        return None
    flags = head[1]
    offset = 5 + (4 if flags & 0x80 else 0)
    length = int.from_bytes(head[offset : offset + 2], "big")
    header = offset + 2 + (3 if flags & 0x40 else 0)
    return header, header + length


def _plausible_flags(protocol: int, flags: int) -> bool:
    # D/E/F/H: a flags byte, never a printable character (HTTP 'DELETE', 'HEAD', Eelink 'EL')
    return protocol != ord("C") and not 0x20 <= flags < 0x80


def _imei_from_unit(unit: int) -> str:
    if unit == 0:
        return "0"
    for candidate in (
        IMEI_BASE_TC65I_V11 + unit,
        IMEI_BASE_TC65_V28 + ((unit + 0xA8180) & 0xFFFFFF),
        IMEI_BASE_TC65_V20 + unit,
    ):
        if luhn_valid(str(candidate)):
            return str(candidate)
    return str(unit)


def _imei(frame: bytes) -> str:
    if frame[1] & 0x80:
        return str(int.from_bytes(frame[2:9], "big"))
    return _imei_from_unit(int.from_bytes(frame[2:5], "big"))


class AplicomFramer(Framer):
    """Drops the alive digits, then header-length frames (the length field sits after the id)."""

    def next_frame(self) -> bytes | None:
        buf = self._buf
        i = 0
        while i < len(buf) and 0x30 <= buf[i] <= 0x39:
            i += 1
        if i:
            del buf[:i]
        if not buf:
            return None
        if buf[0] not in PROTOCOLS:
            cut = 1
            while cut < len(buf) and buf[cut] not in PROTOCOLS:
                cut += 1
            raise garbage(buf, cut)
        sizes = _header_size(buf)
        if sizes is None:
            return None
        total = sizes[1]
        return take_sized(buf, total, self.max_frame)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def _ascii(raw: bytes) -> str:
    """A fixed-width text field without the blanks and control bytes padding either end."""
    return java_trim(raw.decode("latin-1"))


def _event_data(rec: Record, r: Reader, event: int) -> None:
    if event in (2, 40):
        r.skip(1)
    elif event == 9:
        r.skip(3)
    elif event in (31, 32):
        r.skip(2)
    elif event == 38:
        r.skip(36)
    elif event == 113:
        r.skip(5)
    elif event == EVENT_CAN:
        rec.attributes["eventData"] = r.data[r.pos : min(r.end, r.pos + 1024)].hex()
    elif event in (121, 142):
        r.skip(8)
    elif event == 130:
        r.skip(4)
    elif event == 188:
        _eb(rec, r)


def _eb(rec: Record, r: Reader) -> None:
    a = rec.attributes
    if r.remaining < 2 or r.bytes(2) != b"EB":
        return
    a[keys.VERSION_FW] = str(r.u8())
    a[keys.EVENT] = str(r.u16())
    a["dataValidity"] = str(r.u8())
    a["towed"] = str(r.u8())
    r.skip(2)
    while r.remaining > 0:
        r.skip(1)  # towed position
        kind, length = r.u8(), r.u8()
        v = r.sub(length)
        if kind == 0x01:
            a["brakeFlags"] = v.rest().hex()
        elif kind == 0x02:
            a["wheelSpeed"] = _num(v.u16() / 256)
            a["wheelSpeedDifference"] = _num(v.u16() / 256 - 125)
            a["lateralAcceleration"] = _num(v.u8() / 10 - 12.5)
            a["vehicleSpeed"] = _num(v.u16() / 256)
        elif kind == 0x03:
            a[keys.AXLE_WEIGHT] = str(v.u16() * 2)
        elif kind == 0x04:
            a["tirePressure"] = str(v.u8() * 10)
            a["pneumaticPressure"] = str(v.u8() * 5)
        elif kind == 0x05:
            a["brakeLining"] = _num(v.u8() * 0.4)
            a["brakeTemperature"] = str(v.u8() * 10)
        elif kind == 0x06:
            rec.odometer = float(v.u32() * 5)
            a[keys.ODOMETER_TRIP] = str(v.u32() * 5)
            a[keys.ODOMETER_SERVICE] = str((v.u32() - 2105540607) * 5)
        elif kind == 0x0A:
            a["absStatusCounter"] = str(v.u16())
            a["atvbStatusCounter"] = str(v.u16())
            a["vdcActiveCounter"] = str(v.u16())
        elif kind == 0x0B:
            a["brakeMinMaxData"] = v.rest().hex()
        elif kind == 0x0C:
            a["missingPgn"] = v.rest().hex()
        elif kind == 0x0D:
            v.skip(1)
            a["towedDetectionStatus"] = str(v.u32())


def _can(rec: Record, r: Reader) -> None:
    """The reefer CAN block of an event-119 message."""
    a = rec.attributes
    r.skip(3)
    a[keys.VERSION_FW] = str(r.u8())
    count = r.u8()
    r.skip(1 + 2 + 4 + 8)
    values = [r.sub(8) for _ in range(count)]
    for v in values:
        ident = r.u32()
        if ident == 0x20D:
            a[keys.RPM] = str(v.i16_le())
            a["dieselTemperature"] = _num(v.i16_le() / 10)
            a["batteryVoltage"] = _num(v.i16_le() / 100)
            a["supplyAirTempDep1"] = _num(v.i16_le() / 10)
        elif ident == 0x30D:
            a["activeAlarm"] = v.rest().hex()
        elif ident == 0x40C:
            a["airTempDep1"] = _num(v.i16_le() / 10)
            a["airTempDep2"] = _num(v.i16_le() / 10)
        elif ident == 0x40D:
            a["coldUnitState"] = v.rest().hex()
        elif ident == 0x50C:
            a["defrostTempDep1"] = _num(v.i16_le() / 10)
            a["defrostTempDep2"] = _num(v.i16_le() / 10)
        elif ident == 0x50D:
            a["condenserPressure"] = _num(v.i16_le() / 10)
            a["suctionPressure"] = _num(v.i16_le() / 10)
        elif ident == 0x58C:
            v.skip(3)
            sub = v.u8()
            value = v.i32_le()
            name, scaled = {
                0x01: ("setpointZone1", _num(value / 10)),
                0x02: ("setpointZone2", _num(value / 10)),
                0x05: ("unitType", str(value)),
                0x13: ("dieselHours", str(int(value / 3600))),
                0x14: ("electricHours", str(int(value / 3600))),
                0x17: ("serviceIndicator", str(value)),
                0x18: ("softwareVersion", _num(value / 100)),
            }.get(sub, ("", ""))
            if name:
                a[name] = scaled


def _decode_d(rec: Record, r: Reader, selector: int, event: int, can: bool) -> None:
    a = rec.attributes
    gps = bool(selector & 0x0008)
    if gps:
        rec.valid = bool(r.u8() & 0x40)
    device_time: datetime | None = None
    if selector & 0x0004:
        device_time = unix(r.u32())
        rec.fix_time = device_time
    if gps:
        rec.fix_time = unix(r.u32())
        lat, lon = r.i32() / 1e6, r.i32() / 1e6
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError(f"coordinates out of range: {lat}, {lon}")
        rec.latitude, rec.longitude = lat, lon
        a[keys.SATELLITES_VISIBLE] = str(r.u8())
    if device_time is not None and gps:
        a[keys.DEVICE_TIME] = device_time.replace(tzinfo=None).isoformat()
    if selector & 0x0010:
        rec.speed = float(r.u8())
        a["maximumSpeed"] = str(r.u8())
        rec.course = r.u8() * 2.0
    if selector & 0x0040:
        a[keys.INPUT] = str(r.u8())
    if selector & 0x0020:
        for n in range(1, 5):
            a[f"adc{n}"] = str(r.u16())
    if selector & 0x8000:
        rec.power = r.u16() / 1000
        rec.battery = r.u16() / 1000
    if selector & 0x10000:
        r.skip(6)
    if selector & 0x20000:
        r.skip(6)
    if selector & 0x0080:
        a["trip1"] = str(r.u32())
    if selector & 0x0100:
        a["trip2"] = str(r.u32())
    if selector & 0x0040:
        a[keys.OUTPUT] = str(r.u8())
    if selector & 0x0200:
        a[keys.DRIVER_UNIQUE_ID] = str(r.u16() << 32 | r.u32())
    if selector & 0x0400:
        r.skip(1)
    if selector & 0x0800:
        rec.altitude = float(r.i16())
    if selector & 0x2000:
        r.skip(2)
    if selector & 0x4000:
        r.skip(8)
    if selector & 0x80000:
        r.skip(11)
    if selector & 0x1000:
        _event_data(rec, r, event)
        if can and event == EVENT_CAN and r.remaining > 0:
            _can(rec, r)


def _decode_e(rec: Record, r: Reader, selector: int) -> None:
    a = rec.attributes
    if selector & 0x0008:
        a["tachographEvent"] = str(r.u16())
    if selector & 0x0004:
        rec.fix_time = unix(r.u32())
    if selector & 0x0010:
        t = r.bytes(8)
        signed = [b - 256 if b > 127 else b for b in t[6:]]
        a["tachographTime"] = f"{t[0]}s {t[1]}m {t[2]}h {t[3]}M {t[4]}D {t[5]}Y {signed[0]}m {signed[1]}h"
    a["workState"] = str(r.u8())
    a["driver1State"] = str(r.u8())
    a["driver2State"] = str(r.u8())
    if selector & 0x0020:
        a["tachographStatus"] = str(r.u8())
    if selector & 0x0040:
        a[keys.OBD_SPEED] = _num(r.u16() / 256)
    if selector & 0x0080:
        a[keys.OBD_ODOMETER] = str(r.u32() * 5)
    if selector & 0x0100:
        a[keys.ODOMETER_TRIP] = str(r.u32() * 5)
    if selector & 0x8000:
        a["kFactor"] = f"{r.u16() / 1000} pulses/m"
    if selector & 0x0200:
        a[keys.RPM] = _num(r.u16() * 0.125)
    if selector & 0x0400:
        a["extraInfo"] = str(r.u16())
    if selector & 0x0800:
        a[keys.VIN] = _ascii(r.bytes(18))
    for bit, name in ((0x2000, "card1"), (0x4000, "card2")):
        if selector & bit:
            r.skip(2)  # card type, country code
            card = _ascii(r.bytes(20))
            if card:
                a[name] = card
    if selector & 0x10000:
        for i in range(1, r.u8() + 1):
            a[f"driver{i}"] = _ascii(r.bytes(22))
            a[f"driverTime{i}"] = str(r.u32())


def _decode_f(rec: Record, r: Reader, selector: int) -> None:
    a = rec.attributes
    if selector & 0x0004:
        rec.fix_time = unix(r.u32())
    r.skip(1)  # data validity
    if selector & 0x0008:
        a[keys.RPM], a["rpmMax"], a["rpmMin"] = str(r.u16()), str(r.u16()), str(r.u16())
    if selector & 0x0010:
        a[keys.ENGINE_TEMP], a["engineTempMax"], a["engineTempMin"] = str(r.i16()), str(r.i16()), str(r.i16())
    if selector & 0x0020:
        a[keys.HOURS] = str(r.u32() * 3600000)
        a["serviceDistance"] = str(r.i32())
        a["driverActivity"] = str(r.u8())
        a[keys.THROTTLE] = str(r.u8())
        a[keys.FUEL] = str(r.u8())
    if selector & 0x0040:
        a[keys.FUEL_USED] = str(r.u32())
    if selector & 0x0080:
        rec.odometer = float(r.u32())
    if selector & 0x0100:
        a[keys.OBD_SPEED], a["speedMax"], a["speedMin"] = str(r.u8()), str(r.u8()), str(r.u8())
        a["hardBraking"] = str(r.u8())
    if selector & 0x0200:
        for name in ("tachographSpeed", "driver1State", "driver2State", "tachographStatus", "overspeedCount"):
            a[name] = str(r.u8())
    if selector & 0x0800:
        a[keys.HOURS] = _num(r.u32() / 20)
        a[keys.RPM] = _num(r.u16() * 0.125)
        a[keys.OBD_SPEED] = _num(r.u16() / 256)
        a[keys.FUEL_USED] = _num(r.u32() * 0.5)
        a[keys.FUEL] = _num(r.u8() * 0.4)
    if selector & 0x1000:
        a["ambientTemperature"] = _num(r.u16() * 0.03125 - 273)
        r.skip(2)
        a["fuelEconomy"] = _num(r.u16() / 512)
        a[keys.FUEL_CONSUMPTION] = _num(r.u32() / 1000)
        r.skip(1)
    if selector & 0x2000:
        r.skip(r.u8())
    if selector & 0x4000:
        a["torque"] = str(r.u8())
        a["brakePressure1"] = str(r.u8() * 8)
        a["brakePressure2"] = str(r.u8() * 8)
        a["grossWeight"] = str(r.u16() * 10)
        a["exhaustFluid"] = _num(r.u8() * 0.4)
        r.skip(1)
        a["retarderTorque"] = str(r.u8())
        a["retarderSelection"] = _num(r.u8() * 0.4)
        r.skip(32)
    if selector & 0x8000:
        a["parkingBrakeStatus"] = str(r.u8())
        a["doorStatus"] = str(r.u8())
        r.skip(8)
        a["alternatorStatus"] = str(r.u8())
        a["selectedGear"] = str(r.u8())
        a["currentGear"] = str(r.u8())
        r.skip(8)
    if selector & 0x0400:
        for i in range(r.u8()):
            a[f"axle{i}"] = str(r.u16())


def _decode_h(rec: Record, r: Reader, selector: int) -> None:
    a = rec.attributes
    if selector & 0x0004:
        rec.fix_time = unix(r.u32())
    if selector & 0x0040:
        r.skip(4)
    if selector & 0x2000:
        r.skip(2)
    index = 1
    while r.remaining > 0:
        p = f"h{index}"
        a[p + "Index"] = str(r.u8())
        r.skip(2)
        n, m = r.u8(), r.u8()
        a[p + "XLength"], a[p + "YLength"] = str(n), str(m)
        if selector & 0x0008:
            a[p + "XType"], a[p + "YType"], a[p + "Parameters"] = str(r.u8()), str(r.u8()), str(r.u8())
        percent = bool(selector & 0x0020)
        cells = [f"{r.u8() * 0.5}%" if percent else str(r.u16()) for _ in range(n * m)]
        a[p + "Data"] = " ".join(cells)
        a[p + "Total"] = str(r.u32())
        if selector & 0x0010:
            k = r.u8()
            size = k if k in (1, 2) else 0
            a[p + "XLimits"] = " ".join(str(r.uint(size, signed=True)) for _ in range(1, n)) if size else ""
            a[p + "YLimits"] = " ".join(str(r.uint(size, signed=True)) for _ in range(1, m)) if size else ""
        index += 1


def _check(frame: bytes) -> tuple[int, int]:
    """(header size, message size) of the message at frame[0]."""
    if not frame or frame[0] not in PROTOCOLS:
        raise DecodeError("not an Aplicom message (D/E/F/H)")
    sizes = _header_size(frame)
    if sizes is None or sizes[1] > len(frame):
        raise DecodeError("truncated Aplicom message")
    return sizes


def _decode_one(frame: bytes, header: int, size: int, can: bool) -> Record | None:
    protocol, flags = frame[0], frame[1]
    selector = DEFAULT_SELECTORS.get(protocol, 0)
    if flags & 0x40:
        selector = int.from_bytes(frame[header - 3 : header], "big")
    if protocol == ord("C"):
        return None
    r = Reader(frame, header, size)
    rec = Record()
    event = r.u8()
    rec.attributes[keys.EVENT] = str(event)
    rec.attributes["eventInfo"] = str(r.u8())
    if protocol == ord("D"):
        _decode_d(rec, r, selector, event, can)
    elif protocol == ord("E"):
        _decode_e(rec, r, selector)
    elif protocol == ord("F"):
        _decode_f(rec, r, selector)
    else:
        _decode_h(rec, r, selector)
    return rec


class AplicomCodec(Codec):
    name = "aplicom"
    first_bytes = b"DEFH0123456789"
    priority = 40
    replies = False
    transports = frozenset({"tcp"})
    max_frame = 4096

    def detect(self, head: bytes, transport: str) -> Detection:
        i = 0
        while i < len(head) and 0x30 <= head[i] <= 0x39:
            i += 1
        if i:
            if i > 15 or (i == len(head) and i < 15):
                return Detection.MORE if i == len(head) and i < 15 else Detection.NO
            if i != 15:
                return Detection.NO
            head = head[i:]
        if not head:
            return Detection.MORE
        if head[0] not in b"DEFH":
            return Detection.NO
        if len(head) < 2:
            return Detection.MORE
        if not _plausible_flags(head[0], head[1]):
            return Detection.NO
        sizes = _header_size(head)
        if sizes is None:
            return Detection.MORE
        header, total = sizes
        if total > self.max_frame or total < header + 2:
            return Detection.NO
        if len(head) < total:
            return Detection.MORE
        rest = head[total:]
        if rest and rest[0] not in PROTOCOLS and not rest[:1].isdigit():
            return Detection.NO
        return Detection.YES

    def new_framer(self) -> Framer:
        return AplicomFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        _check(frame)
        protocol = frame[0]
        if protocol == ord("C"):
            return FrameInfo("other", _imei(frame), None)
        flags = frame[1]
        selector = DEFAULT_SELECTORS[protocol]
        if flags & 0x40:
            header = _header_size(frame)[0]  # type: ignore[index]
            selector = int.from_bytes(frame[header - 3 : header], "big")
        kind = "position" if protocol == ord("D") and selector & 0x0008 else "status"
        return FrameInfo(kind, _imei(frame), None)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        header, size = _check(frame)
        imei = _imei(frame)
        can = ctx.options.get("can", "false").lower() == "true"
        records = []
        pos = 0
        first_kind = self.inspect(frame[:size], ctx.transport).kind
        while True:
            rec = _decode_one(frame[pos:], header, size, can)
            if rec is not None:
                records.append(rec)
            pos += size
            if pos >= len(frame):
                break
            try:
                header, size = _check(frame[pos:])
            except ProtocolError:
                break
        return Decoded(first_kind, imei, records)


CODEC = AplicomCodec()
