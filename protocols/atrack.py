"""ATrack AK/AX/AY series (Taiwan; AK11, AX7 ...; Traccar `atrack`), TCP and UDP.

Four message shapes share the port:

* keep-alive, 12 bytes: ``FE 02`` unit id (uint64, the IMEI) sequence (uint16).  The server
  echoes it unchanged.
* binary reports::

      prefix(2: '@P', '@R' photo, '@Z' ..., or two other bytes)  CRC(2)  length(2)  seq(2)
      unit id(8)  records...            total = length + 6; CRC-16/ARC over length..end

  each record: fix time, device time, send time (uint32 unix each; with option
  ``longDate``: year(2) month day hour minute second then 14 skipped bytes), longitude,
  latitude (int32, 1e-6 deg), course(2), report id(1), odometer(4, 0.1 km), HDOP(2, 0.1),
  inputs(1), speed(2, km/h), outputs(1), analog 1(2, mV), driver id (NUL-terminated),
  temp1, temp2 (int16, 0.1 C), text message (NUL-terminated; ``FULS:F= t= N=`` is a fuel
  reading), then with option ``custom`` the custom fields: their list comes from option
  ``form`` (``%CI%MV%BV...``) or, without it, from a ``%CI...`` string leading each record.
  ``@R`` frames carry photo chunks (time, index, count, length, JPEG bytes): no position.
* text reports: ``@P,<CRC hex>,<length>,<seq>,<unit id>,`` then one or more ``\\r\\n``-ended
  lines ``time,rtc time,device time,lon,lat,course,report id,odometer,hdop,inputs,speed,
  outputs,adc,driver,temp1,temp2,message,custom...`` (time as unix seconds or
  ``yyyyMMddHHmmss``; odometer in 0.1 km; custom fields as above, comma separated).  The length
  counts from the comma after the length field to the end (one more byte if a lone ``\\n``
  follows); the prefix may be two bytes other than ``@P``.
* command answers ``$INFO=<unit id>,<model>,<firmware>,...``, ``$OK``, ``$ERROR=<code>`` ... ``\\r\\n``.

Replies: every binary or text report -> ``FE 02`` + unit id (uint64) + the report's sequence
(uint16).  For text reports Traccar writes the *length* field into the id slot; this codec
writes the unit id, as for binary reports (no ATrack document at hand says otherwise).
Binary frames whose CRC fails raise ChecksumError and are not acknowledged; the text CRC is
not verified (the public text captures do not all carry a matching one).

Options (Traccar's ``atrack.*`` keys): ``longDate``, ``custom``, ``form``, ``frameMask``
(``1``: ``%BC`` is a list of length/id/MAC/temperature beacon entries), ``decimalFuel``,
``alarmMap`` (``reportId=alarm,...``).  Speeds are km/h on the wire and stay so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
from .kit import alarms, keys
from .kit.checksums import CRC16_ARC
from .kit.framing import garbage, no_end_marker, oversized
from .kit.readers import Reader, unix, utc

KEEPALIVE = b"\xfe\x02"
KEEPALIVE_LEN = 12
BINARY_HEADER = 16  # prefix, CRC, length, sequence, unit id
MIN_RECORD = 40
MAX_UNIT_ID = 10**16
INFO_TOKENS = (b"$INFO=", b"$OK", b"$ERROR=")
_FULS = re.compile(r"FULS:F=([0-9A-Fa-f]+) t=([0-9A-Fa-f]+) N=([0-9A-Fa-f]+)")
_TEXT_HEAD = re.compile(rb"..,([0-9A-Fa-f]{1,4}),(\d+),(\d+),(\d+),", re.DOTALL)
MILE = 1609.344


# --- detection ---------------------------------------------------------------------------
def _detect_keepalive(head: bytes) -> Detection:
    if len(head) < KEEPALIVE_LEN:
        return Detection.MORE
    return Detection.YES if int.from_bytes(head[2:10], "big") < MAX_UNIT_ID else Detection.NO


def _detect_text(head: bytes) -> Detection:
    """`xx,` + CRC hex + `,` length `,` seq `,` unit id `,`."""
    state = 0  # 0 crc, 1 length, 2 seq, 3 id
    run = 0
    for b in head[3:64]:
        if b == 0x2C:
            if run == 0:
                return Detection.NO
            if state == 3:
                return Detection.YES
            state, run = state + 1, 0
            continue
        ok = (chr(b) in "0123456789ABCDEFabcdef" and run < 4) if state == 0 else (0x30 <= b <= 0x39 and run < 20)
        if not ok:
            return Detection.NO
        run += 1
    return Detection.MORE if len(head) < 64 else Detection.NO


def _binary_sizes(head: bytes | bytearray) -> int | None:
    return int.from_bytes(head[4:6], "big") + 6 if len(head) >= 6 else None


def _detect_binary(head: bytes, max_frame: int) -> Detection:
    if head[0] == 0x40 and len(head) > 1 and not (0x41 <= head[1] <= 0x5A and head[1] != 0x4E):
        return Detection.NO  # '@' + capital (not Navtelecom's '@NTC', not Castel's '@@')
    total = _binary_sizes(head)
    if total is None:
        return Detection.MORE
    if total < BINARY_HEADER or total > max_frame:
        return Detection.NO
    if len(head) >= BINARY_HEADER and int.from_bytes(head[8:16], "big") >= MAX_UNIT_ID:
        return Detection.NO
    if len(head) < total:
        return Detection.MORE
    return Detection.YES if CRC16_ARC(head[4:total]) == int.from_bytes(head[2:4], "big") else Detection.NO


def _detect_info(head: bytes) -> Detection:
    for token in INFO_TOKENS:
        n = min(len(head), len(token))
        if head[:n] == token[:n]:
            if len(head) < len(token):
                return Detection.MORE
            if token != b"$OK" or len(head) == len(token) or head[len(token)] in b"\r\n":
                return Detection.YES
    return Detection.NO


# --- framing -----------------------------------------------------------------------------
class AtrackFramer(Framer):
    """Keep-alives (12 B), binary reports (length + 6), text reports (length rule), `$` lines."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        while buf and buf[0] in b"\r\n":
            del buf[:1]
            self._scan = 0
        if len(buf) < 3:
            return None
        if buf[:2] == KEEPALIVE:
            return self._take(KEEPALIVE_LEN) if len(buf) >= KEEPALIVE_LEN else None
        if buf[0] == 0x24:
            end = buf.find(b"\n", self._scan)
            if end < 0:
                self._scan = len(buf)
                if len(buf) > self.max_frame:
                    raise no_end_marker(buf, self.max_frame)
                return None
            return self._take(end + 1)
        # `@P,` text -- unless the `,` is the high byte of a binary report's CRC
        text_verdict = _detect_text(bytes(buf[:64])) if buf[2] == 0x2C else Detection.NO
        if text_verdict is Detection.MORE:
            return None
        if text_verdict is Detection.YES:
            match = _TEXT_HEAD.match(bytes(buf[:64]))
            if match is None:
                raise self._garbage()
            total = match.end(2) + int(match.group(2))
            oversized(buf, total, self.max_frame)
            if len(buf) <= total:
                return None if len(buf) < total else self._take(total)
            if buf[total] == 0x0A:
                total += 1
            return self._take(total)
        if buf[0] in b"@\x02\x03":
            verdict = _detect_binary(bytes(buf[:BINARY_HEADER]), self.max_frame)
            if verdict is Detection.NO:
                total = _binary_sizes(buf)
                if total is not None and total > self.max_frame:
                    oversized(buf, total, self.max_frame)
                raise self._garbage()
            if len(buf) < BINARY_HEADER:
                return None
            total = _binary_sizes(buf) or 0
            return self._take(total) if len(buf) >= total else None
        raise self._garbage()

    def _take(self, size: int) -> bytes:
        frame = bytes(self._buf[:size])
        del self._buf[:size]
        self._scan = 0
        return frame

    def _garbage(self) -> FramingError:
        buf = self._buf
        cut = 1
        while cut < len(buf) and buf[cut] not in b"@\xfe$":
            cut += 1
        self._scan = 0
        return garbage(buf, cut)


# --- helpers -----------------------------------------------------------------------------
def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _cstring(r: Reader) -> str | None:
    raw = r.until(0)
    return raw.decode("latin-1") if raw else None


def _true(options: Mapping[str, str], key: str) -> bool:
    return options.get(key, "false").strip().lower() == "true"


class _Settings:
    __slots__ = ("alarm_map", "custom", "decimal_fuel", "form", "frame_mask", "long_date")

    def __init__(self, options: Mapping[str, str]) -> None:
        self.long_date = _true(options, "longDate")
        self.decimal_fuel = _true(options, "decimalFuel")
        self.form = options.get("form") or None
        self.custom = _true(options, "custom") or self.form is not None
        try:
            self.frame_mask = int(options.get("frameMask", "0") or 0)
        except ValueError as exc:
            raise DecodeError("atrack frameMask must be an integer", reason="config") from exc
        self.alarm_map: dict[int, str] = {}
        for pair in options.get("alarmMap", "").split(","):
            key, eq, value = pair.partition("=")
            if eq and key.strip().isdigit() and value.strip():
                self.alarm_map[int(key)] = value.strip()


def _form_keys(form: str) -> list[str]:
    return [k for k in form.strip().lstrip("%").split("%")] if form.strip() else []


class _Cell:
    __slots__ = ("cid", "lac", "mcc", "mnc", "rssi")

    def __init__(self) -> None:
        self.cid = self.lac = self.mcc = self.mnc = self.rssi = None

    def apply(self, rec: Record, binary: bool) -> None:
        complete = None not in (self.mcc, self.mnc, self.cid, self.lac) and (not binary or self.cid != 0)
        if complete:
            rec.attributes.update(
                {keys.MCC: str(self.mcc), keys.MNC: str(self.mnc), keys.LAC: str(self.lac), keys.CELL_ID: str(self.cid)}
            )
            if self.rssi is not None:
                rec.attributes[keys.RSSI] = str(self.rssi)
        elif self.rssi is not None:
            rec.attributes[keys.RSSI] = str(self.rssi)


# --- custom fields, text ---------------------------------------------------------------------
_TEXT_INT: dict[str, tuple[str, float]] = {
    "PC": ("count1", 1),
    "RP": (keys.RPM, 1),
    "GS": (keys.RSSI, 1),
    "TR": (keys.THROTTLE, 1),
    "ET": (keys.COOLANT_TEMP, 1),
    "FL": (keys.FUEL, 1),
    "FC": (keys.FUEL_CONSUMPTION, 1),
    "AV1": ("adc1", 1),
    "IA": ("intakeTemp", 1),
    "EL": (keys.ENGINE_LOAD, 1),
}


def _text_custom(rec: Record, values: list[str], form_keys: list[str], frame_mask: int) -> None:
    a = rec.attributes
    cell = _Cell()
    for key, value in zip(form_keys, values, strict=False):
        try:
            if key == "SA":
                rec.satellites = int(value)
            elif key == "MV":
                rec.power = int(value) / 10
            elif key == "BV":
                rec.battery = int(value) / 10
            elif key == "GQ":
                cell.rssi = int(value)
            elif key == "CE":
                cell.cid = int(value)
            elif key == "LC":
                cell.lac = int(value)
            elif key == "CN":
                if len(value) > 3:
                    cell.mcc, cell.mnc = int(value[:3]), int(value[3:])
            elif key == "AT":
                rec.altitude = float(int(value))
            elif key == "DT":
                rec.archive = int(value) == 1
            elif key == "VN":
                a[keys.VIN] = value
            elif key == "CD":
                a[keys.ICCID] = value
            elif key == "EH":
                a[keys.HOURS] = str(round(int(value) / 10 * 3600000))
            elif key in ("HA", "HB", "HC"):
                if int(value) > 0:
                    rec.alarms.append({"HA": alarms.ACCELERATION, "HB": alarms.BRAKING, "HC": alarms.CORNERING}[key])
            elif key == "MT":
                a[keys.MOTION] = _bool(int(value) > 0)
            elif key == "BC":
                _beacons_text(rec, value, frame_mask)
            elif key in _TEXT_INT:
                name, _ = _TEXT_INT[key]
                a[name] = str(int(value))
        except (ValueError, DecodeError):
            continue  # an empty or malformed field: Traccar fails the line, we skip the field
    cell.apply(rec, binary=False)


def _beacons_text(rec: Record, value: str, frame_mask: int) -> None:
    if frame_mask == 1:
        r = Reader(bytes.fromhex(value))
        index = 1
        while r.remaining > 0:
            length = r.u8()
            entry = r.sub(max(length, 0))
            ident = entry.u8()
            entry.skip(6)  # MAC
            if ident == 0xE0:
                rec.attributes[f"tag{index}Temp"] = _num(entry.i16() / 100)
            index += 1
        return
    mode, _, rest = value.partition(":")
    mask, _, data = rest.partition(":")
    _beacons(rec, int(mode), int(mask), Reader(bytes.fromhex(data)))


def _beacons(rec: Record, mode: int, mask: int, r: Reader) -> None:
    a = rec.attributes
    i = 1
    while r.remaining > 0:
        if mask & 0x80:
            a[f"tag{i}Id"] = r.bytes(6).hex()
        if mode == 1:
            r.skip((2 if mask & 0x40 else 0) + (2 if mask & 0x20 else 0) + (1 if mask & 0x10 else 0))
            if mask & 0x08:
                a[f"tag{i}Rssi"] = str(r.u8())
        elif mode == 2:
            if mask & 0x40:
                r.skip(2)
            if mask & 0x20:
                a[f"tag{i}Temp"] = str(r.u16())
            if mask & 0x10:
                r.skip(1)
            if mask & 0x08:
                a[f"tag{i}Rssi"] = str(r.u8())
        elif mode == 3:
            if mask & 0x40:
                a[f"tag{i}Humidity"] = str(r.u16())
            if mask & 0x20:
                a[f"tag{i}Temp"] = str(r.u16())
            if mask & 0x08:
                a[f"tag{i}Rssi"] = str(r.u8())
            if mask & 0x04:
                r.skip(2)
        elif mode == 4:
            if mask & 0x40:
                hardware = r.u8()
                if mask & 0x20:
                    r.skip({1: 11, 4: 11, 2: 2, 3: 6, 5: 10}.get(hardware, 0))
            if mask & 0x10:
                r.skip(9)
        else:
            raise DecodeError(f"unknown beacon mode {mode}")
        i += 1


# --- custom fields, binary -------------------------------------------------------------------
# key -> (size: 1/2/4/8 unsigned, 0 = NUL-terminated string, -n = skip n bytes; attribute; scale)
_BINARY: dict[str, tuple[int, str | None, float]] = {
    "MT": (1, keys.MOTION, 0),
    "RL": (1, None, 1),
    "PC": (4, "count1", 1),
    "RP": (2, keys.RPM, 1),
    "GS": (1, keys.RSSI, 1),
    "MF": (2, None, 1),
    "EL": (1, None, 1),
    "TR": (1, keys.THROTTLE, 1),
    "ET": (2, "temp1", 1),
    "FL": (1, keys.FUEL, 1),
    "ML": (1, None, 1),
    "FC": (4, keys.FUEL_CONSUMPTION, 1),
    "CI": (0, None, 1),
    "AV1": (2, "adc1", 1),
    "NC": (0, None, 1),
    "SM": (2, None, 1),
    "GL": (0, None, 1),
    "MA": (0, None, 1),
    "PD": (1, None, 1),
    "CD": (0, keys.ICCID, 1),
    "CM": (8, None, 1),
    "GN": (-60, None, 1),
    "GV": (-6, None, 1),
    "ME": (8, None, 1),
    "IA": (1, None, 1),
    "MP": (1, None, 1),
    "EH": (4, keys.HOURS, 360000),
    "ZO1": (1, None, 1),
    "ZO2": (1, None, 1),
    "ZO3": (1, None, 1),
    "ZO4": (1, keys.THROTTLE, 0.4),
    "ZO5": (1, None, 1),
    "ZO6": (1, keys.OBD_SPEED, 0.805),
    "ZO7": (1, None, 1),
    "ZO8": (1, None, 1),
    "ZO9": (1, keys.ENGINE_LOAD, 0.5),
    "ZO10": (1, keys.FUEL, 0.5),
    "ZO11": (1, None, 1),
    "ZO12": (1, None, 1),
    "ZO13": (1, None, 1),
    "ZO14": (1, keys.COOLANT_TEMP, 1),
    "ZO15": (1, None, 1),
    "ZO16": (1, None, 1),
    "ZO17": (1, None, 1),
    "ZH1": (2, None, 1),
    "ZH2": (2, keys.FUEL_CONSUMPTION, 16.428 / 3600),
    "ZH3": (2, keys.RPM, 0.25),
    "ZL1": (4, None, 1),
    "ZL3": (4, None, 1),
    "ZL4": (4, keys.HOURS, 5 * 36000),
    "ZS1": (0, keys.VIN, 1),
    "JO1": (1, None, 1),
    "JO2": (1, None, 1),
    "JO3": (1, None, 1),
    "JO4": (1, keys.ENGINE_LOAD, 1),
    "JO5": (1, keys.FUEL, 0.4),
    "JO6": (1, None, 1),
    "JO7": (1, None, 1),
    "JO8": (1, None, 1),
    "JO9": (1, None, 1),
    "JO10": (1, None, 1),
    "JO12": (1, None, 1),
    "JH1": (2, keys.OBD_SPEED, 1 / 256),
    "JH2": (2, keys.RPM, 0.125),
    "JH8": (2, keys.ODOMETER_SERVICE, 5),
    "JH9": (2, None, 1),
    "JH10": (2, None, 1),
    "JH11": (2, keys.FUEL_CONSUMPTION, 1 / 20),
    "JH12": (2, None, 1),
    "JL1": (4, keys.FUEL_USED, 0.5),
    "JL2": (4, keys.HOURS, 5 * 36000),
    "JL4": (4, keys.FUEL_USED, 1 / 1000),
    "JS1": (0, keys.VIN, 1),
    "JS2": (0, None, 1),
    "JS3": (0, "driver1", 1),
    "JS4": (0, "driver2", 1),
    "JN1": (4, None, 1),
    "JN2": (4, None, 1),
    "JN3": (4, None, 1),
    "JN4": (4, None, 1),
    "JN5": (4, None, 1),
    "VN": (0, keys.VIN, 1),
}


def _binary_custom(rec: Record, r: Reader, form_keys: list[str]) -> None:
    a = rec.attributes
    cell = _Cell()
    for key in form_keys:
        if key == "SA":
            rec.satellites = r.u8()
        elif key == "MV":
            rec.power = r.u16() / 10
        elif key == "BV":
            rec.battery = r.u16() / 10
        elif key == "GQ":
            cell.rssi = r.u8()
        elif key == "CE":
            cell.cid = r.u32()
        elif key == "LC":
            cell.lac = r.u16()
        elif key == "CN":
            combined = r.u32() % 100000
            cell.mcc, cell.mnc = combined // 100, combined % 100
        elif key == "AT":
            rec.altitude = float(r.u32())
        elif key == "DT":
            rec.archive = r.u8() == 1
        elif key == "EO":
            rec.odometer = r.u32() * MILE
        elif key == "ZL2":
            rec.odometer = float(r.u32() * 161)
        elif key == "JL3":
            rec.odometer = float(r.u32() * 1000)
        elif key == "JO11":
            a[keys.COOLANT_TEMP] = str(r.u8() - 40)
        elif key in ("JH3", "JH4", "JH5", "JH6", "JH7"):
            a[f"axleWeight{int(key[2:]) - 2}"] = _num(r.u16() * 0.5)
        elif key == "IN0":
            rec.ignition = r.u8() > 0
        elif key in ("IN1", "IN2", "IN3"):
            a["in" + key[2]] = _bool(r.u8() > 0)
        elif key in ("HA", "HB", "HC"):
            if r.u8() > 0:
                rec.alarms.append({"HA": alarms.ACCELERATION, "HB": alarms.BRAKING, "HC": alarms.CORNERING}[key])
        elif key in _BINARY:
            size, name, scale = _BINARY[key]
            if size < 0:
                r.skip(-size)
                continue
            if size == 0:
                text = _cstring(r)
                if name and text is not None:
                    a[name] = text
                continue
            value = r.uint(size)
            if name == keys.MOTION:
                a[name] = _bool(value > 0)
            elif name:
                a[name] = _num(value * scale) if scale != 1 else str(value)
        # keys Traccar does not know are skipped without consuming bytes, as there
    cell.apply(rec, binary=True)


# --- reports -------------------------------------------------------------------------------
def _binary_records(r: Reader, settings: _Settings) -> list[Record]:
    out = []
    while r.remaining >= MIN_RECORD:
        rec = Record(valid=True)
        a = rec.attributes
        if settings.long_date:
            rec.fix_time = utc(r.u16(), r.u8(), r.u8(), r.u8(), r.u8(), r.u8())
            r.skip(14)
        else:
            rec.fix_time = unix(r.u32())
            a[keys.DEVICE_TIME] = unix(r.u32()).replace(tzinfo=None).isoformat()
            r.skip(4)  # send time
        lon, lat = r.i32() / 1e6, r.i32() / 1e6
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError(f"coordinates out of range: {lat}, {lon}")
        rec.latitude, rec.longitude = lat, lon
        rec.course = float(r.u16())
        report = r.u8()
        a[keys.TYPE] = str(report)
        if report in settings.alarm_map:
            rec.alarms.append(settings.alarm_map[report])
        rec.odometer = float(r.u32() * 100)
        a[keys.HDOP] = _num(r.u16() / 10)
        a[keys.INPUT] = str(r.u8())
        rec.speed = float(r.u16())
        a[keys.OUTPUT] = str(r.u8())
        a["adc1"] = _num(r.u16() / 1000)
        driver = _cstring(r)
        if driver:
            a[keys.DRIVER_UNIQUE_ID] = driver
        a["temp1"] = _num(r.i16() / 10)
        a["temp2"] = _num(r.i16() / 10)
        message = _cstring(r)
        if message:
            fuel = _FULS.search(message)
            if fuel:
                a[keys.FUEL] = _num(int(fuel.group(3), 10 if settings.decimal_fuel else 16) / 10)
            else:
                a["message"] = message
        if settings.custom:
            form = settings.form
            if form is None:
                leading = (_cstring(r) or "").strip()
                form = leading[3:] if leading.startswith("%CI") else leading
            _binary_custom(rec, r, _form_keys(form))
        out.append(rec)
    return out


def _text_time(value: str) -> datetime | None:
    if len(value) >= 14:
        try:
            return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            return None
    return unix(int(value))


def _text_line(line: str, settings: _Settings) -> Record | None:
    fields = line.split(",")
    if len(fields) < 16:
        return None
    try:
        rec = Record(valid=True, fix_time=_text_time(fields[0]))
        lon, lat = int(fields[3]) / 1e6, int(fields[4]) / 1e6
        rec.course = float(int(fields[5]))
        a = rec.attributes
        a[keys.EVENT] = str(int(fields[6]))
        rec.odometer = float(fields[7]) * 100
        a[keys.HDOP] = _num(int(fields[8]) / 10)
        a[keys.INPUT] = str(int(fields[9]))
        rec.speed = float(int(fields[10]))
        a[keys.OUTPUT] = str(int(fields[11]))
        a["adc1"] = str(int(fields[12]))
        if fields[13]:
            a[keys.DRIVER_UNIQUE_ID] = fields[13]
        a["temp1"] = str(int(fields[14]))
        a["temp2"] = str(int(fields[15]))
    except (ValueError, OverflowError):
        return None
    if rec.fix_time is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    rec.latitude, rec.longitude = lat, lon
    if settings.custom and len(fields) > 17:
        values = fields[17:]
        form = settings.form
        if form is None:
            form = values[0][3:] if values[0].startswith("%CI") else values[0]
            values = values[1:]
        _text_custom(rec, values, _form_keys(form), settings.frame_mask)
    return rec


def _info(text: str) -> Decoded:
    rec = Record()
    if text.startswith("$INFO="):
        fields = text[6:].split(",")
        if len(fields) < 13 or not fields[0].isdigit():
            raise DecodeError("malformed $INFO answer")
        try:
            rec.power, rec.battery = int(fields[6]) / 10, int(fields[7]) / 10
            rec.satellites = int(fields[8])
            rec.attributes[keys.RSSI] = str(int(fields[10]))
        except ValueError as exc:
            raise DecodeError("malformed $INFO answer") from exc
        rec.attributes["model"] = fields[1]
        rec.attributes[keys.VERSION_FW] = fields[2]
        return Decoded("status", fields[0], [rec])
    rec.attributes[keys.RESULT] = text
    return Decoded("other", None, [rec])


def _ack(unit_id: int, sequence: int) -> bytes:
    return KEEPALIVE + unit_id.to_bytes(8, "big") + (sequence & 0xFFFF).to_bytes(2, "big")


class AtrackCodec(Codec):
    name = "atrack"
    first_bytes = b"@$\xfe\x02\x03"
    priority = 20
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 65541  # a 16-bit length + 6

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == 0xFE:
            return _detect_keepalive(head) if head[1:2] in (b"", b"\x02") else Detection.NO
        if head[0] == 0x24:
            return _detect_info(head)
        if len(head) < 3:
            return Detection.MORE if head[:2] not in (b"@@", b"@N") else Detection.NO
        if head[2] == 0x2C and (verdict := _detect_text(head)) is not Detection.NO:
            return verdict  # else: a binary report whose CRC starts with 0x2C
        return _detect_binary(head[: self.max_frame], self.max_frame)

    def new_framer(self) -> Framer:
        return AtrackFramer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        if not datagram:
            raise FramingError("empty datagram", discarded=datagram, reason="garbage")
        return [datagram]  # one report per datagram, as Traccar reads it

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if len(frame) < 3:
            raise DecodeError("short ATrack frame")
        if frame[:2] == KEEPALIVE:
            if len(frame) < KEEPALIVE_LEN:
                raise DecodeError("short keep-alive")
            return FrameInfo("heartbeat", str(int.from_bytes(frame[2:10], "big")), frame[:KEEPALIVE_LEN])
        if frame[0] == 0x24:
            text = frame.decode("latin-1").strip()
            if text.startswith("$INFO="):
                return FrameInfo("status", text[6:].split(",")[0] or None, None)
            return FrameInfo("other", None, None)
        if frame[2] == 0x2C and (match := _TEXT_HEAD.match(frame[:64])) is not None:
            unit = int(match.group(4))
            if unit >= 1 << 64:
                raise DecodeError("unit id out of range")
            return FrameInfo("position", match.group(4).decode(), _ack(unit, int(match.group(3))))
        unit, sequence = self._binary_header(frame)
        kind = "other" if frame[:2] == b"@R" else "position"
        return FrameInfo(kind, str(unit), _ack(unit, sequence))

    @staticmethod
    def _binary_header(frame: bytes) -> tuple[int, int]:
        if len(frame) < BINARY_HEADER:
            raise DecodeError("short ATrack binary report")
        total = min(len(frame), int.from_bytes(frame[4:6], "big") + 6)
        if CRC16_ARC(frame[4:total]) != int.from_bytes(frame[2:4], "big"):
            raise ChecksumError("ATrack binary report CRC-16/ARC mismatch")
        return int.from_bytes(frame[8:16], "big"), int.from_bytes(frame[6:8], "big")

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) < 3:
            raise DecodeError("short ATrack frame")
        settings = _Settings(ctx.options)
        if frame[:2] == KEEPALIVE:
            if len(frame) < KEEPALIVE_LEN:
                raise DecodeError("short keep-alive")
            return Decoded("heartbeat", str(int.from_bytes(frame[2:10], "big")), [])
        if frame[0] == 0x24:
            return _info(frame.decode("latin-1").strip())
        text = frame.decode("latin-1").strip() if frame[2] == 0x2C else ""
        if text and (match := _TEXT_HEAD.match(text.encode("latin-1")[:64])) is not None:
            body = text[match.end() :]
            records = [rec for line in body.split("\r\n") if (rec := _text_line(line, settings)) is not None]
            return Decoded("position", match.group(4).decode(), records)
        unit, _ = self._binary_header(frame)
        total = min(len(frame), int.from_bytes(frame[4:6], "big") + 6)
        reader = Reader(frame, BINARY_HEADER, total)
        if frame[:2] == b"@R":
            return Decoded("other", str(unit), self._photo(reader))
        return Decoded("position", str(unit), _binary_records(reader, settings))

    @staticmethod
    def _photo(r: Reader) -> list[Record]:
        """A photo chunk: a status record at the photo time once the last chunk is in."""
        time = unix(r.u32())
        index, count = r.u8(), r.u8()
        size = r.u16()
        r.skip(min(size, r.remaining))
        if index != count - 1:
            return []
        rec = Record(fix_time=time)
        rec.attributes["photoChunks"] = str(count)
        return [rec]


CODEC = AtrackCodec()
