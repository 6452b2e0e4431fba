"""Teltonika FMB/FMC/FMM/FMT/FMU trackers (Traccar `teltonika`, default port 5027).

TCP stream (big-endian throughout)::

    login      00 0F + 15 ASCII digits (IMEI)              server answers 01 (accept)
    ping       FF                                          no answer
    AVL data   00 00 00 00 | length (4) | body | CRC (4)   server answers the record count (4 B)
               body = codec id (1) | count (1) | records | count (1)
               length counts the body; CRC field = 00 00 + CRC-16/ARC of the body

UDP datagram (one per packet, IMEI in every one, no CRC)::

    length (2, rest of datagram) | packet id (2) | packet type (1, 01) | AVL packet id (1)
    | IMEI length (2) | IMEI | body
    server answers 00 05 | packet id | 01 | AVL packet id | count

Body codecs:

* 0x08 Codec 8, 0x8E Codec 8 Extended, 0x10 Codec 16 -- AVL records::

      timestamp ms UTC (8) | priority (1: 0 low, 1 high, 2 panic)
      | longitude (i32 x1e-7) | latitude (i32 x1e-7) | altitude m (i16) | angle (2)
      | satellites (1) | speed km/h (2) | IO section

  IO section: event IO id, total count, then groups of 1-, 2-, 4- and 8-byte
  values, each group = count + (id, value)*.  Codec 8 uses 1-byte ids and counts;
  8 Extended 2-byte ids and counts plus a last group of variable-length values
  (id, length (2), bytes); Codec 16 2-byte ids, 1-byte counts and a generation-type
  byte after the event id.  With no fix the device repeats the last coordinates
  and reports 0 satellites, so `valid` = satellites > 0.
* 0x07 GH3000 -- records ``prio(2 bits)+seconds since 2007-01-01 (30 bits) |
  global mask | [GPS mask + masked fields: lat/lon float32, altitude (2),
  angle (1, x360/256), speed (1), satellites (1), LAC+cell (4), signal (1),
  operator (4)] | [1-, 2-, 4-byte IO groups, 1-byte ids]``.
* 0x0C..0x0F Codec 12/13/14/15 -- GPRS messages (command responses, serial
  pass-through, camera data): count | (type (1) | size (4) | [timestamp s (4),
  codecs 13/15] | [IMEI 8 B BCD-like hex, codecs 14/15] | payload)* | count.
  Text responses become a status-only record with a ``result`` attribute
  (``fix_time`` = the message time of Codecs 13/15, else None);
  camera chunks (type 0x0D) carry no report.  Nothing is answered.

Every IO element is kept in ``attributes`` as ``io<id>`` (decimal, or hex for
variable-length values); well-known FMB AVL ids are also normalized under
Traccar-like names, and event ids map to alarms.

The protocol has no flag telling buffered records from live ones, so ``archive``
is always False: the stream layer recognises late points by their time stamp.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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
from .kit.checksums import CRC16_ARC
from .kit.framing import oversized, take
from .kit.readers import twos_complement

# --- framing constants -------------------------------------------------------------
PING = 0xFF
PING_FRAME = bytes([PING])
PREAMBLE = b"\x00\x00\x00\x00"
HEADER_SIZE = 8  # preamble + data length
CRC_FIELD_SIZE = 4
ENVELOPE = HEADER_SIZE + CRC_FIELD_SIZE
MIN_BODY = 3  # codec id + count + count
IMEI_LENGTH = 15  # the login every unit sends
MAX_ID_LENGTH = 17  # longest id accepted on an established stream
LOGIN_SIZE = 2 + IMEI_LENGTH
LOGIN_ACCEPT = b"\x01"

UDP_HEADER = struct.Struct(">HHBBH")  # length, packet id, packet type, AVL packet id, IMEI length
UDP_PACKET_TYPE = 0x01
UDP_ACK_LENGTH = 5
MIN_UDP = UDP_HEADER.size + IMEI_LENGTH + MIN_BODY

# --- codecs -----------------------------------------------------------------------
CODEC_GH3000 = 0x07
CODEC_8 = 0x08
CODEC_8E = 0x8E
CODEC_16 = 0x10
CODEC_12 = 0x0C
CODEC_13 = 0x0D
CODEC_14 = 0x0E
CODEC_15 = 0x0F
AVL_CODECS = frozenset({CODEC_GH3000, CODEC_8, CODEC_8E, CODEC_16})
MESSAGE_CODECS = frozenset({CODEC_12, CODEC_13, CODEC_14, CODEC_15})
KNOWN_CODECS = AVL_CODECS | MESSAGE_CODECS

MESSAGE_CAMERA = 0x0D  # Codec 12 type carrying camera/photo data
MESSAGE_TIMESTAMP_SIZE = 4
MESSAGE_IMEI_SIZE = 8

PRIORITY_PANIC = 2
COORDINATE_SCALE = 1e-7
MILLIVOLT = 1e-3
DOP_SCALE = 0.1
RECORD_HEAD = struct.Struct(">QBiihHBH")  # time ms, priority, lon, lat, altitude, angle, satellites, speed

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GH3000_EPOCH = datetime(2007, 1, 1, tzinfo=UTC)
GH3000_SECONDS_MASK = 0x3FFFFFFF
GH3000_PRIORITY_SHIFT = 30
GH3000_ANGLE_SCALE = 360 / 256
GH3000_HAS_GPS = 0x01  # global mask; bits 1-3 flag the 1-, 2- and 4-byte IO groups
GH3000_IO_WIDTHS = ((0x02, 1), (0x04, 2), (0x08, 4))
# GPS-element mask, in wire order
GH3000_LATLON = 0x01  # latitude, longitude as float32
GH3000_ALTITUDE = 0x02
GH3000_ANGLE = 0x04
GH3000_SPEED = 0x08
GH3000_SATELLITES = 0x10
GH3000_CELL = 0x20  # LAC (2) + cell id (2)
GH3000_SIGNAL = 0x40
GH3000_OPERATOR = 0x80
FLOAT_PAIR = struct.Struct(">ff")

# --- FMB AVL ids ------------------------------------------------------------------
IO_DIN = {1: "in1", 2: "in2", 3: "in3", 4: "in4"}
IO_DOUT = {179: "out1", 180: "out2"}
_IO_SWITCHES = tuple((IO_DIN | IO_DOUT).items())  # (io id, attribute name) of the digital inputs and outputs
IO_AIN1 = 9
IO_TOTAL_ODOMETER = 16
IO_GSM_SIGNAL = 21
IO_EXTERNAL_VOLTAGE = 66
IO_BATTERY_VOLTAGE = 67
IO_GNSS_STATUS = 69
IO_IBUTTON = 78
IO_BATTERY_LEVEL = 113
IO_PDOP = 181
IO_HDOP = 182
IO_TRIP_ODOMETER = 199
IO_IGNITION = 239
IO_MOVEMENT = 240
IO_GREEN_DRIVING = 253
IO_OVERSPEED = 255
GEOFENCE_ZONES = frozenset({155, 156, 157, 158, 159, 175})  # zones 1-5, auto geofence: 1 entered, 0 left
# eventual IOs whose non-zero value is an alarm
IO_ALARMS = {
    236: "general",
    246: "tow",
    247: "accident",
    249: "jamming",
    251: "idle",
    252: "powerCut",
    IO_OVERSPEED: "overspeed",
}
GREEN_DRIVING = {1: "hardAcceleration", 2: "hardBraking", 3: "hardCornering"}


crc16 = CRC16_ARC  # CRC-16/ARC, the Teltonika "CRC-16/IBM"; the name devices and tests import


# --- envelope helpers (hot path: slicing only) --------------------------------------
def _is_digits(data: bytes) -> bool:
    return bool(data) and data.isdigit()


def _check_body(body: bytes) -> int:
    """Validate codec id and the two counts of a body; return the record/message count."""
    if len(body) < MIN_BODY:
        raise DecodeError(f"body of {len(body)} bytes is too short")
    codec = body[0]
    if codec not in KNOWN_CODECS:
        raise DecodeError(f"codec 0x{codec:02x} not supported")
    if body[1] != body[-1]:
        raise DecodeError(f"record counts differ ({body[1]} vs {body[-1]})")
    return body[1]


def _tcp_body(frame: bytes) -> bytes:
    """The body of a TCP AVL frame, after checking length and CRC."""
    if len(frame) < ENVELOPE + MIN_BODY or frame[:4] != PREAMBLE:
        raise DecodeError("not an AVL data frame")
    length = int.from_bytes(frame[4:8], "big")
    if length + ENVELOPE != len(frame):
        raise DecodeError(f"length field {length} does not match a frame of {len(frame)} bytes")
    body = frame[HEADER_SIZE:-CRC_FIELD_SIZE]
    carried = int.from_bytes(frame[-CRC_FIELD_SIZE:], "big")
    computed = crc16(body)
    if carried != computed:
        raise ChecksumError(f"CRC carried 0x{carried:04x}, computed 0x{computed:04x}")
    return body


def _udp_parts(datagram: bytes) -> tuple[int, int, str, bytes]:
    """(packet id, AVL packet id, IMEI, body) of a UDP datagram."""
    if len(datagram) < MIN_UDP:
        raise DecodeError(f"datagram of {len(datagram)} bytes is too short")
    length, packet_id, _packet_type, avl_id, id_length = UDP_HEADER.unpack_from(datagram)
    if length + 2 != len(datagram):
        raise DecodeError(f"length field {length} does not match a datagram of {len(datagram)} bytes")
    end = UDP_HEADER.size + id_length
    imei = datagram[UDP_HEADER.size : end]
    if not 0 < id_length <= MAX_ID_LENGTH or not _is_digits(imei):
        raise DecodeError("datagram does not carry an IMEI")
    return packet_id, avl_id, imei.decode("ascii"), datagram[end:]


def _udp_ack(packet_id: int, avl_id: int, count: int) -> bytes:
    return struct.pack(">HHBBB", UDP_ACK_LENGTH, packet_id, UDP_PACKET_TYPE, avl_id, count)


def _data_kind(body: bytes, count: int) -> str:
    """Kind from the body header alone: no IO walk (decode refines position -> alarm)."""
    if body[0] in MESSAGE_CODECS:
        camera = body[0] == CODEC_12 and body[2] == MESSAGE_CAMERA
        return "other" if count == 0 or camera else "status"
    if count == 0:
        return "heartbeat"
    return "batch" if count > 1 else "position"


# --- body decoding ------------------------------------------------------------------
class _Reader:
    """Bounds-checked cursor over a body; every overrun is a DecodeError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise DecodeError(f"truncated at byte {self.pos} (needs {size} more)")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, size: int) -> int:
        pos = self.pos  # `take`, inlined: every IO element is read here
        end = pos + size
        if end > len(self.data):
            raise DecodeError(f"truncated at byte {pos} (needs {size} more)")
        self.pos = end
        return int.from_bytes(self.data[pos:end], "big")

    def unpack(self, layout: struct.Struct) -> tuple:
        return layout.unpack(self.take(layout.size))


IoValue = int | bytes


def _read_io(
    r: _Reader, id_size: int, count_size: int, variable: bool, extended: bool = False
) -> tuple[dict[int, IoValue], dict[int, int]]:
    """The 1/2/4/8-byte IO groups, the 16-byte group when the `extended` option is set,
    and the variable-length group for 8 Extended.  Also returns each numeric id's width."""
    io: dict[int, IoValue] = {}
    widths: dict[int, int] = {}
    for width in (1, 2, 4, 8):
        for _ in range(r.uint(count_size)):
            io_id = r.uint(id_size)
            io[io_id] = r.uint(width)
            widths[io_id] = width
    if extended:
        for _ in range(r.uint(count_size)):
            io_id = r.uint(id_size)
            io[io_id] = r.take(16)
    if variable:
        for _ in range(r.uint(count_size)):
            io_id = r.uint(id_size)
            io[io_id] = r.take(r.uint(2))
    return io, widths


def _normalize_io(record: Record, io: dict[int, IoValue]) -> None:
    """Copy every IO element to `io<id>` and lift the well-known FMB ones."""
    attrs = record.attributes
    for io_id, value in io.items():
        attrs[f"io{io_id}"] = value.hex() if isinstance(value, bytes) else str(value)
    numeric = {k: v for k, v in io.items() if isinstance(v, int)}
    for io_id, name in _IO_SWITCHES:
        if io_id in numeric:
            attrs[name] = "true" if numeric[io_id] > 0 else "false"
    if IO_IGNITION in numeric:
        record.ignition = numeric[IO_IGNITION] > 0
        attrs["ignition"] = str(record.ignition).lower()
    if IO_MOVEMENT in numeric:
        attrs["motion"] = str(numeric[IO_MOVEMENT] > 0).lower()
    if IO_EXTERNAL_VOLTAGE in numeric:
        record.power = round(numeric[IO_EXTERNAL_VOLTAGE] * MILLIVOLT, 3)
        attrs["power"] = f"{record.power:.3f}"
    if IO_BATTERY_VOLTAGE in numeric:
        record.battery = round(numeric[IO_BATTERY_VOLTAGE] * MILLIVOLT, 3)
        attrs["battery"] = f"{record.battery:.3f}"
    if IO_BATTERY_LEVEL in numeric:
        record.battery_level = float(numeric[IO_BATTERY_LEVEL])
        attrs["batteryLevel"] = str(numeric[IO_BATTERY_LEVEL])
    if IO_TOTAL_ODOMETER in numeric:
        record.odometer = float(numeric[IO_TOTAL_ODOMETER])
        attrs["odometer"] = str(numeric[IO_TOTAL_ODOMETER])
    if IO_TRIP_ODOMETER in numeric:
        attrs["tripOdometer"] = str(numeric[IO_TRIP_ODOMETER])
    if IO_GSM_SIGNAL in numeric:
        attrs["rssi"] = str(numeric[IO_GSM_SIGNAL])
    if IO_GNSS_STATUS in numeric:
        attrs["gnssStatus"] = str(numeric[IO_GNSS_STATUS])
    if IO_AIN1 in numeric:
        attrs["adc1"] = f"{numeric[IO_AIN1] * MILLIVOLT:.3f}"
    for io_id, name in ((IO_PDOP, "pdop"), (IO_HDOP, "hdop")):
        if io_id in numeric:
            attrs[name] = f"{numeric[io_id] * DOP_SCALE:.1f}"
    if numeric.get(IO_IBUTTON):
        attrs["driverUniqueId"] = f"{numeric[IO_IBUTTON]:016X}"
    for io_id, alarm in IO_ALARMS.items():
        if numeric.get(io_id):
            record.alarms.append(alarm)
    if numeric.get(IO_GREEN_DRIVING) in GREEN_DRIVING:
        record.alarms.append(GREEN_DRIVING[numeric[IO_GREEN_DRIVING]])
    for zone in sorted(GEOFENCE_ZONES & numeric.keys()):
        record.alarms.append("geofenceEnter" if numeric[zone] else "geofenceExit")


def _fmb(model: str | None) -> bool:
    return bool(model) and re.fullmatch(r"FM[B-Z]...|MTB100|MSP500", model or "") is not None


def _fmb6(model: str | None) -> bool:
    return bool(model) and re.fullmatch(r"FM.6..", model or "") is not None


def _tat(model: str | None) -> bool:
    return bool(model) and re.fullmatch(r"T.T...", model or "") is not None


def _fmb_not6(model: str | None) -> bool:
    return _fmb(model) and not _fmb6(model)


def _fmb_or_tat(model: str | None) -> bool:
    return _fmb(model) or _tat(model)


def _any(model: str | None) -> bool:
    return True


def _scaled(key: str, scale: float = 1, signed: bool = False) -> Callable[[Record, int, int], None]:
    def handler(record: Record, value: int, width: int) -> None:
        number = twos_complement(value, 8 * width) if signed else value
        record.attributes[key] = str(number / scale if scale != 1 else number)

    return handler


def _flag(key: str) -> Callable[[Record, int, int], None]:
    def handler(record: Record, value: int, width: int) -> None:
        record.attributes[key] = "true" if value > 0 else "false"

    return handler


def _io_speed(record: Record, value: int, width: int) -> None:
    record.speed = float(value)


def _io_iccid(record: Record, value: int, width: int) -> None:
    record.attributes["iccid"] = str(twos_complement(value, 8 * width))


def _io_odometer_km(record: Record, value: int, width: int) -> None:
    record.attributes["obdOdometer"] = str(value * 1000)


#: Traccar's model-gated IO elements (option `model`): id -> [(applies to model, handler)]
#: FMB/FMC/FMM/FMT... (`FM[B-Z]xxx`, MTB100, MSP500), FM.6xx, TAT (`T.Txxx`)
MODEL_IO: dict[int, list[tuple[Callable[[str | None], bool], Callable[[Record, int, int], None]]]] = {
    9: [(_fmb, _scaled("adc1", 1000))],
    10: [(_fmb, _scaled("adc2", 1000))],
    11: [(_fmb, _io_iccid)],
    12: [(_fmb, _scaled("fuelUsed", 1000))],
    13: [(_fmb, _scaled("fuelConsumption", 100))],
    17: [(_any, _scaled("axisX", signed=True))],
    18: [(_any, _scaled("axisY", signed=True))],
    19: [(_any, _scaled("axisZ", signed=True))],
    24: [(_fmb, _io_speed)],
    25: [(_any, _scaled("bleTemp1", 100, True))],
    26: [(_any, _scaled("bleTemp2", 100, True))],
    27: [(_any, _scaled("bleTemp3", 100, True))],
    28: [(_any, _scaled("bleTemp4", 100, True))],
    30: [(_fmb, _scaled("faultCount"))],
    31: [(_fmb, _scaled("engineLoad"))],
    32: [(_fmb, _scaled("coolantTemp", signed=True))],
    36: [(_fmb, _scaled("rpm"))],
    43: [(_fmb, _scaled("milDistance"))],
    57: [(_fmb, _scaled("hybridBatteryLevel", signed=True))],
    68: [(_fmb, _scaled("batteryCurrent", 1000))],
    72: [(_fmb, _scaled("temp1", 10, True))],
    73: [(_fmb, _scaled("temp2", 10, True))],
    74: [(_fmb, _scaled("temp3", 10, True))],
    75: [(_fmb, _scaled("temp4", 10, True))],
    80: [(_fmb_not6, _scaled("dataMode"))],
    81: [(_fmb_not6, _scaled("obdSpeed"))],
    82: [(_fmb_not6, _scaled("throttle"))],
    83: [(_fmb_not6, _scaled("fuelUsed", 10))],
    84: [(_fmb_not6, _scaled("fuel", 10))],
    85: [(_fmb_not6, _scaled("rpm"))],
    87: [(_fmb_not6, _scaled("obdOdometer"))],
    89: [(_fmb_not6, _scaled("fuelLevel"))],
    107: [(_fmb, _scaled("fuelUsed", 10))],
    110: [(_fmb, _scaled("fuelConsumption", 10))],
    115: [(_fmb, _scaled("engineTemp", 10, True))],
    200: [(_fmb, _scaled("sleepMode"))],
    205: [(_fmb_or_tat, _scaled("cid2g"))],
    206: [(_fmb_or_tat, _scaled("lac"))],
    241: [(_any, _scaled("operator"))],
    389: [(lambda m: m == "FMB003", _io_odometer_km)],
    636: [(_fmb_or_tat, _scaled("cid4g"))],
    662: [(_fmb, _flag("door"))],
    701: [(_fmb6, _scaled("bleTemp1", 10, True))],
    702: [(_fmb6, _scaled("bleTemp2", 10, True))],
    703: [(_fmb6, _scaled("bleTemp3", 10, True))],
    704: [(_fmb6, _scaled("bleTemp4", 10, True))],
    **{10644 + i: [(_fmb, _scaled(f"tempProbe{i + 1}", 100, True))] for i in range(6)},
    **{10800 + i: [(_fmb, _scaled(f"eyeTemp{i + 1}", 100, True))] for i in range(4)},
    **{10832 + i: [(_fmb, _scaled(f"eyeRoll{i + 1}", signed=True))] for i in range(4)},
}
#: IO ids whose value-read alarm only FMB-like models report (Traccar gates them by model)
FMB_ONLY_ALARMS = frozenset({246, 247, 249, 251, 252})
#: variable-length (8 Extended) ids carrying BLE tag lists (Eye sensors / beacons)
TAG_LISTS = frozenset({548, 10828, 10829, 10831, 11317})


def _model_io(record: Record, io: dict[int, IoValue], widths: dict[int, int], model: str | None) -> None:
    """Traccar's model-gated and variable-length IO elements (see `MODEL_IO`)."""
    for io_id, value in io.items():
        if isinstance(value, bytes):
            _variable_io(record, io_id, value)
            continue
        for applies, handler in MODEL_IO.get(io_id, ()):
            if applies(model):
                handler(record, value, widths.get(io_id, 8))
                break
    if _fmb6(model) and isinstance(io.get(195), int) and isinstance(io.get(196), int):
        raw = int(io[195]).to_bytes(8, "big") + int(io[196]).to_bytes(8, "big")  # type: ignore[arg-type]
        record.attributes["driverUniqueId"] = raw.decode("latin-1")


def _variable_io(record: Record, io_id: int, value: bytes) -> None:
    attrs = record.attributes
    if io_id in (256, 325):
        attrs["vin"] = value.decode("latin-1")
    elif io_id == 281:
        attrs["dtcs"] = value.decode("latin-1").replace(",", " ")
    elif io_id == 385:
        _beacons(record, value)
    elif io_id in TAG_LISTS:
        try:
            _tags(record, value)
        except DecodeError:
            return


def _beacons(record: Record, value: bytes) -> None:
    """385: data part byte, then per beacon flags, iBeacon uuid/major/minor or Eddystone
    namespace/instance, rssi, [battery 1/100 V], [temperature]."""
    r = _Reader(value, 1)
    index = 1
    attrs = record.attributes
    try:
        while r.pos < len(value):
            flags = r.uint(1)
            if flags >> 4:
                attrs[f"beacon{index}Uuid"] = r.take(16).hex()
                attrs[f"beacon{index}Major"] = str(r.uint(2))
                attrs[f"beacon{index}Minor"] = str(r.uint(2))
            else:
                attrs[f"beacon{index}Namespace"] = r.take(10).hex()
                attrs[f"beacon{index}Instance"] = r.take(6).hex()
            attrs[f"beacon{index}Rssi"] = str(twos_complement(r.uint(1), 8))
            if flags & 0b10:
                attrs[f"beacon{index}Battery"] = str(r.uint(2) / 100)
            if flags & 0b100:
                attrs[f"beacon{index}Temp"] = str(r.uint(2))
            index += 1
    except DecodeError:
        return


#: BLE tag parameter id -> (key suffix, how to read the value bytes)
_TAG_PARAMETERS: dict[int, tuple[str, Callable[[bytes], str]]] = {
    0: ("Rssi", lambda v: str(twos_complement(v[0], 8))),
    1: ("Id", lambda v: v.hex()),
    5: ("Name", lambda v: v.decode("utf-8", "replace")),
    6: ("Temp", lambda v: str(twos_complement(int.from_bytes(v[:2], "big"), 16))),
    7: ("Humidity", lambda v: str(v[0])),
    8: ("Magnet", lambda v: "true" if v[0] else "false"),
    9: ("Motion", lambda v: "true" if v[0] else "false"),
    10: ("MotionCount", lambda v: str(int.from_bytes(v[:2], "big"))),
    11: ("Pitch", lambda v: str(twos_complement(v[0], 8))),
    12: ("AngleRoll", lambda v: str(twos_complement(int.from_bytes(v[:2], "big"), 16))),
    13: ("LowBattery", lambda v: str(v[0])),
    14: ("Battery", lambda v: str(int.from_bytes(v[:2], "big"))),
    15: ("Mac", lambda v: v[:6].hex()),
}


def _tags(record: Record, value: bytes) -> None:
    """BLE tag list: header byte, then per tag a length byte and parameters (id, length, value)."""
    r = _Reader(value, 1)
    index = 0
    while r.pos < len(value):
        index += 1
        tag = _Reader(r.take(r.uint(1)))
        while tag.pos < len(tag.data):
            parameter, size = tag.uint(1), tag.uint(1)
            data = tag.take(size)
            if parameter == 2 and data:
                # flags: bit 6 low battery, bit 7 a voltage byte follows (x10 + 2000 mV)
                if data[0] & 0x40:
                    record.attributes[f"tag{index}LowBattery"] = "true"
                if data[0] & 0x80 and len(data) > 1:
                    record.attributes[f"tag{index}Voltage"] = str(data[1] * 10 + 2000)
            elif parameter in _TAG_PARAMETERS and data:
                suffix, read = _TAG_PARAMETERS[parameter]
                record.attributes[f"tag{index}{suffix}"] = read(data)


def _avl_records(r: _Reader, count: int, codec: int, model: str | None = None, extended: bool = False) -> list[Record]:
    records = []
    for _ in range(count):
        time_ms, priority, lon, lat, altitude, angle, satellites, speed = r.unpack(RECORD_HEAD)
        if codec == CODEC_8:
            event_id = r.uint(1)
            r.uint(1)  # total IO count
            io, widths = _read_io(r, 1, 1, False, extended)
        elif codec == CODEC_16:
            event_id = r.uint(2)
            generation = r.uint(1)
            r.uint(1)  # total IO count
            io, widths = _read_io(r, 2, 1, False, extended)
        else:  # 8 Extended
            event_id = r.uint(2)
            r.uint(2)  # total IO count
            io, widths = _read_io(r, 2, 2, True, extended)
        record = Record(
            fix_time=_from_millis(time_ms),
            valid=satellites > 0,
            latitude=lat * COORDINATE_SCALE,
            longitude=lon * COORDINATE_SCALE,
            altitude=float(altitude),
            speed=float(speed),
            course=float(angle),
            satellites=satellites,
        )
        record.attributes["priority"] = str(priority)
        record.attributes["event"] = str(event_id)
        if codec == CODEC_16:
            record.attributes["generationType"] = str(generation)
        if priority == PRIORITY_PANIC:
            record.alarms.append("sos")
        _normalize_io(record, io)
        _model_io(record, io, widths, model)
        records.append(record)
    return records


def _gh3000_records(r: _Reader, count: int) -> list[Record]:
    records = []
    for _ in range(count):
        stamp = r.uint(4)
        record = Record(fix_time=GH3000_EPOCH + timedelta(seconds=stamp & GH3000_SECONDS_MASK))
        record.attributes["priority"] = str(stamp >> GH3000_PRIORITY_SHIFT)
        mask = r.uint(1)
        if mask & GH3000_HAS_GPS:
            _gh3000_gps(r, record)
        for bit, width in GH3000_IO_WIDTHS:
            if mask & bit:
                for _ in range(r.uint(1)):
                    io_id = r.uint(1)
                    value = r.uint(width)
                    record.attributes[f"io{io_id}"] = str(value)
                    _gh3000_parameter(record, io_id, value)
        records.append(record)
    return records


def _gh3000_parameter(record: Record, io_id: int, value: int) -> None:
    """GH3000 (personal tracker) IO ids, as Traccar names them."""
    attrs = record.attributes
    if io_id == 1:
        record.battery_level = float(value)
    elif io_id == 2:
        attrs["usbConnected"] = "true" if value == 1 else "false"
    elif io_id == 5:
        attrs["uptime"] = str(value)
    elif io_id in (20, 21, 22):
        attrs[{20: "hdop", 21: "vdop", 22: "pdop"}[io_id]] = str(value / 10)
    elif io_id == 67:
        record.battery = value / 1000
    elif io_id == 221:
        attrs["button"] = str(value)
    elif io_id == 222 and value == 1:
        record.alarms.append("sos")
    elif io_id == 240:
        attrs["motion"] = "true" if value == 1 else "false"
    elif io_id == 244:
        attrs["roaming"] = "true" if value == 1 else "false"


def _gh3000_gps(r: _Reader, record: Record) -> None:
    """The masked GPS element of a GH3000 record (fields in mask-bit order)."""
    mask = r.uint(1)
    if mask & GH3000_LATLON:
        lat, lon = r.unpack(FLOAT_PAIR)
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise DecodeError("GH3000 coordinates are not numbers")
        record.latitude, record.longitude = lat, lon
    if mask & GH3000_ALTITUDE:
        record.altitude = float(int.from_bytes(r.take(2), "big", signed=True))
    if mask & GH3000_ANGLE:
        record.course = r.uint(1) * GH3000_ANGLE_SCALE
    if mask & GH3000_SPEED:
        record.speed = float(r.uint(1))
    if mask & GH3000_SATELLITES:
        record.satellites = r.uint(1)
        record.valid = record.satellites > 0
    if mask & GH3000_CELL:
        record.attributes["lac"] = str(r.uint(2))
        record.attributes["cid"] = str(r.uint(2))
    if mask & GH3000_SIGNAL:
        record.attributes["rssi"] = str(r.uint(1))
    if mask & GH3000_OPERATOR:
        record.attributes["operator"] = str(r.uint(4))


def _message_records(r: _Reader, count: int, codec: int) -> tuple[str | None, list[Record]]:
    """Codec 12-15 GPRS messages: (IMEI if carried, status records for text responses)."""
    imei = None
    records = []
    for _ in range(count):
        kind = r.uint(1)
        payload = _Reader(r.take(r.uint(4)))
        sent = None
        if codec in (CODEC_13, CODEC_15):
            sent = UNIX_EPOCH + timedelta(seconds=payload.uint(MESSAGE_TIMESTAMP_SIZE))
        if codec in (CODEC_14, CODEC_15):
            digits = payload.take(MESSAGE_IMEI_SIZE).hex().lstrip("0")
            imei = digits if digits.isdigit() else imei
        if codec == CODEC_12 and kind == MESSAGE_CAMERA:
            continue
        text = _printable(payload.data[payload.pos :])
        records.append(_message_record(sent, kind, text))
    return imei, records


def _message_record(sent: datetime | None, kind: int, text: str) -> Record:
    """A text answer; `GTSL|...|driver|...` (tachograph card) gives the driver id and
    `UUUUww<axle loads;...>SSS` the axle weights, as Traccar reads them."""
    record = Record(fix_time=sent, attributes={"type": str(kind)})
    data = text.strip()
    fields = data.split("|")
    if data.startswith("GTSL") and len(fields) > 4:
        record.attributes["driverUniqueId"] = fields[4]
        return record
    values = data[6:-4].split(";")
    if data.startswith("UUUUww") and data.endswith("SSS") and len(values) >= 12:
        try:
            numbers = [float(v) for v in values[:12]]
        except ValueError:
            numbers = []
        if numbers:
            for i in range(8):
                record.attributes[f"axle{i + 1}"] = str(numbers[i])
            for key, value in zip(("loadTruck", "loadTrailer", "totalTruck", "totalTrailer"), numbers[8:], strict=True):
                record.attributes[key] = str(value)
            return record
    record.attributes["result"] = text
    return record


def _printable(data: bytes) -> str:
    stripped = data.rstrip(b"\r\n")
    if stripped.isascii() and all(0x20 <= b < 0x7F for b in stripped):
        return stripped.decode("ascii")
    return data.hex()


def _from_millis(ms: int) -> datetime:
    try:
        return UNIX_EPOCH + timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise DecodeError(f"timestamp {ms} ms out of range") from exc


def _decode_body(body: bytes, model: str | None = None, extended: bool = False) -> Decoded:
    count = _check_body(body)
    codec = body[0]
    r = _Reader(body[:-1], 2)
    device_id = None
    if codec in MESSAGE_CODECS:
        device_id, records = _message_records(r, count, codec)
    elif codec == CODEC_GH3000:
        records = _gh3000_records(r, count)
    else:
        records = _avl_records(r, count, codec, model, extended)
    kind = _data_kind(body, count)
    if kind == "position" and records[0].alarms:
        kind = "alarm"
    if r.pos != len(r.data):
        raise DecodeError(f"{len(r.data) - r.pos} bytes left after {count} records")
    return Decoded(kind, device_id, records)


# --- TCP framer ---------------------------------------------------------------------
class TeltonikaFramer(Framer):
    """Splits a TCP stream into login (`00 LL` + id), ping (`FF`) and AVL frames.

    Only headers are looked at: a frame's length is known from its first bytes,
    so no byte is ever searched twice.
    """

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if not buf:
            return None
        first = buf[0]
        if first == PING:
            del buf[:1]
            return PING_FRAME
        if first != 0:
            self._garbage(1)
        if len(buf) < 2:
            return None
        if buf[1]:  # login: 00 + id length
            if buf[1] > MAX_ID_LENGTH:
                self._garbage(2)
            need = 2 + buf[1]
        else:
            if len(buf) < HEADER_SIZE:
                if buf[2:4].strip(b"\x00"):
                    self._garbage(2)
                return None
            if buf[2:4] != b"\x00\x00":
                self._garbage(2)
            length = int.from_bytes(buf[4:8], "big")
            if length < MIN_BODY:
                self._garbage(HEADER_SIZE)
            need = length + ENVELOPE
            oversized(buf, need, self.max_frame)
        if len(buf) < need:
            return None
        return take(buf, need)

    def _garbage(self, start: int) -> NoReturn:
        """Drop bytes up to the next possible frame start (00 or FF) from `start` on.

        Both searches stop at the cut, so every dropped byte is looked at once.
        """
        buf = self._buf
        zero = buf.find(0, start)
        cut = len(buf) if zero < 0 else zero
        ping = buf.find(PING, start, cut)
        cut = cut if ping < 0 else ping
        junk = bytes(buf[:cut])
        del buf[:cut]
        raise FramingError(f"{len(junk)} bytes outside a frame", discarded=junk, reason="garbage")


# --- codec ----------------------------------------------------------------------------
class TeltonikaCodec(Codec):
    name = "teltonika"
    first_bytes = bytes(range(0x40))  # UDP: the high byte of the datagram length
    priority = 10
    replies = True
    transports = frozenset({"tcp", "udp"})
    #: the wiki caps FMB AVL packets at 1280 bytes; camera chunks (Codec 12) run a
    #: little over 2 KiB, 8 Extended BLE payloads can be larger
    max_frame = 16384

    def detect(self, head: bytes, transport: str) -> Detection:
        """TCP: the 17-byte IMEI login, or a bare AVL frame whose preamble, length,
        codec id, CRC high bytes and both counts agree (the CRC itself is left to
        `inspect`).  UDP: header length, 15-digit IMEI, codec id and counts."""
        if transport == "udp":
            return self._detect_udp(head)
        if not head:
            return Detection.MORE
        if head[0] != 0:
            return Detection.NO  # a connection never opens with a ping
        if len(head) < 2:
            return Detection.MORE
        if head[1] == IMEI_LENGTH:
            digits = head[2:LOGIN_SIZE]
            if digits and not digits.isdigit():
                return Detection.NO
            return Detection.YES if len(head) >= LOGIN_SIZE else Detection.MORE
        if head[1] == 0:
            return self._detect_tcp_data(head)
        return Detection.NO

    def _detect_tcp_data(self, head: bytes) -> Detection:
        """A bare AVL frame (a device resuming without login, or a capture)."""
        if head[:4].strip(b"\x00"):
            return Detection.NO
        if len(head) < HEADER_SIZE + 1:
            return Detection.MORE
        need = int.from_bytes(head[4:8], "big") + ENVELOPE
        if need < ENVELOPE + MIN_BODY or need > self.max_frame or head[HEADER_SIZE] not in KNOWN_CODECS:
            return Detection.NO
        if len(head) < need:
            return Detection.MORE
        body = head[HEADER_SIZE : need - CRC_FIELD_SIZE]
        if head[need - CRC_FIELD_SIZE : need - 2] != b"\x00\x00" or body[1] != body[-1]:
            return Detection.NO
        return Detection.YES

    def _detect_udp(self, datagram: bytes) -> Detection:
        try:
            _, _, imei, body = _udp_parts(datagram)
            _check_body(body)
        except DecodeError:
            return Detection.NO
        return Detection.YES if len(imei) == IMEI_LENGTH else Detection.NO

    def new_framer(self) -> Framer:
        return TeltonikaFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if transport == "udp":
            packet_id, avl_id, imei, body = _udp_parts(frame)
            count = _check_body(body)
            return FrameInfo(_data_kind(body, count), imei, _udp_ack(packet_id, avl_id, count))
        if frame == PING_FRAME:
            return FrameInfo("heartbeat")
        if frame[:1] == b"\x00" and frame[1:2] != b"\x00":
            return FrameInfo("login", _login_id(frame), LOGIN_ACCEPT)
        body = _tcp_body(frame)
        count = _check_body(body)
        if body[0] in MESSAGE_CODECS:
            return FrameInfo(_data_kind(body, count))  # answers to server commands: no ack
        return FrameInfo(_data_kind(body, count), None, count.to_bytes(4, "big"))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        model = ctx.options.get("model") or None
        extended = ctx.options.get("extended", "false").lower() == "true"
        if ctx.transport == "udp":
            _, _, imei, body = _udp_parts(frame)
            decoded = _decode_body(body, model, extended)
            decoded.device_id = imei
            return decoded
        if frame == PING_FRAME:
            return Decoded("heartbeat")
        if frame[:1] == b"\x00" and frame[1:2] != b"\x00":
            return Decoded("login", _login_id(frame))
        return _decode_body(_tcp_body(frame), model, extended)


def _login_id(frame: bytes) -> str:
    imei = frame[2:]
    if len(frame) < 2 or len(imei) != frame[1] or not _is_digits(imei):
        raise DecodeError("login frame does not carry a numeric IMEI")
    return imei.decode("ascii")


CODEC = TeltonikaCodec()
