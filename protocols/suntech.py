"""Suntech ST300/340/500/600, ST4xx, ST9xx, SA200 and the "universal" firmware (Traccar `suntech`, port 5011).

Text reports are ``;``-separated ASCII ended by a lone ``\\r`` (a ``\\r\\n`` inside serial
data does not end them).  The first field names the model and the report type::

    ST300STT;<id>;<model>;<fw>;YYYYMMDD;HH:MM:SS;<cell hex>;<lat>;<lon>;<km/h>;<course>;<sat>;<fix>;
             <odometer m>;<power V>;<io: ign in1 in2 in3 out1 out2>;<type fields>[;<hbm fields>]
    SA200STT;...            (no model field)      ST600STT;... (cell, mcc, mnc, lac, rssi after the time)
    ST500STT;...            (no cell field)       ST300ALV;<id>          keep-alive
    ST300CMD;Res;<id>;<answer...>                  ST300HTE;<id>;...;<driver>  travel report
    ST4xxSTT;<id>;<fw>;<model>;[variant;]7 x <cell>;<battery>;<live>;<index>;<status>;...;date;time;lat;lon;...
    ST910;Location|Emergency|Alert;<id>;<fw>;date;time;[cell;]lat;lon;km/h;course;fix[;odometer]
    STT|ALT|UEX|BLE|RES;<id>;<mask hex>;<fields selected by the mask bits>   universal

Type fields: ``STT`` status + message index, ``EMG`` emergency code (1 SOS, 2 parking, 3 power
cut, 5/6 door, 7 movement, 8 shock), ``EVT`` event number, ``ALT`` alert id (1 overspeed, 5/6
geofence exit/enter, 14 low battery, 15 shock, 16 collision, 40/41 power restored/cut, 42 SOS,
46/47 harsh acceleration/braking, 50 jamming, 132 door), ``UEX`` serial data (a length, then
items: ``CabAVL`` fuel, ``GTSL`` driver id, ``t_n=``/``N_n=``/``Q_D=`` hex temperature, fuel,
driving quality, else free ``serial`` text) and a checksum.

The fields after those depend on the unit's configuration, as in Traccar (options, text
``"true"``/``"false"`` or integers): ``hbm`` (0 none, 1 hour meter/battery/live flag
[/driver], 2 also the serving cell), ``includeAdc`` (3 analog inputs), ``includeRpm``,
``includeTemp`` (3 ``sensor:value`` temperatures), ``protocolType`` (1: ST9xx reports
carry a cell field and an odometer).

Binary: ``02 len(2) 10 id(5 BCD) ... 03`` (compressed ST300 report, length excludes the
header and footer) and the universal ``81``/``82`` + ``00`` binary report (``len(2)`` =
bytes after the length; id 5 BCD bytes; a 24-bit mask selects the fields like the
universal text).  Coordinates are signed decimal degrees, times UTC, speeds km/h (the
compressed report's speed is read as km/h too; Traccar stores it unconverted).
A report whose live flag is ``0`` is a buffered one (``archive``).  The server sends no
replies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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
from .kit import alarms, keys
from .kit.framing import oversized
from .kit.readers import Reader, checked_coordinates, sign_magnitude, utc, yymmdd_hhmmss

CR, LF = 0x0D, 0x0A
ZIP_START, ZIP_END, ZIP_TYPE = 0x02, 0x03, 0x10
BINARY_TYPES = frozenset({0x81, 0x82})
BINARY_ALERT = 0x82
UNIVERSAL_TYPES = (b"STT", b"ALT", b"ALV", b"UEX", b"RES", b"BLE", b"EMG", b"EVT", b"BSA", b"CRR", b"CMD")
MIN_ID_DIGITS = 5
MAX_ID_DIGITS = 10

EMERGENCIES = {
    1: alarms.SOS,
    2: alarms.PARKING,
    3: alarms.POWER_CUT,
    5: alarms.DOOR,
    6: alarms.DOOR,
    7: alarms.MOVEMENT,
    8: alarms.VIBRATION,
}
ALERTS = {
    1: alarms.OVERSPEED,
    5: alarms.GEOFENCE_EXIT,
    6: alarms.GEOFENCE_ENTER,
    14: alarms.LOW_BATTERY,
    15: alarms.VIBRATION,
    16: alarms.ACCIDENT,
    40: alarms.POWER_RESTORED,
    41: alarms.POWER_CUT,
    42: alarms.SOS,
    46: alarms.ACCELERATION,
    47: alarms.BRAKING,
    50: alarms.JAMMING,
    132: alarms.DOOR,
}
BLE_MASK = 0b1100000110110
MS_PER_MINUTE = 60_000


# ------------------------------------------------------------------ detection and framing


def _digits(raw: bytes) -> bool:
    return raw.isdigit() and raw.isascii()


_MODEL = re.compile(rb"S[TA]\d[0-9A-Z]{2}(?:[A-Z]{3})?")
_MODEL_PREFIX = re.compile(rb"S(?:[TA](?:\d(?:[0-9A-Z](?:[0-9A-Z][A-Z]{0,3})?)?)?)?")


def _detect_text(head: bytes) -> Detection:
    """`ST`/`SA` + model (3 chars, a digit first) [+ type] + `;`, or a universal
    3-letter type + `;` + 5..10 id digits."""
    first, sep, rest = head.partition(b";")
    universal = first in UNIVERSAL_TYPES
    if not sep:
        if _MODEL_PREFIX.fullmatch(first) or any(t.startswith(first) for t in UNIVERSAL_TYPES):
            return Detection.MORE
        return Detection.NO
    if _MODEL.fullmatch(first):
        return Detection.YES
    if not universal:
        return Detection.NO
    digits = 0
    while digits < len(rest) and 0x30 <= rest[digits] <= 0x39:
        digits += 1
    if digits > MAX_ID_DIGITS:
        return Detection.NO
    if digits == len(rest):
        return Detection.YES if digits == MAX_ID_DIGITS else Detection.MORE
    if digits < MIN_ID_DIGITS:
        return Detection.NO
    return Detection.YES if rest[digits] in b";\r\n" else Detection.NO


def _detect_binary(head: bytes) -> Detection:
    lead = head[0]
    if lead == ZIP_START:
        if len(head) > 3 and head[3] != ZIP_TYPE:
            return Detection.NO
        if not _bcd(head[4:9]):
            return Detection.NO
        if len(head) < 9:
            return Detection.MORE
        total = 3 + int.from_bytes(head[1:3], "big") + 1
        if len(head) < total:
            return Detection.MORE
        return Detection.YES if head[total - 1] == ZIP_END else Detection.NO
    if len(head) > 1 and head[1] != 0:
        return Detection.NO
    if not _bcd(head[3:8]):
        return Detection.NO
    if len(head) < 8:
        return Detection.MORE
    total = 3 + int.from_bytes(head[1:3], "big")
    return Detection.YES if total >= 11 else Detection.NO


def _bcd(raw: bytes) -> bool:
    """Every nibble a decimal digit (an empty run passes)."""
    return not raw or raw.hex().isdigit()


class SuntechFramer(Framer):
    """Binary frames by their length; text up to a `\\r` not followed by `\\n` (CR dropped).
    A CR that is the last byte buffered ends the report at once, as in Traccar (a unit
    sends no LF after its final CR, so waiting would hold every report back until the next)."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        while buf and buf[0] in (CR, LF):
            del buf[:1]
            self._scan = 0
        if not buf:
            return None
        if buf[0] == ZIP_START or (len(buf) > 1 and buf[1] == 0):
            if len(buf) < 3:
                return None
            total = 3 + int.from_bytes(buf[1:3], "big") + (1 if buf[0] == ZIP_START else 0)
            oversized(buf, total, self.max_frame)
            if len(buf) < total:
                return None
            frame = bytes(buf[:total])
            del buf[:total]
            self._scan = 0
            return frame
        if len(buf) == 1:
            return None
        i = self._scan
        while True:
            i = buf.find(b"\r", i)
            if i < 0:
                self._scan = len(buf)
                if len(buf) > self.max_frame:
                    junk = bytes(buf)
                    buf.clear()
                    self._scan = 0
                    raise FramingError(
                        f"no end marker within {self.max_frame} bytes",
                        discarded=junk,
                        fatal=True,
                        reason="frame too large",
                    )
                return None
            if i + 1 < len(buf) and buf[i + 1] == LF:
                i += 1
                continue
            break
        frame = bytes(buf[:i])
        del buf[: i + 1]
        self._scan = 0
        if len(frame) > self.max_frame:
            raise FramingError(f"frame of {len(frame)} bytes", discarded=frame, fatal=True, reason="frame too large")
        return frame


# ------------------------------------------------------------------ options


class _Options:
    __slots__ = ("adc", "hbm", "protocol_type", "rpm", "temp")

    def __init__(self, options: Mapping[str, str]) -> None:
        self.hbm = _int_option(options, "hbm")
        self.protocol_type = _int_option(options, "protocolType")
        self.adc = options.get("includeAdc", "false").lower() == "true"
        self.rpm = options.get("includeRpm", "false").lower() == "true"
        self.temp = options.get("includeTemp", "false").lower() == "true"


def _int_option(options: Mapping[str, str], key: str) -> int:
    raw = options.get(key, "0")
    try:
        return int(raw)
    except ValueError:
        raise DecodeError(f"option {key} must be an integer, not {raw!r}", reason="config") from None


# ------------------------------------------------------------------ text helpers


class _Fields:
    """A cursor over the `;` fields of a text report; a missing or malformed field is a DecodeError."""

    __slots__ = ("i", "values")

    def __init__(self, values: list[str], i: int = 0) -> None:
        self.values = values
        self.i = i

    @property
    def left(self) -> int:
        return len(self.values) - self.i

    def next(self) -> str:
        if self.i >= len(self.values):
            raise DecodeError("truncated Suntech report")
        value = self.values[self.i]
        self.i += 1
        return value

    def skip(self, n: int = 1) -> None:
        self.i += n

    def peek(self) -> str:
        return self.values[self.i] if self.i < len(self.values) else ""

    def int(self, base: int = 10) -> int:
        value = self.next()
        pattern = _HEX if base == 16 else _INTEGER
        if not pattern.fullmatch(value):
            raise DecodeError(f"bad integer field {value!r}")
        return int(value, base)

    def float(self) -> float:
        return _float(self.next())


def _time(day: str, clock: str):
    """`YYYYMMDD` + `HH:MM:SS` as UTC."""
    compact = clock.replace(":", "")
    if len(day) != 8 or len(compact) != 6 or not (day + compact).isascii() or not (day + compact).isdigit():
        raise DecodeError(f"bad date/time {day} {clock}")
    moment = yymmdd_hhmmss(day[2:], compact)
    if moment is None or day[:2] != "20":
        moment = utc(int(day[:4]), int(day[4:6]), int(day[6:]), int(compact[:2]), int(compact[2:4]), int(compact[4:]))
    if moment is None:
        raise DecodeError(f"bad date/time {day} {clock}")
    return moment


def _position(record: Record, f: _Fields) -> None:
    """lat; lon; km/h; course (decimal degrees)."""
    latitude, longitude = f.float(), f.float()
    record.latitude, record.longitude = checked_coordinates(latitude, longitude)
    record.speed = f.float()
    record.course = f.float()


_INTEGER = re.compile(r"[+-]?\d+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _float(text: str) -> float:
    """A plain decimal number (no exponents, `inf`, `nan` or underscores)."""
    if not _DECIMAL.fullmatch(text):
        raise DecodeError(f"bad number field {text!r}")
    return float(text)


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _cell(attrs: dict[str, str], cid: int, mcc: int | None = None, mnc: int | None = None, lac: int | None = None):
    attrs[keys.CELL_ID] = str(cid)
    if mcc is not None:
        attrs[keys.MCC] = str(mcc)
    if mnc is not None:
        attrs[keys.MNC] = str(mnc)
    if lac is not None:
        attrs[keys.LAC] = str(lac)


# ------------------------------------------------------------------ codec


def _split(frame: bytes) -> list[str]:
    text = frame.decode("latin-1")
    if text.endswith("\r"):
        text = text[:-1]
    return text.split(";")


def _text_kind(values: list[str]) -> tuple[str, str | None]:
    """(kind, device id) of a text report."""
    prefix = values[0]
    rest = values[1:]
    if prefix.startswith("ST9") and rest and rest[0] in ("Location", "Emergency", "Alert"):
        return ("position" if rest[0] == "Location" else "alarm"), (rest[1] if len(rest) > 1 else None)
    kind_of = prefix[5:] if len(prefix) >= 5 else prefix
    if rest and rest[0] == "Res":
        return "status", (rest[1] if len(rest) > 1 else None)
    ident = rest[0] if rest else None
    if kind_of == "ALV":
        return "heartbeat", ident
    if kind_of in ("EMG", "ALT"):
        return "alarm", ident
    if kind_of in ("RES", "CMD", "HTE", "CRR"):
        return "status", ident
    if kind_of in ("STT", "EVT", "UEX", "BLE"):
        return "position", ident
    return "other", ident


def _is_binary(frame: bytes) -> bool:
    return bool(frame) and (frame[0] == ZIP_START or (len(frame) > 1 and frame[1] == 0))


class SuntechCodec(Codec):
    name = "suntech"
    first_bytes = b"SAUBREC\x02\x81\x82"
    priority = 30
    replies = False
    transports = frozenset({"tcp"})
    max_frame = 4096

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == ZIP_START or head[0] in BINARY_TYPES:
            return _detect_binary(head)
        return _detect_text(head)

    def new_framer(self) -> Framer:
        return SuntechFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if _is_binary(frame):
            if len(frame) < 9:
                raise DecodeError("short Suntech binary frame")
            if frame[0] == ZIP_START:
                return FrameInfo("position", frame[4:9].hex()[:9], None)
            kind = "alarm" if frame[0] == BINARY_ALERT else "position"
            return FrameInfo(kind, frame[3:8].hex(), None)
        values = _split(frame)
        kind, ident = _text_kind(values)
        return FrameInfo(kind, ident, None)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        options = _Options(ctx.options)
        if _is_binary(frame):
            if frame[0] == ZIP_START:
                ident, record = _decode_zip(frame, options)
                kind = "position"
            else:
                ident, record = _decode_binary(frame)
                kind = "alarm" if record.alarms else "position"
            return Decoded(kind, ident, [record] if record else [])
        values = _split(frame)
        kind, ident = _text_kind(values)
        prefix = values[0]
        record: Record | None
        if prefix == "CRR":
            return Decoded("status", ident, [])  # crash report: multi-part accelerometer dump
        if len(prefix) < 5:
            record = _decode_universal(values)
        elif prefix.endswith("HTE"):
            record = _decode_travel(values)
        elif prefix.startswith("ST9"):
            record = _decode_9(values, options)
        elif prefix.startswith("ST4"):
            record = _decode_4(values)
        elif prefix.startswith("S"):
            record = _decode_2356(values, options)
        else:
            record = None
        if record is None:
            return Decoded(kind if kind != "position" else "other", ident, [])
        if record.archive and kind == "position":
            kind = "batch"
        if kind == "position" and not record.has_position:
            kind = "status"
        return Decoded(kind, ident, [record])


# ------------------------------------------------------------------ ST300 family


def _decode_2356(values: list[str], options: _Options) -> Record | None:
    protocol, kind = values[0][:5], values[0][5:]
    f = _Fields(values, 1)
    record = Record()
    attrs = record.attributes
    attrs[keys.TYPE] = kind
    if f.peek() == "Res":
        f.skip(2)
        attrs[keys.RESULT] = ";".join(values[f.i :])
        return record
    if kind not in ("STT", "EMG", "EVT", "ALT", "UEX"):
        return None
    f.skip()  # device id
    if protocol.startswith("ST3") or protocol in ("ST500", "ST600"):
        f.skip()  # model
    attrs[keys.VERSION_FW] = f.next()
    record.fix_time = _time(f.next(), f.next())
    if protocol != "ST500":
        cid = f.int(16)
        if protocol == "ST600":
            mcc, mnc, lac = f.int(), f.int(), f.int(16)
            attrs[keys.RSSI] = str(f.int())
            _cell(attrs, cid, mcc, mnc, lac)
        else:
            _cell(attrs, cid)
    _position(record, f)
    record.satellites = f.int()
    record.valid = f.next() == "1"
    record.odometer = float(f.int())
    record.power = f.float()
    io = f.next()
    if len(io) >= 6:
        record.ignition = io[0] == "1"
        for n, ch in enumerate(io[1:4], 1):
            attrs[f"in{n}"] = "true" if ch == "1" else "false"
        for n, ch in enumerate(io[4:6], 1):
            attrs[f"out{n}"] = "true" if ch == "1" else "false"
    if kind == "STT":
        attrs[keys.STATUS] = str(f.int())
        attrs[keys.INDEX] = str(f.int())
    elif kind == "EMG":
        _add(record, EMERGENCIES.get(f.int()))
    elif kind == "EVT":
        attrs[keys.EVENT] = str(f.int())
    elif kind == "ALT":
        _add(record, ALERTS.get(f.int()))
    elif kind == "UEX":
        _serial_data(record, f)
    if options.hbm >= 1:
        _hbm(record, f, options)
    return record


def _add(record: Record, alarm: str | None) -> None:
    if alarm and alarm not in record.alarms:
        record.alarms.append(alarm)


def _hbm(record: Record, f: _Fields, options: _Options) -> None:
    attrs = record.attributes
    if f.left > 0:
        attrs[keys.HOURS] = str(f.int() * MS_PER_MINUTE)
    if f.left > 0:
        record.battery = f.float()
    if f.left > 0 and f.next() == "0":
        record.archive = True
    if options.adc:
        for n in range(1, 4):
            if f.left > 0:
                value = f.next()
                if value:
                    attrs[f"adc{n}"] = _number_text(_float(value))
    if options.rpm and f.left > 0:
        attrs[keys.RPM] = str(f.int())
    if f.left >= (2 if options.hbm == 1 else 7):
        driver = f.next()
        if driver:
            attrs[keys.DRIVER_UNIQUE_ID] = driver
        f.skip()  # registered
    if options.temp:
        for n in range(1, 4):
            raw = f.next()
            value = raw[raw.find(":") + 1 :]
            if value:
                attrs[f"temp{n}"] = _number_text(_float(value))
    if options.hbm >= 2 and f.left >= 5:
        cid, mcc, mnc, rssi, lac = (f.int() for _ in range(5))
        _cell(attrs, cid, mcc, mnc, lac)
        attrs[keys.RSSI] = str(rssi)


def _serial_data(record: Record, f: _Fields) -> None:
    """UEX: announced length, then items until that many characters are read, then a checksum."""
    attrs = record.attributes
    remaining = f.int()
    total_fuel = 0.0
    while remaining > 0:
        item = f.next()
        if item.startswith("CabAVL"):
            parts = item.split(",")
            for n, raw in ((1, parts[2:3]), (2, parts[3:4])):
                value = float(raw[0]) if raw and _DECIMAL.fullmatch(raw[0]) else 0.0
                if value > 0:
                    total_fuel += value
                    attrs[f"fuel{n}"] = _number_text(value)
        elif item.startswith("GTSL"):
            parts = item.split("|")
            if len(parts) > 4:
                attrs[keys.DRIVER_UNIQUE_ID] = parts[4]
        elif "=" in item:
            name, _, raw = item.partition("=")
            value = raw.split("=", 1)[0].strip().split(".", 1)[0]
            try:
                number = int(value, 16)
            except ValueError:
                number = None
            if number is not None and len(name) > 2:
                if name[0] == "t":
                    attrs[f"temp{name[2]}"] = str(number)
                elif name[0] == "N":
                    total_fuel += number
                    attrs[f"fuel{name[2]}"] = str(number)
                elif name[0] == "Q":
                    attrs["drivingQuality"] = str(number)
        else:
            attrs["serial"] = item.strip()
        remaining -= len(item) + 1
    if total_fuel > 0:
        attrs[keys.FUEL] = _number_text(total_fuel)
    f.skip()  # checksum


def _decode_travel(values: list[str]) -> Record:
    record = Record()
    record.attributes[keys.TYPE] = values[0][5:]
    record.attributes[keys.DRIVER_UNIQUE_ID] = values[-1]
    return record


# ------------------------------------------------------------------ ST9xx


def _decode_9(values: list[str], options: _Options) -> Record | None:
    f = _Fields(values, 1)
    kind = f.next()
    if kind not in ("Location", "Emergency", "Alert"):
        return None
    f.skip()  # device id
    record = Record()
    if kind != "Location":
        record.alarms.append(alarms.GENERAL)
    if kind != "Alert" or options.protocol_type == 0:
        record.attributes[keys.VERSION_FW] = f.next()
    record.fix_time = _time(f.next(), f.next())
    if options.protocol_type == 1:
        f.skip()  # cell
    _position(record, f)
    record.valid = f.next() == "1"
    if options.protocol_type == 1:
        record.odometer = float(f.int())
    return record


# ------------------------------------------------------------------ ST4xx


def _decode_4(values: list[str]) -> Record | None:
    kind = values[0][5:]
    if kind not in ("STT", "ALT"):
        return None
    f = _Fields(values, 1)
    f.skip()  # device id
    record = Record()
    attrs = record.attributes
    attrs[keys.TYPE] = kind
    attrs[keys.VERSION_FW] = f.next()
    model = f.int()
    if model == 41:
        f.skip()  # variant
    for n in range(7):
        cid, mcc, mnc = f.int(), f.int(), f.int()
        if n == 0:
            rssi, lac = f.int(), f.int()
        else:
            lac, rssi = f.int(), f.int()
        f.skip()  # timing advance
        if n == 0 and cid > 0:
            _cell(attrs, cid, mcc, mnc, lac)
            attrs[keys.RSSI] = str(rssi)
    record.battery = f.float()
    record.archive = f.next() == "0"
    attrs[keys.INDEX] = str(f.int())
    attrs[keys.STATUS] = str(f.int())
    if len(f.peek()) == 3:
        f.skip()  # collaborative network
    if model == 41:
        f.skip(2)  # collaborative network, temperature
        attrs[keys.MOTION] = "true" if f.int() == 2 else "false"
    if not f.peek():
        return record
    record.fix_time = _time(f.next(), f.next())
    _position(record, f)
    record.satellites = f.int()
    record.valid = f.next() == "1"
    return record


# ------------------------------------------------------------------ universal text


def _decode_universal(values: list[str]) -> Record | None:
    kind = values[0]
    if kind not in ("STT", "ALT", "BLE", "RES", "UEX"):
        return None
    f = _Fields(values, 1)
    f.skip()  # device id
    record = Record()
    attrs = record.attributes
    attrs[keys.TYPE] = kind
    if kind == "RES":
        attrs[keys.RESULT] = ";".join(values[f.i :])
        return record
    mask = BLE_MASK if kind == "BLE" else f.int(16)

    def has(bit: int) -> bool:
        return bool(mask >> bit & 1)

    if has(1):
        f.skip()  # model
    if has(2):
        attrs[keys.VERSION_FW] = f.next()
    if has(3) and f.next() == "0":
        record.archive = True
    if has(4) and has(5):
        record.fix_time = _time(f.next(), f.next())
    cid = f.int(16) if has(6) else None
    mcc = f.int() if has(7) else None
    mnc = f.int() if has(8) else None
    lac = f.int(16) if has(9) else None
    if cid is not None:
        _cell(attrs, cid, mcc, mnc, lac)
    if has(10):
        attrs[keys.RSSI] = str(f.int())
    latitude = f.float() if has(11) else None
    longitude = f.float() if has(12) else None
    if latitude is not None and longitude is not None:
        record.latitude, record.longitude = checked_coordinates(latitude, longitude)
    if kind == "BLE":
        record.valid = True
        for n in range(1, f.int() + 1):
            attrs[f"tag{n}Rssi"] = str(f.int())
            f.skip(2)  # rssi min, max
            attrs[f"tag{n}Id"] = f.next()
            attrs[f"tag{n}Samples"] = str(f.int())
            attrs[f"tag{n}Major"] = str(f.int())
            attrs[f"tag{n}Minor"] = str(f.int())
        return record
    if has(13):
        record.speed = f.float()
    if has(14):
        record.course = f.float()
    if has(15):
        record.satellites = f.int()
    if has(16):
        record.valid = f.next() == "1"
    if has(17):
        inputs = f.int()
        record.ignition = bool(inputs & 1)
        attrs[keys.INPUT] = str(inputs)
    if has(18):
        attrs[keys.OUTPUT] = str(f.int())
    if kind == "ALT":
        if has(19):
            _add(record, ALERTS.get(f.int()))
        if has(20):
            attrs["alertModifier"] = f.next()
        if has(21):
            attrs["alertData"] = f.next()
    elif kind == "UEX":
        _serial_data(record, f)
    else:
        if has(19):
            attrs["mode"] = str(f.int())
        if has(20):
            attrs["reason"] = str(f.int())
        if has(21):
            attrs[keys.INDEX] = str(f.int())
    if has(22):
        f.skip()  # reserved
    if has(23) and kind != "UEX":
        assigned = f.int(16)
        for bit in range(31):
            if assigned >> bit & 1:
                attrs[f"io{bit + 1}"] = f.next()
    n = 1
    while f.left > 0:
        value = f.next()
        if value:
            attrs[f"assign{n}"] = value
        n += 1
    return record


# ------------------------------------------------------------------ binary


def _bcd_value(r: Reader, digits: int) -> int:
    raw = r.bcd(digits // 2)
    if not raw.isdigit():
        raise DecodeError(f"not BCD: {raw}")
    return int(raw)


def _decode_zip(frame: bytes, options: _Options) -> tuple[str, Record | None]:
    r = Reader(frame)
    r.skip(3)
    if r.u8() != ZIP_TYPE:
        return "", None
    ident = r.bcd(5)[:9]
    r.skip(3)  # model, software version
    record = Record()
    attrs = record.attributes
    y, mo, d, h, mi, s = (r.u8() for _ in range(6))
    record.fix_time = utc(y, mo, d, h, mi, s)
    r.skip(3)  # lac, cid
    latitude = r.u8() + _bcd_value(r, 6) / 1e6
    longitude = r.u8() + _bcd_value(r, 6) / 1e6
    record.speed = r.u16() + _bcd_value(r, 2) / 100
    record.course = r.u16() + _bcd_value(r, 2) / 100
    flags = r.u8()
    record.valid = bool(flags & 0x80)
    if flags & 0x40:
        latitude = -latitude
    if flags & 0x20:
        longitude = -longitude
    record.latitude, record.longitude = checked_coordinates(latitude, longitude)
    record.odometer = float(r.u32())
    record.power = r.u8() + _bcd_value(r, 2) / 100
    io = r.u8()
    record.ignition = bool(io & 1)
    for n in range(1, 4):
        attrs[f"in{n}"] = "true" if io >> n & 1 else "false"
    for n in range(1, 3):
        attrs[f"out{n}"] = "true" if io >> (n + 3) & 1 else "false"
    attrs[keys.EVENT] = str(r.u8())
    if options.hbm == 1:
        attrs[keys.HOURS] = str(r.u32())
        record.battery = float(r.u16())
        record.archive = r.u8() == 0
    elif options.hbm == 2:
        cid, mcc, mnc, rssi, lac = r.u16(), r.u16(), r.u8(), r.u16(), r.u16()
        _cell(attrs, cid, mcc, mnc, lac)
        attrs[keys.RSSI] = str(rssi)
        r.skip(1)  # timing advance
    return ident, record


def _decode_binary(frame: bytes) -> tuple[str, Record]:
    r = Reader(frame)
    kind = r.u8()
    r.skip(2)
    ident = r.bcd(5)
    mask = r.u24()
    record = Record()
    attrs = record.attributes

    def has(bit: int) -> bool:
        return bool(mask >> bit & 1)

    if has(1):
        r.skip(1)  # model
    if has(2):
        attrs[keys.VERSION_FW] = f"{r.u8()}.{r.u8()}.{r.u8()}"
    if has(3) and r.u8() == 0:
        record.archive = True
    if has(4) and has(5):
        y, mo, d, h, mi, s = (r.u8() for _ in range(6))
        record.fix_time = utc(y, mo, d, h, mi, s)
    if has(6):
        attrs[keys.CELL_ID] = str(r.u32())
    if has(7):
        attrs[keys.MCC] = str(r.u16())
    if has(8):
        attrs[keys.MNC] = str(r.u16())
    if has(9):
        attrs[keys.LAC] = str(r.u16())
    if has(10):
        attrs[keys.RSSI] = str(r.u8())
    latitude = sign_magnitude(r.u32(), 32) / 1e6 if has(11) else None
    longitude = sign_magnitude(r.u32(), 32) / 1e6 if has(12) else None
    if latitude is not None and longitude is not None:
        record.latitude, record.longitude = checked_coordinates(latitude, longitude)
    if has(13):
        record.speed = r.u16() / 100
    if has(14):
        record.course = r.u16() / 100
    if has(15):
        record.satellites = r.u8()
    if has(16):
        record.valid = r.u8() > 0
    if has(17):
        inputs = r.u8()
        record.ignition = bool(inputs & 1)
        attrs[keys.INPUT] = str(inputs)
    if has(18):
        attrs[keys.OUTPUT] = str(r.u8())
    alert = 0
    if has(19):
        alert = r.u8()
        if kind == BINARY_ALERT:
            _add(record, ALERTS.get(alert))
    if has(20):
        r.skip(2)  # alert modifier
    if has(21) and alert == 59:
        attrs[keys.DRIVER_UNIQUE_ID] = r.bytes(8).hex()
    return ident, record


CODEC = SuntechCodec()
