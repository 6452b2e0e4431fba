"""Topflytech T880x family, TLW2-2BL and relatives (Traccar `t800x`), TCP and UDP.

Binary, big-endian unless noted.  Every message::

    header(2)  type(1)  length(2, the whole message)  index(2)  IMEI(8, BCD, leading 0 nibble)  body

Headers: ``23 23`` (T880x), ``25 25``, ``26 26`` (OBD / driving behaviour), ``27 27``
(personal / asset trackers, a shorter position layout).  Types: ``01`` login, ``02``/``13``
position, ``03`` heartbeat, ``04``/``14`` alarm (a position with an alarm code), ``05`` network
info on ``27 27`` but harsh-driving track on ``26 26``, ``06`` driving behaviour (``26 26``),
``10`` BLE tags, ``11`` network info, ``81`` command reply (UTF-16LE text).

Position body (not ``27 27``): acc-on/off intervals(2+2), angle(1), distance(2), rssi(2, low 7
bits), status(1: satellites bits 0-4, fix bit 6), g-sensor, flags, heartbeat, relay(1 each),
drag(2), io(2: ignition bit 14, ac 13, in3 12, in4 11; out1-3 bits 7-9 or an output byte +
reserved on ``13``/``14``), ADC (2 or 5 x 2, not on ``26 26``), alarm(1), reserved(1),
odometer(4, m), battery %(1 BCD); then with a fix: time(6 BCD yymmddhhmmss), altitude, longitude,
latitude (float32 LE each), speed (2 BCD, 0.1 km/h; a reserved word on ``26 26``), course(2);
without one: time, MCC, MNC, 3 x (LAC, CID) (LE).  Then battery volts (TLW2-2BL or ``13``/``14``),
external power and the OBD block (speed, OBD speed, fuel used/consumption, rpm, air input,
air pressure, coolant, air temperature, engine load, throttle, fuel).  ``27 27`` bodies carry
only the status and alarm bytes before the fix, then acceleration, battery, temperature,
light sensor, battery volts, solar panel, odometer and input status.

Replies: login, heartbeat, network, BLE and command-reply frames -> 15 bytes: the header,
the type, ``00 0F``, the index (``00 01`` under ``23 23``) and the 8 IMEI bytes.  Alarm frames
(``04``/``14``) -> the same with length ``00 10`` and the alarm code appended (15 bytes when
the code is 0).  Plain positions are not acknowledged (Traccar's per-device ``t800x.ack``
attribute is server state a stateless codec does not have).  For BLE frames Traccar sends the
15-byte answer twice (index 1, then the frame's index); one answer is sent here.

A buffer holding several messages of one unit (as some captures do) decodes all of them.

Option ``model`` (Traccar's model override): ``TLW2-2BL`` reads the battery-volts field on
``02``/``04`` positions as well.
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
    Record,
)
from .kit import alarms, keys
from .kit.framing import garbage, split_with
from .kit.readers import Reader, bcd_int, bcd_time, sign_magnitude

HEADERS = (0x2323, 0x2525, 0x2626, 0x2727)
HEADER_BYTES = b"#%&'"
LOGIN, GPS, HEARTBEAT, ALARM = 0x01, 0x02, 0x03, 0x04
NETWORK, BEHAVIOUR_2 = 0x05, 0x06
BLE, NETWORK_2, GPS_2, ALARM_2, COMMAND = 0x10, 0x11, 0x13, 0x14, 0x81
TYPES = (LOGIN, GPS, HEARTBEAT, ALARM, NETWORK, BEHAVIOUR_2, BLE, NETWORK_2, GPS_2, ALARM_2, COMMAND)
POSITION_TYPES = (GPS, GPS_2, ALARM, ALARM_2)
PREFIX_LEN = 15  # header + type + length + index + IMEI
TLW2 = "TLW2-2BL"

ALARMS_1 = {
    1: alarms.POWER_CUT,
    2: alarms.LOW_BATTERY,
    3: alarms.SOS,
    4: alarms.OVERSPEED,
    5: alarms.GEOFENCE_ENTER,
    6: alarms.GEOFENCE_EXIT,
    7: alarms.TOW,
    8: alarms.VIBRATION,
    10: alarms.VIBRATION,
    21: alarms.JAMMING,
    23: alarms.POWER_RESTORED,
    24: alarms.LOW_POWER,
}
ALARMS_2 = {
    1: alarms.REMOVING,
    2: alarms.TAMPERING,
    3: alarms.SOS,
    4: alarms.REMOVING,
    5: alarms.FALL_DOWN,
    6: alarms.LOW_BATTERY,
    14: alarms.GEOFENCE_ENTER,
    15: alarms.GEOFENCE_EXIT,
}


def _prefix(head: bytes) -> Detection:
    """Header pair, a known type, a sane length and a BCD IMEI, as far as `head` goes."""
    if not head:
        return Detection.MORE
    if head[0] not in HEADER_BYTES:
        return Detection.NO
    if len(head) >= 2 and head[1] != head[0]:
        return Detection.NO
    if len(head) >= 3 and head[2] not in TYPES:
        return Detection.NO
    if len(head) >= 5 and not PREFIX_LEN <= int.from_bytes(head[3:5], "big") <= T800xCodec.max_frame:
        return Detection.NO
    imei = head[7:PREFIX_LEN].hex()
    if imei and (not imei.isdigit() or imei[0] != "0"):
        return Detection.NO
    return Detection.YES if len(head) >= PREFIX_LEN else Detection.MORE


class T800xFramer(Framer):
    """Length-field frames (offset 3, 2 bytes, the whole message) with resync on the next header pair."""

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if not buf:
            return None
        verdict = _prefix(bytes(buf[:PREFIX_LEN]))
        if verdict is Detection.NO:
            cut = 1
            while cut < len(buf) and _prefix(bytes(buf[cut : cut + PREFIX_LEN])) is Detection.NO:
                cut += 1
            raise garbage(buf, cut)
        if len(buf) < 5:
            return None
        size = int.from_bytes(buf[3:5], "big")
        if len(buf) < size:
            return None
        frame = bytes(buf[:size])
        del buf[:size]
        return frame


def _f32(reader: Reader) -> float:
    return struct.unpack("<f", reader.bytes(4))[0]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _date(reader: Reader) -> datetime | None:
    return bcd_time(reader.bytes(6))


def _bcd(reader: Reader, n: int) -> int:
    return bcd_int(reader.bytes(n))


def _set_coordinates(rec: Record, lon: float, lat: float) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise DecodeError(f"coordinates out of range: {lat}, {lon}")
    rec.latitude, rec.longitude = lat, lon


def _alarm_offset(header: int, kind: int) -> int:
    """Where the alarm byte of a position/alarm message sits."""
    if header == 0x2727:
        return PREFIX_LEN + 1
    offset = PREFIX_LEN + 9 + 1 + 6 + 2  # intervals/compensation/rssi, status, flags/drag, io
    offset += 2 if kind in (GPS_2, ALARM_2) else 0
    if header != 0x2626:
        offset += 10 if kind in (GPS_2, ALARM_2) else 4
    return offset


def _reply(frame: bytes, alarm: int = 0) -> bytes:
    header, kind = frame[0:2], frame[2]
    index = b"\x00\x01" if header == b"##" else frame[5:7]
    size = 16 if alarm else 15
    return (
        header
        + bytes((kind,))
        + size.to_bytes(2, "big")
        + index
        + frame[7:PREFIX_LEN]
        + (bytes((alarm,)) if alarm else b"")
    )


def _position(r: Reader, header: int, kind: int, index: int, model: str | None) -> Record:
    rec = Record()
    attrs = rec.attributes
    attrs[keys.INDEX] = str(index)
    second = kind in (GPS_2, ALARM_2)
    if header != 0x2727:
        r.skip(7)  # acc on/off interval, angle and distance compensation
        attrs[keys.RSSI] = str(r.u16() & 0x7F)
    status = r.u8()
    rec.satellites = status & 0x1F
    if header != 0x2727:
        r.skip(6)  # g-sensor manager, flags, heartbeat, relay, drag alarm setting
        io = r.u16()
        rec.ignition = bool(io >> 14 & 1)
        attrs["ac"] = _bool(bool(io >> 13 & 1))
        attrs["in3"] = _bool(bool(io >> 12 & 1))
        attrs["in4"] = _bool(bool(io >> 11 & 1))
        if second:
            attrs[keys.OUTPUT] = str(r.u8())
            r.skip(1)
        else:
            for n, b in ((1, 7), (2, 8), (3, 9)):
                attrs[f"out{n}"] = _bool(bool(io >> b & 1))
        if header != 0x2626:
            for n in range(1, (5 if second else 2) + 1):
                value = r.u16()
                if value != 0xFFFF:
                    attrs[f"adc{n}"] = _num(value / 100)
    alarm = r.u8()
    name = (ALARMS_2 if header == 0x2727 else ALARMS_1).get(alarm)
    if name:
        rec.alarms.append(name)
    attrs["alarmCode"] = str(alarm)
    if header != 0x2727:
        r.skip(1)
        rec.odometer = float(r.u32())
        level = _bcd(r, 1)
        rec.battery_level = float(level or 100)
    if status >> 6 & 1:
        rec.valid = True
        rec.fix_time = _date(r)
        rec.altitude = _f32(r)
        lon, lat = _f32(r), _f32(r)
        _set_coordinates(rec, lon, lat)
        if header == 0x2626:
            r.skip(2)
        else:
            rec.speed = _bcd(r, 2) / 10
        rec.course = float(r.u16())
    else:
        rec.fix_time = _date(r)
        mcc, mnc = r.u16_le(), r.u16_le()
        if mcc != 0xFFFF and mnc != 0xFFFF:
            attrs[keys.MCC], attrs[keys.MNC] = str(mcc), str(mnc)
            lac, cid = r.u16_le(), r.u16_le()
            attrs[keys.LAC], attrs[keys.CELL_ID] = str(lac), str(cid)
            r.skip(min(8, r.remaining))
    if header == 0x2727:
        attrs[keys.G_SENSOR] = r.bytes(5).hex()
        level = _bcd(r, 1)
        rec.battery_level = float(level or 100)
        attrs[keys.DEVICE_TEMP] = str(r.i8())
        attrs["lightSensor"] = _num(_bcd(r, 1) / 10)
        rec.battery = _bcd(r, 1) / 10
        attrs["solarPanel"] = _num(_bcd(r, 1) / 10)
        rec.odometer = float(r.u32())
        inputs = r.u16()
        rec.ignition = bool(inputs >> 2 & 1)
        attrs[keys.RSSI] = str(inputs >> 4 & 0x7F)
        attrs[keys.INPUT] = str(inputs)
        return rec
    if (model == TLW2 or second) and r.remaining >= 2:
        rec.battery = _bcd(r, 2) / 100
    if r.remaining >= 2:
        rec.power = _bcd(r, 2) / 100
    if r.remaining >= 19:
        rec.speed = _bcd(r, 2) / 10
        attrs[keys.OBD_SPEED] = _num(_bcd(r, 2) / 100)
        attrs[keys.FUEL_USED] = _num(r.u32() / 1000)
        attrs[keys.FUEL_CONSUMPTION] = _num(r.u32() / 1000)
        attrs[keys.RPM] = str(r.u16())
        for key, offset in (
            ("airInput", 0),
            ("airPressure", 0),
            (keys.COOLANT_TEMP, -40),
            ("airTemp", -40),
            (keys.ENGINE_LOAD, 0),
            (keys.THROTTLE, 0),
            (keys.FUEL, 0),
        ):
            if r.remaining < 1:
                break
            value = r.u8()
            if value != 0xFF:
                attrs[key] = str(value + offset)
    return rec


def _text(reader: Reader, encoding: str) -> str:
    return reader.bytes(reader.u8()).decode(encoding, "replace")


def _network(r: Reader) -> Record:
    rec = Record(fix_time=_date(r))
    rec.attributes[keys.OPERATOR] = _text(r, "utf-16-le")
    rec.attributes["networkTechnology"] = _text(r, "latin-1")
    rec.attributes["networkBand"] = _text(r, "latin-1")
    _text(r, "latin-1")  # IMSI
    rec.attributes[keys.ICCID] = _text(r, "latin-1")
    return rec


def _behaviour_track(r: Reader) -> list[Record]:
    code = r.u8()
    alarm = alarms.BRAKING if code in (0, 2, 4) else alarms.ACCELERATION if code in (1, 3, 5) else None
    out = []
    while r.remaining >= 24:
        rec = Record(fix_time=_date(r))
        if r.data[r.pos : r.pos + 4] != b"\xff\xff\xff\xff":
            rec.valid = True
            rec.altitude = _f32(r)
            lon, lat = _f32(r), _f32(r)
            _set_coordinates(rec, lon, lat)
        else:
            r.skip(12)
        rec.speed = _bcd(r, 2) / 10
        course, rpm = r.u16(), r.u16()
        if course != 0xFFFF:
            rec.course = course / 10
        if rpm != 0xFFFF:
            rec.attributes[keys.RPM] = str(rpm)
        out.append(rec)
    if out and alarm:
        out[-1].alarms.append(alarm)
    return out


def _behaviour(r: Reader) -> Record:
    rec = Record()
    code = r.u8()
    alarm = {0: alarms.BRAKING, 1: alarms.ACCELERATION, 2: alarms.CORNERING}.get(code)
    if alarm:
        rec.alarms.append(alarm)
    rec.fix_time = _date(r)
    rec.valid = not r.u8() >> 7 & 1
    r.skip(5)
    rec.altitude = _f32(r)
    lon, lat = _f32(r), _f32(r)
    _set_coordinates(rec, lon, lat)
    rec.speed = _bcd(r, 2) / 10
    rec.course = r.u16() / 10
    rec.attributes[keys.RPM] = str(r.u16())
    return rec


def _ble_temp(r: Reader) -> str:
    return _num(sign_magnitude(r.u16(), 16) / 100)


def _ble(r: Reader) -> Record:
    rec = Record(fix_time=_date(r))
    attrs = rec.attributes
    rec.ignition = r.u8() > 0
    i = 1
    while r.remaining > 0:
        tag = r.u16()
        p = f"tag{i}"
        if tag == 0x01:
            attrs[p + "Id"] = r.bytes(6).hex()
            attrs[p + "Battery"] = _num(r.u8() / 100 + 1.22)
            attrs[p + "TirePressure"] = _num(r.u8() * 1.527 * 2)
            attrs[p + "TireTemp"] = str(r.u8() - 55)
            attrs[p + "TireStatus"] = str(r.u8())
        elif tag in (0x02, 0x03):
            tag_id = r.bytes(6).hex()
            attrs[keys.DRIVER_UNIQUE_ID if tag == 0x03 else p + "Id"] = tag_id
            attrs[p + "Battery"] = _num(_bcd(r, 1) / 10)
            state = r.u8()
            if tag == 0x02 and state in (0, 1):
                rec.alarms.append(alarms.SOS if state == 0 else alarms.LOW_BATTERY)
            elif tag == 0x03 and state == 1:
                rec.alarms.append(alarms.LOW_BATTERY)
            r.skip(17)  # status, location
        elif tag in (0x04, 0x05, 0x06):
            attrs[p + "Id"] = r.bytes(6).hex()
            attrs[p + "Battery"] = _num(r.u8() / 100 + 2)
            if tag == 0x06:
                attrs[p + "Output"] = _bool(r.u8() > 0)
            else:
                r.skip(1)
                attrs[p + "Temp"] = _ble_temp(r)
                if tag == 0x04:
                    attrs[p + "Humidity"] = _num(r.u16() / 100)
                    attrs[p + "LightSensor"] = str(r.u16())
                else:
                    attrs[p + "Door"] = _bool(r.u8() > 0)
            attrs[p + "Rssi"] = str(r.u8() - 128)
        else:
            break
        i += 1
    return rec


def _kind(header: int, kind: int) -> str:
    if kind == LOGIN:
        return "login"
    if kind == HEARTBEAT:
        return "heartbeat"
    if kind in (ALARM, ALARM_2):
        return "alarm"
    if kind in (GPS, GPS_2) or (header == 0x2626 and kind in (NETWORK, BEHAVIOUR_2)):
        return "position"
    if kind in (NETWORK, NETWORK_2, BLE):
        return "status"
    return "other"


def _check(frame: bytes) -> tuple[int, int, int]:
    """(header, type, size) of the message at the start of `frame`."""
    if _prefix(frame[:PREFIX_LEN]) is not Detection.YES:
        raise DecodeError("not a T800x message")
    size = int.from_bytes(frame[3:5], "big")
    if size > len(frame):
        raise DecodeError(f"message announces {size} bytes, {len(frame)} present")
    return int.from_bytes(frame[0:2], "big"), frame[2], size


class T800xCodec(Codec):
    name = "t800x"
    first_bytes = HEADER_BYTES
    priority = 20
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 1024  # Traccar's LengthFieldBasedFrameDecoder limit

    def detect(self, head: bytes, transport: str) -> Detection:
        return _prefix(head[:PREFIX_LEN])

    def new_framer(self) -> Framer:
        return T800xFramer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram, "message")

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        header, kind, size = _check(frame)
        imei = frame[7:PREFIX_LEN].hex()[1:]
        reply = None
        if kind in (ALARM, ALARM_2):
            offset = _alarm_offset(header, kind)
            if offset >= size:
                raise DecodeError("alarm message too short for its alarm code")
            reply = _reply(frame, frame[offset])
        elif kind not in POSITION_TYPES:
            reply = _reply(frame)
        return FrameInfo(_kind(header, kind), imei, reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        header, kind, size = _check(frame)
        imei = frame[7:PREFIX_LEN].hex()[1:]
        model = ctx.options.get("model")
        records: list[Record] = []
        pos = 0
        while True:
            records.extend(_decode_one(frame[pos : pos + size], header, kind, model))
            pos += size
            if pos >= len(frame):
                break
            try:
                header, kind, size = _check(frame[pos:])
            except DecodeError:
                break  # trailing bytes that are not a whole message: Traccar reads only the first
            if frame[pos + 7 : pos + PREFIX_LEN].hex()[1:] != imei:
                break
        return Decoded(_kind(int.from_bytes(frame[0:2], "big"), frame[2]), imei, records)


def _decode_one(message: bytes, header: int, kind: int, model: str | None) -> list[Record]:
    r = Reader(message, PREFIX_LEN)
    index = int.from_bytes(message[5:7], "big")
    if kind in POSITION_TYPES:
        return [_position(r, header, kind, index, model)]
    if (kind == NETWORK and header == 0x2727) or kind == NETWORK_2:
        return [_network(r)]
    if kind == NETWORK and header == 0x2626:
        return _behaviour_track(r)
    if kind == BEHAVIOUR_2 and header == 0x2626:
        return [_behaviour(r)]
    if kind == BLE:
        return [_ble(r)]
    if kind == COMMAND:
        r.skip(1)
        rec = Record()
        rec.attributes[keys.RESULT] = r.rest().decode("utf-16-le", "replace")
        return [rec]
    return []


CODEC = T800xCodec()
