"""Queclink GV/GL/GB/GMT/CV trackers, @Track protocol (Traccar `gl200`; also GL300, GL50x "GL505").

Two wire forms share the port (PROTOCOLS.md sections 3, 4, 5 and 7).

**Text**: comma-separated ASCII, one report per frame, ended by ``$`` (older firmware: NUL)::

    +RESP:GTFRI,270B01,867162027893742,gv300w,12295,10,1,1,0.0,0,37.6,-101.041169,22.143452,
        20240726234344,0334,0020,2F03,BDB2E4B,00,1940.4,,,,100,220100,,,,20240726234346,4CFE$
    head        version imei            name   power type n  location block (12 fields)...
        ... tail (odometer, hour meter, adc, battery %, device status ...), send time, count

* head ``+RESP:GTxxx`` (live), ``+BUFF:GTxxx`` (buffered while offline: ``archive``),
  ``+ACK:GTxxx`` (answer to a command; ``+ACK:GTHBD`` is the heartbeat);
* field 2 is the protocol version (6 or 10 characters: model code + firmware; the model
  decides several layouts, see `MODELS`; ``Context.options["model"]`` overrides it), field 3
  the IMEI (15 digits, or 14 hex digits on some units), the last two fields the send time
  ``YYYYMMDDhhmmss`` (UTC) and a 4-hex-digit count;
* a location block is ``hdop,speed km/h,course,altitude m,longitude,latitude,fix time`` in
  signed decimal degrees (**longitude first**), optionally ``n`` Wi-Fi access points, then
  ``mcc,mnc,lac,cid`` (lac/cid hex) and one reserved/odometer field.  ``hdop`` 0 means the
  last known fix; an empty block means no fix at all.

Message types: FRI/GEO/RTL/DOG/STR/CTN (fixed/geofence/real-time/... reports, 1-15 blocks per
frame: one record each), ERI (extended FRI with a data mask: fuel, temperature probes, BLE
tags), CAN (CAN-bus data behind a report mask), OBD, IGN/IGF/VGN/VGF (ignition), LSW/TSW
(switches), IDA (RFID driver), DAR (driver fatigue), DAT (serial data), DTT (transparent
data), BAA/BID (BLE accessories), LSA (light sensor), INF (device information), VER
(versions), GSM/LBS/WIF (cells and Wi-Fi, no GPS), PNA/PFA (power on/off), and every other
report (SOS, SPD, TOW, IDL, EPN/EPF, MPN/MPF, BPL, STT, SWG, TMP/TEM, JDR/JDS, HBM, NMR,
DIS, IGL, GCR, LBC, BPL ...) read generically: the location block is found by its
longitude/latitude/time shape and the report type names the alarm.

**Binary** (the same units in ``binary`` report mode): a 4-byte ASCII head (``+RSP``
``+BSP`` ``+EVT`` ``+BVT`` ``+INF`` ``+BNF`` ``+HBD`` ``+CRD`` ``+BRD`` ``+LGN``, or
``+ACK`` followed by a non-``:`` byte) then a message type byte, a mask and a big-endian
length whose offset depends on the head; or ``+`` ``00`` len(2): the newer TLV container
(IMEI in BCD, records of data items; item ``0x52`` is a GNSS fix).  Decoded: ``+RSP``/``+BSP``
location reports (plain and compressed-track), ``+EVT``/``+BVT`` events, ``+INF``/``+BNF``
information, the TLV container (items ``0x51``/``0x52`` GNSS fix, ``0x61`` battery: one record
per container record); ``+ACK``/``+HBD``/``+CRD``/``+BRD``/``+LGN`` carry no position.  The
GL601 speaks the same TLV container (Traccar's separate `gl601` decoder and port), so this
codec serves it too (`aliases`): on a shared port the two cannot be told apart.

Replies: the unit waits for ``+SACK:GTHBD,<version>,<count>$`` after each text heartbeat
``+ACK:GTHBD`` (or it reconnects).  Units configured for server acknowledgement also wait
for ``+SACK:<count>$`` after every report (Traccar's ``gl200.ack``): that is a deployment
choice the edge cannot read from the frame, so `ack_reply` builds it and `inspect` answers
heartbeats only.

Units: speed km/h as sent, altitude metres, odometer km on the wire (metres here), power
mV on most fields (volts here), times UTC.  Options: ``model`` (override the model code),
``ignoreFixTime`` (``true``: the send time is the record time, one record per frame).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
from .kit import alarms
from .kit.framing import drop_leading, garbage, oversized, resync_cut, split_with
from .kit.readers import Reader, bits, float_or_none, int_or_none, twos_complement, unix, utc

# --- wire constants ---------------------------------------------------------------------
TEXT_HEADS = (b"+RESP:GT", b"+BUFF:GT", b"+ACK:GT")
BINARY_HEADS = frozenset({b"+RSP", b"+BSP", b"+EVT", b"+BVT", b"+INF", b"+BNF", b"+HBD", b"+CRD", b"+BRD", b"+LGN"})
TEXT_END = ord("$")
NUL = 0
MIN_BINARY = 11  # Traccar waits for this many bytes before deciding
MAX_FRAME = 8192
HEARTBEAT = "+ACK:GTHBD"

#: model code (first 2 characters of the protocol version, or 6 for 10-character versions)
MODELS: dict[str, str] = {
    "02": "GL200", "04": "GV200", "06": "GV300", "08": "GMT100", "09": "GV50P", "0F": "GV55",
    "10": "GV55 LITE", "11": "GL500", "1A": "GL300", "1F": "GV500", "21": "GL200", "25": "GV300",
    "27": "GV300W", "28": "GL300VC", "2C": "GL300W", "2D": "GV500VC", "2F": "GV55", "4F": "GV56",
    "30": "GL300", "31": "GV65", "35": "GV200", "36": "GV500", "3F": "GMT100", "40": "GL500",
    "41": "GV75W", "42": "GT501", "44": "GL530", "45": "GB100", "50": "GV55W", "52": "GL50",
    "55": "GL50B", "5E": "GV500MAP", "6E": "GV310LAU", "BD": "CV200", "C2": "GV600M",
    "C3": "GL320M", "DC": "GV600MG", "DE": "GL500M", "DF": "CV100LG", "F1": "GV350M",
    "F8": "GV800W", "FC": "GV600W", "802004": "GV58LAU", "802005": "GV355CEU", "80201E": "GV30CEU",
}  # fmt: skip

#: report types that name an alarm (the generic reader)
TYPE_ALARMS: dict[str, str] = {
    "SOS": alarms.SOS,
    "SPD": alarms.OVERSPEED,
    "TOW": alarms.TOW,
    "IDL": alarms.IDLE,
    "PNA": alarms.POWER_ON,
    "PFA": alarms.POWER_OFF,
    "EPN": alarms.POWER_RESTORED,
    "MPN": alarms.POWER_RESTORED,
    "EPF": alarms.POWER_CUT,
    "MPF": alarms.POWER_CUT,
    "BPL": alarms.LOW_BATTERY,
    "STT": alarms.MOVEMENT,
    "SWG": alarms.GEOFENCE,
    "TMP": alarms.TEMPERATURE,
    "TEM": alarms.TEMPERATURE,
    "JDR": alarms.JAMMING,
    "JDS": alarms.JAMMING,
    "CRA": alarms.ACCIDENT,  # crash detected
}
#: harsh behaviour (HBM) report type, low nibble
HBM_ALARMS = {0: alarms.BRAKING, 3: alarms.BRAKING, 1: alarms.ACCELERATION, 4: alarms.ACCELERATION, 2: alarms.CORNERING}
ALARM_TYPES = frozenset(TYPE_ALARMS) | {"HBM", "DAR"}
STATUS_TYPES = frozenset({"INF", "VER", "GSM", "LBS", "WIF", "DTT", "CID", "CSQ", "BAT", "TMZ", "GIR"})

_LON = re.compile(r"-?\d{1,3}\.\d{6}$")
_LAT = re.compile(r"-?\d{1,2}\.\d{6}$")
_COORD = re.compile(r"-?\d{1,3}\.\d{6}$")
_TIME = re.compile(r"\d{14}$")
_DEC = re.compile(r"-?\d+(?:\.\d+)?$")
_HEX = re.compile(r"[0-9A-Fa-f]+$")
_MAC = re.compile(r"[0-9A-Fa-f]{12}$")
_VIN = re.compile(r"[0-9A-Z]{17}$")
_IMEI = re.compile(r"\d{15}$|[0-9A-Fa-f]{14}$")
_HOURS = re.compile(r"\d+(?::\d\d){0,2}$")


# --- framing ----------------------------------------------------------------------------


def _binary_size(head: bytes | bytearray) -> int | None:
    """The announced size of a binary frame (None: not binary; needs MIN_BINARY bytes for the offsets)."""
    if len(head) < 2:
        return None
    if head[1] == 0:
        return int.from_bytes(head[2:4], "big") if len(head) >= 4 else -1
    tag = bytes(head[:4])
    if tag == b"+ACK":
        if len(head) < 5 or head[4] == ord(":"):
            return None
        return head[6] if len(head) > 6 else -1
    if tag not in BINARY_HEADS:
        return None
    offset, width = {
        b"+INF": (7, 2),
        b"+BNF": (7, 2),
        b"+HBD": (5, 1),
        b"+CRD": (6, 2),
        b"+BRD": (6, 2),
        b"+LGN": (6, 2),
    }.get(tag, (9, 2))
    if len(head) < offset + width:
        return -1
    return int.from_bytes(head[offset : offset + width], "big")


def is_binary(frame: bytes | bytearray) -> bool:
    return len(frame) >= 2 and (frame[1] == 0 or _binary_size(frame[:MIN_BINARY]) is not None)


class Gl200Framer(Framer):
    """Text frames up to ``$`` (or NUL), binary frames by their length field; CR/LF/NUL between
    frames skipped, bytes that do not start with ``+`` are garbage up to the next ``+``."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 1

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if drop_leading(buf, b"\r\n\x00"):
            self._scan = 1
        if not buf:
            return None
        if buf[0] != ord("+"):
            self._scan = 1
            raise garbage(buf, resync_cut(buf, b"+"))
        if len(buf) < 2:
            return None
        if buf[1] == 0 or (len(buf) >= 5 and bytes(buf[:4]) in BINARY_HEADS | {b"+ACK"} and buf[4] != ord(":")):
            if len(buf) < MIN_BINARY:
                return None
            size = _binary_size(buf[:MIN_BINARY])
            if size is None or size < MIN_BINARY:
                self._scan = 1
                raise garbage(buf, resync_cut(buf, b"+"))
            oversized(buf, size, self.max_frame)
            if len(buf) < size:
                return None
            frame = bytes(buf[:size])
            del buf[:size]
            self._scan = 1
            return frame
        end = -1
        for stop in (TEXT_END, NUL):
            j = buf.find(bytes((stop,)), self._scan)
            if j >= 0 and (end < 0 or j < end):
                end = j
        if end < 0:
            self._scan = len(buf)
            if len(buf) > self.max_frame:
                self._scan = 1
                oversized(buf, len(buf), self.max_frame)
            return None
        size = end + 1
        self._scan = 1
        frame = bytes(buf[:size])
        del buf[:size]
        if size > self.max_frame:
            raise FramingError(f"frame of {size} bytes", discarded=frame, fatal=True, reason="frame too large")
        return frame


# --- detection --------------------------------------------------------------------------


def _detect_text(head: bytes) -> Detection:
    """``+RESP:GT``/``+BUFF:GT``/``+ACK:GT`` + 3 capitals/digits + ``,`` + version (empty, 6 or
    10 characters) + ``,`` + IMEI (15 digits or 14 hex) + ``,``."""
    for lead in TEXT_HEADS:
        n = min(len(head), len(lead))
        if head[:n] == lead[:n]:
            break
    else:
        return Detection.NO
    if len(head) < len(lead):
        return Detection.MORE
    pos = len(lead)
    kind = head[pos : pos + 3]
    if not all(0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A for b in kind):
        return Detection.NO
    if len(head) < pos + 4:
        return Detection.MORE
    if head[pos + 3] != ord(","):
        return Detection.NO
    pos += 4
    version_end = head.find(b",", pos, pos + 12)
    if version_end < 0:
        tail = head[pos : pos + 11]
        return Detection.MORE if (len(tail) <= 10 and tail.isalnum()) or not tail else Detection.NO
    version = head[pos:version_end]
    if len(version) not in (0, 6, 10) or (version and not version.isalnum()):
        return Detection.NO
    pos = version_end + 1
    imei_end = head.find(b",", pos, pos + 16)
    if imei_end < 0:
        tail = head[pos : pos + 16]
        ok = len(tail) <= 15 and all(chr(b) in "0123456789abcdefABCDEF" for b in tail)
        return Detection.MORE if ok else Detection.NO
    imei = head[pos:imei_end].decode("latin-1")
    return Detection.YES if _IMEI.match(imei) else Detection.NO


def _detect_binary(head: bytes) -> Detection:
    if len(head) < MIN_BINARY:
        if len(head) >= 2 and head[1] == 0:
            return Detection.MORE
        tag = head[:4]
        if any(t.startswith(tag) for t in BINARY_HEADS | {b"+ACK"}):
            if len(head) >= 5 and tag == b"+ACK" and head[4] == ord(":"):
                return Detection.NO
            return Detection.MORE
        return Detection.NO
    size = _binary_size(head[:MIN_BINARY])
    if size is None or size < MIN_BINARY or size > MAX_FRAME:
        return Detection.NO
    if head[1] == 0:
        # TLV container: flags, [frame numbers], 8 BCD bytes of IMEI (leading 0 nibble)
        at = 7 if head[4] & 0x80 else 5
        if len(head) >= at + 8 and not head[at : at + 8].hex().isdigit():
            return Detection.NO
        if len(head) >= size:
            return Detection.YES if head[size - 1] == TEXT_END else Detection.NO
        return Detection.YES
    if len(head) >= size:
        return Detection.YES if head[size - 2 : size] == b"\r\n" else Detection.NO
    return Detection.YES


# --- text field helpers -------------------------------------------------------------------


def _time(text: str) -> datetime | None:
    if not _TIME.match(text):
        return None
    return utc(int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:14]))


def _hours(text: str) -> str | None:
    """``hhhhh:mm:ss`` engine hours as milliseconds (Traccar's `hours`)."""
    if not text or not _HOURS.match(text):
        return None
    parts = [int(p) for p in text.split(":")] + [0, 0]
    return str((parts[0] * 3600 + parts[1] * 60 + parts[2]) * 1000)


def _put(record: Record, key: str, value: object) -> None:
    """An attribute as text (booleans as true/false); None and empty values are left out."""
    if value is None or value == "":
        return
    record.attributes[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)


def _is_block(v: list[str], i: int) -> bool:
    """A location block with a fix starts at `i` (hdop, speed, course, altitude, lon, lat, time)."""
    return (
        i + 6 < len(v)
        and bool(_LON.match(v[i + 4]))
        and bool(_LAT.match(v[i + 5]))
        and bool(_TIME.match(v[i + 6]))
        and all(not v[k] or _DEC.match(v[k]) for k in range(i, i + 4))
    )


def _is_empty_block(v: list[str], i: int) -> bool:
    return i + 6 < len(v) and not any(v[i : i + 7])


def _first_block(v: list[str], start: int, limit: int | None = None) -> int:
    """Index of the first located block at or after `start` (within `limit` fields), -1 if none."""
    stop = len(v) - 6 if limit is None else min(len(v) - 6, start + limit + 1)
    for i in range(start, max(start, stop)):
        if _is_block(v, i):
            return i
    return -1


def _apply_fix(record: Record, v: list[str], i: int) -> None:
    """hdop, speed, course, altitude, lon, lat, time at v[i:i+7] (any of them may be empty)."""
    _put(record, "hdop", v[i] if v[i] else None)
    record.speed = float_or_none(v[i + 1]) or 0.0
    record.course = float_or_none(v[i + 2]) or 0.0
    record.altitude = float_or_none(v[i + 3]) or 0.0
    lon, lat = float_or_none(v[i + 4]), float_or_none(v[i + 5])
    if lon is not None and lat is not None and -180 <= lon <= 180 and -90 <= lat <= 90:
        record.longitude, record.latitude = lon, lat
        record.valid = True
        fix = _time(v[i + 6])
        if fix is not None:
            record.fix_time = fix
    else:
        record.valid = False


def _apply_cell(record: Record, mcc: str, mnc: str, lac: str, cid: str) -> None:
    if mcc.isdigit() and mnc.isdigit() and _HEX.match(lac or "-") and _HEX.match(cid or "-"):
        record.attributes.update(mcc=str(int(mcc)), mnc=str(int(mnc)), lac=str(int(lac, 16)), cid=str(int(cid, 16)))


def _block(record: Record, v: list[str], i: int) -> int:
    """A 12-field location block at `i` (Wi-Fi points allowed after the time); the next index."""
    _apply_fix(record, v, i)
    i += 7
    if i + 1 < len(v) and v[i].isdigit() and _MAC.match(v[i + 1]):
        i += 1 + 5 * int(v[i])
    if i + 4 < len(v):
        _apply_cell(record, *v[i : i + 4])
        tail = v[i + 4]
        if "." in tail and (odometer := float_or_none(tail)) is not None:
            record.odometer = odometer * 1000
    return i + 5


def _skip_block(v: list[str], i: int) -> int:
    i += 7
    if i + 1 < len(v) and v[i].isdigit() and _MAC.match(v[i + 1]):
        i += 1 + 5 * int(v[i])
    return i + 5


class _Fields:
    """A cursor over the comma fields of one text report (Traccar's field-index style)."""

    __slots__ = ("i", "v")

    def __init__(self, v: list[str], i: int = 0) -> None:
        self.v = v
        self.i = i

    def next(self) -> str:
        if self.i >= len(self.v):
            raise DecodeError(f"report ends after {len(self.v)} fields")
        value = self.v[self.i]
        self.i += 1
        return value

    def skip(self, n: int = 1) -> None:
        self.i += n

    def count(self) -> int:
        """A repeat count field (empty: 0), never more than the fields left: a count read
        from a garbled report must not drive a loop past the report's end."""
        value = int_or_none(self.next()) or 0
        if value > len(self.v) - self.i:
            raise DecodeError(f"count {value} with {len(self.v) - self.i} fields left")
        return value

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.v[j] if 0 <= j < len(self.v) else ""


def _located(record: Record, f: _Fields, model: str) -> None:
    """Field-based location (ERI/IGN/DAT style): fix, cell, then the append mask (satellites)."""
    v = f.v
    if f.i + 7 > len(v):
        raise DecodeError("report ends inside its location")
    _apply_fix(record, v, f.i)
    f.skip(7)
    if f.peek():
        _apply_cell(record, f.peek(), f.peek(1), f.peek(2), f.peek(3))
    f.skip(4)
    if model.startswith("GL5"):
        f.skip(2)  # csq rssi, csq ber
    if model != "GL320M":
        mask = int_or_none(f.next())
        if mask is not None:
            if mask & 1 and (sats := int_or_none(f.next())) is not None:
                record.satellites = sats
            if mask & 2:
                f.skip()  # trigger type


def _status_bits(record: Record, value: int) -> None:
    """The 6-hex-digit device status: ignition state, digital inputs, outputs."""
    state = bits(value, 16, 8)
    if state & 0x10:
        record.ignition = False
    elif state & 0x20:
        record.ignition = True
    inputs, outputs = bits(value, 8, 8), bits(value, 0, 8)
    _put(record, "input", inputs)
    _put(record, "in1", bool(inputs & 2))
    _put(record, "in2", bool(inputs & 4))
    _put(record, "output", outputs)
    _put(record, "out1", bool(outputs & 1))
    _put(record, "out2", bool(outputs & 2))


def _analog(record: Record, index: int, text: str) -> None:
    if text.startswith("F"):
        _put(record, f"fuel{index}", int_or_none(text[1:]))
    elif (value := int_or_none(text)) is not None:
        _put(record, f"adc{index}", value / 1000)


class _Report:
    """One text report: fields, type, model, send time, options."""

    __slots__ = ("buffered", "head", "imei", "model", "options", "received_at", "send_time", "type", "v")

    def __init__(self, frame: bytes, ctx: Context | None = None) -> None:
        text = frame.decode("latin-1").rstrip("\r\n\x00").removesuffix("$")
        self.v = text.split(",")
        self.head = self.v[0]
        colon = self.head.find(":GT")
        if not self.head.startswith("+") or colon < 0 or len(self.head) < colon + 6 or len(self.v) < 3:
            raise DecodeError("not a Queclink text report (+RESP:GTxxx,...)")
        self.type = self.head[colon + 3 : colon + 6]
        self.buffered = self.head.startswith("+BUFF")
        self.imei = self.v[2]
        options: Mapping[str, str] = ctx.options if ctx else {}
        self.options = options
        self.received_at = ctx.received_at if ctx else None
        version = self.v[1]
        declared = options.get("model")
        if declared:
            self.model = declared.upper()
        else:
            self.model = MODELS.get(version[:6] if len(version) > 6 else version[:2], "")
        self.send_time = _time(self.v[-2]) if len(self.v) >= 2 else None

    @property
    def ignore_fix_time(self) -> bool:
        return self.options.get("ignoreFixTime") == "true"

    def record(self) -> Record:
        return Record(fix_time=self.send_time or self.received_at, archive=self.buffered)

    def device_time(self, record: Record) -> None:
        if self.send_time is None:
            return
        if self.ignore_fix_time:
            record.fix_time = self.send_time
        else:
            _put(record, "deviceTime", self.send_time.isoformat().replace("+00:00", "Z"))


# --- text decoders (each returns records, or None when the layout does not fit) -------------

Records = list[Record] | None


def _ack(r: _Report) -> Records:
    record = r.record()
    record.valid = False
    _put(record, "result", r.head)
    return [record]


def _inf(r: _Report) -> Records:
    if len(r.v[1]) > 10:
        return None  # GT300 (GL100-format) information report
    f = _Fields(r.v, 4)
    record = r.record()
    model = r.model
    state = int_or_none(f.next(), 16)
    motion: bool | None = None
    if state in (0x16, 0x1A, 0x12):
        record.ignition, motion = False, True
    elif state == 0x11:
        record.ignition, motion = False, False
    elif state == 0x21:
        record.ignition, motion = True, False
    elif state == 0x22:
        record.ignition, motion = True, True
    elif state in (0x41, 0x42):
        motion = state == 0x42
    _put(record, "motion", motion)
    _put(record, "iccid", f.next())
    _put(record, "rssi", int_or_none(f.next()))
    f.skip(2)  # signal quality, external power supply
    if len(f.peek(1)) >= 12:
        f.skip()  # BLE sensor MAC
        _put(record, "deviceTemp", int_or_none(f.next()))
        _put(record, "humidity", int_or_none(f.next()))
    value = f.next()
    if "." in value:
        if (km := float_or_none(value)) is not None:
            record.odometer = km * 1000
    elif (mv := int_or_none(value)) is not None:
        record.power = mv / 1000
    if model != "GV500VC":
        second = f.next()
        if model not in ("GV350M", "GV310LAU") and (mv := int_or_none(second)) is not None:
            _put(record, "power2", mv / 1000)
    record.battery = float_or_none(f.next())
    if f.next() and f.next() == "1":
        _put(record, "charge", True)
    if model == "GV310LAU":
        f.skip(5)  # LED state, power saving, external antenna, last fix time, pin mask
        for n in (1, 2, 3):
            _put(record, f"adc{n}", int_or_none(f.next()))
    r.device_time(record)
    return [record]


def _ver(r: _Report) -> Records:
    v = r.v
    if len(v) != 9 or not _IMEI.match(v[2]) or not _TIME.match(v[7]):
        return None
    record = r.record()
    record.fix_time = _time(v[7]) or record.fix_time
    _put(record, "deviceType", v[4])
    _put(record, "versionFw", int_or_none(v[5], 16))
    _put(record, "versionHw", int_or_none(v[6], 16))
    return [record]


def _fri(r: _Report) -> Records:
    """FRI and its relatives: one or more location blocks between a short head and a tail."""
    v = r.v
    i = 3
    vin = None
    if len(v) > 4 and _VIN.match(v[3]):
        vin, i = v[3], 4
    i += 1  # device name
    start = _first_block(v, i, 5)
    if start < 0:
        start = i + 3
        if not _is_empty_block(v, start):
            return None
    pre = v[i:start]
    power = int_or_none(pre[0]) if pre else None
    report_type = int_or_none(pre[1]) if len(pre) > 1 else None
    battery_level = int_or_none(pre[4]) if len(pre) > 4 else None
    records: list[Record] = []
    j = start
    while j + 11 < len(v) - 2 and (_is_block(v, j) or _is_empty_block(v, j)):
        record = r.record()
        _put(record, "vin", vin)
        j = _block(record, v, j)
        records.append(record)
    if not records:
        return None
    last = records[-1]
    if power is not None and power > 10:
        last.power = power / 1000
    if battery_level is not None:
        last.battery_level = battery_level
    _fri_tail(last, v[j:-2], report_type)
    r.device_time(last)
    if r.ignore_fix_time:
        return [last]
    return records


def _fri_tail(record: Record, t: list[str], report_type: int | None) -> None:
    """The fields after the last block; the shape tells the family (GL, GV, GMT ...)."""

    def at(k: int) -> str:
        return t[k] if k < len(t) else ""

    if len(t) >= 6 and re.match(r"\d{1,3}$", at(2)) and at(3) in ("0", "1") and at(4) in ("", "0", "1"):
        # GL3xx/GL5xx: reserved, battery mV, battery %, mode, motion, temperature
        if (mv := int_or_none(at(1))) is not None:
            record.battery = mv / 1000
        record.battery_level = int_or_none(at(2))
        _put(record, "temp1", float_or_none(at(5)))
        return
    status_at = next((k for k in (5, 6) if re.match(r"[0-9A-Fa-f]{6}$", at(k))), -1)
    if status_at > 0 or len(t) >= 9:
        # GV series: odometer, hour meter, adc1, adc2, [reserved], battery %, status, rpm, fuel ...
        if (km := float_or_none(at(0))) is not None and "." in at(0):
            record.odometer = km * 1000
        _put(record, "hours", _hours(at(1)))
        _put(record, "adc1", at(2))
        _put(record, "adc2", at(3))
        k = status_at if status_at > 0 else 5
        if (level := int_or_none(at(k - 1))) is not None:
            record.battery_level = level
        if status_at > 0:
            _status_bits(record, int(at(k), 16))
        _put(record, "rpm", int_or_none(at(k + 1)))
        _put(record, "fuel", int_or_none(at(k + 3)))
        return
    if len(t) >= 2 and re.match(r"-?\d$", at(0)) and re.match(r"\d{1,3}$", at(1)):
        if report_type is not None:
            _put(record, "motion", bool(report_type & 1))
            _put(record, "charge", bool(report_type & 2))
        _put(record, "rssi", int_or_none(at(0)))
        record.battery_level = int_or_none(at(1))
        return
    k = 0
    if re.match(r"\d{1,7}\.\d$", at(0)):
        record.odometer = float(at(0)) * 1000
        k = 1
    if (level := int_or_none(at(k))) is not None and level <= 100:
        record.battery_level = level


def _eri(r: _Report) -> Records:
    v, model = r.v, r.model
    f = _Fields(v, 4)
    mask = int_or_none(f.next(), 16)
    if mask is None:
        return None
    power = int_or_none(f.next())
    f.skip()  # report type
    count = int_or_none(f.next())
    if count is None or count > len(v):
        return None
    records = []
    for _ in range(count):
        record = r.record()
        _located(record, f, model)
        records.append(record)
    if not records:
        return None
    rec = records[-1]
    if power is not None:
        rec.power = power / 1000
    gl5 = model.startswith("GL5")
    if not gl5 and (km := float_or_none(f.next())) is not None:
        rec.odometer = km * 1000
    if not gl5 and model != "GL320M":
        _put(rec, "hours", _hours(f.next()))
        if adc := f.next():
            _analog(rec, 1, adc)
    if model.startswith("GV") and not model.startswith("GV6") and model != "GV350M" and (adc := f.next()):
        _analog(rec, 2, adc)
    if model in ("GV200", "GV310LAU") and (adc := f.next()):
        _analog(rec, 3, adc)
    if (model.startswith("GV3") and model.endswith("CEU")) or model.startswith("GV600M"):
        f.skip()
    if gl5:
        rec.battery_level = int_or_none(f.next())
        f.skip()  # mode selection
        moving = int_or_none(f.next())
        _put(rec, "motion", None if moving is None else moving > 0)
    elif model == "GV200":
        _put(rec, "input", int_or_none(f.next(), 16))
        _put(rec, "output", int_or_none(f.next(), 16))
        f.skip()
    elif model == "GL320M":
        rec.battery_level = int_or_none(f.next())
        if mask & 0x80:
            _put(rec, "externalBattery", int_or_none(f.next()))
    else:
        rec.battery_level = int_or_none(f.next())
        if (status := int_or_none(f.next(), 16)) is not None:
            _status_bits(rec, status)
        f.skip()
    r.device_time(rec)
    if r.ignore_fix_time:
        records = [rec]
    end = len(v) - 2
    try:
        _eri_devices(rec, f, mask, model, end)
    except DecodeError:
        pass  # accessory data cut short: keep what came before
    return records


def _eri_devices(rec: Record, f: _Fields, mask: int, model: str, end: int) -> None:
    """The optional accessory sections of an ERI report, in mask-bit order."""
    if mask & 1 and model != "GV350M" and f.i < end:
        _put(rec, "fuel", int_or_none(f.next(), 16))
    if mask & 2 and f.i < end:
        for n in range(1, f.count() + 1):
            f.skip(2)  # id, type
            if (raw := int_or_none(f.next(), 16)) is not None:
                signed = twos_complement(raw, 16)
                _put(rec, f"temp{n}", signed * 0.0625)
    if mask & 4:
        return  # CAN data: not carried over
    if (mask & 0x18 or (mask & 1 and model == "GV350M")) and f.i < end:
        for _ in range(f.count()):
            f.skip()  # type
            if model == "GV350M":
                f.skip()  # uart id
                if mask & 1:
                    _put(rec, "fuel", int_or_none(f.next(), 16))
            if mask & 8:
                _put(rec, "fuel", float_or_none(f.next()))
            if mask & 0x10:
                f.skip()  # volume
    if mask & 0x80 and model != "GL320M" and f.i < end:
        for _ in range(f.count()):
            f.skip()  # serial number
            kind = int_or_none(f.next())
            f.skip(2 if kind == 2 else 1)
    if mask & 0x100 and model != "GL320M" and f.i < end:
        for n in range(1, f.count() + 1):
            f.skip(4 if model.startswith("GV600M") else 3)  # index, type, model, [length]
            f.skip()  # raw data
            tag = int_or_none(f.next(), 16) or 0
            for bit, key, parse in _TAG_FIELDS:
                if tag >> bit & 1:
                    value = f.next()
                    if key:
                        _put(rec, f"tag{n}{key}", parse(value) if value else None)


_TAG_FIELDS: tuple[tuple[int, str, Callable[[str], object]], ...] = (
    (0, "", str),  # name
    (1, "Id", str),
    (2, "", str),  # status
    (3, "", str),  # battery level
    (4, "Temp", float_or_none),
    (5, "Humidity", int_or_none),
    (7, "", str),  # input / output
    (8, "", str),  # event notification
    (9, "", str),  # tire pressure
    (10, "", str),  # timestamp
    (11, "", str),  # enhanced temperature
    (12, "", str),  # magnet
    (13, "Battery", int_or_none),
    (14, "", str),  # relay
)


def _ign(r: _Report) -> Records:
    f = _Fields(r.v, 4)
    if r.model == "CV200":
        f.skip(2)
    f.skip()  # duration of ignition on/off
    record = r.record()
    _located(record, f, r.model)
    record.ignition = "GN" in r.type
    _put(record, "hours", _hours(f.next()))
    if (km := float_or_none(f.next())) is not None:
        record.odometer = km * 1000
    r.device_time(record)
    return [record]


def _lsw(r: _Report) -> Records:
    v = r.v
    if len(v) < 20 or v[4] not in ("0", "1") or v[5] not in ("0", "1"):
        return None
    record = r.record()
    _put(record, "in1" if r.type == "LSW" else "in2", v[5] == "1")
    _block(record, v, 6)
    r.device_time(record)
    return [record]


def _anchored(r: _Report, first: int, limit: int) -> tuple[Record, int] | None:
    """A record whose location block is found by shape within `limit` fields after `first`."""
    start = _first_block(r.v, first, limit)
    if start < 0:
        return None
    record = r.record()
    _block(record, r.v, start)
    return record, start


def _ida(r: _Report) -> Records:
    v = r.v
    found = _anchored(r, 8, 2)
    if found is None or len(v) < 9:
        return None
    record, start = found
    _put(record, "driverUniqueId", v[5])
    end = _skip_block(v, start)
    if end < len(v) and (km := float_or_none(v[end])) is not None:
        record.odometer = km * 1000
    r.device_time(record)
    return [record]


def _wif(r: _Report) -> Records:
    v = r.v
    if len(v) < 8:
        return None
    record = r.record()
    points = [(v[k], v[k + 1]) for k in range(5, len(v) - 3) if _MAC.match(v[k]) and _DEC.match(v[k + 1] or "x")]
    if not points:
        return None
    _put(record, "wifi", ";".join(f"{mac}:{rssi}" for mac, rssi in points))
    record.battery_level = int_or_none(v[-3])
    return [record]


def _gsm(r: _Report) -> Records:
    v = r.v
    if len(v) < 6 or v[3] not in ("STR", "CTN", "NMR", "RTL"):
        return None
    record = r.record()
    cells = v[4:-2]
    towers = []
    for k in range(0, len(cells) - 4, 6):
        mcc, mnc, lac, cid, rx = cells[k : k + 5]
        if mcc.isdigit() and mnc.isdigit() and _HEX.match(lac or "-") and _HEX.match(cid or "-"):
            towers.append(f"{int(mcc)}/{int(mnc)}/{int(lac, 16)}/{int(cid, 16)}/{rx}")
    if towers:
        first = towers[0].split("/")
        record.attributes.update(mcc=first[0], mnc=first[1], lac=first[2], cid=first[3])
        _put(record, "cells", ";".join(towers))
    return [record]


def _pna(r: _Report) -> Records:
    if len(r.v) != 6 or r.send_time is None:
        return None
    record = r.record()
    record.alarms.append(alarms.POWER_ON if r.type == "PNA" else alarms.POWER_OFF)
    return [record]


def _dar(r: _Report) -> Records:
    v = r.v
    if len(v) < 10 or not v[4].isdigit() or not v[5].isdigit():
        return None
    found = _anchored(r, 8, 0)
    if found is None:
        return None
    record, _ = found
    if v[4] == "1":
        record.alarms.append(alarms.FATIGUE_DRIVING)
        _put(record, "fatigueDegree", int(v[5]))
    else:
        _put(record, "warningType", int(v[4]))
    r.device_time(record)
    return [record]


def _dtt(r: _Report) -> Records:
    v = r.v
    if len(v) != 11 or not _HEX.match(v[8]) or len(v[8]) % 2:
        return None
    record = r.record()
    data = bytes.fromhex(v[8]).decode("latin-1")
    if "COMB" in data:
        parts = data.split(",")
        _put(record, "fuel", float_or_none(parts[2]) if len(parts) > 2 else None)
    else:
        _put(record, "result", data)
    r.device_time(record)
    return [record]


_BAA_KEYS = (
    ("accessoryName", str),
    ("accessoryMac", str),
    ("accessoryStatus", int_or_none),
    ("accessoryVoltage", lambda s: None if int_or_none(s) is None else int(s) / 1000),
    ("accessoryTemp", int_or_none),
    ("accessoryHumidity", int_or_none),
)


def _accessory(r: _Report, mask_at: int, bits_used: tuple[int, ...], limit: int) -> Records:
    v = r.v
    if len(v) <= mask_at + 1 or not re.match(r"[0-9A-Fa-f]{4}$", v[mask_at]):
        return None
    found = _anchored(r, mask_at + 1, limit)
    if found is None:
        return None
    record, start = found
    mask = int(v[mask_at], 16)
    values = iter(v[mask_at + 1 : start])
    for bit in bits_used:
        if mask >> bit & 1:
            value = next(values, "")
            key, parse = _BAA_KEYS[bit]
            _put(record, key, parse(value))
    r.device_time(record)
    return [record]


def _baa(r: _Report) -> Records:
    return _accessory(r, 8, (0, 1, 2, 3, 4, 5), 6)


def _bid(r: _Report) -> Records:
    return _accessory(r, 6, (1, 3), 2)


def _lsa(r: _Report) -> Records:
    v = r.v
    found = _anchored(r, 7, 0)
    if found is None:
        return None
    record, start = found
    k = _skip_block(v, start)
    if k + 5 > len(v):
        return None
    _put(record, "lightLevel", int_or_none(v[k + 1]))
    record.battery_level = int_or_none(v[k + 2])
    _put(record, "temp1", float_or_none(v[k + 5]))
    r.device_time(record)
    return [record]


def _lbs(r: _Report) -> Records:
    v = r.v
    if len(v) < 8:
        return None
    record = r.record()
    record.battery_level = int_or_none(v[6])
    k = 12
    towers = []
    for _ in range(7):
        if k + 5 > len(v):
            break
        mcc, mnc, lac, cid, rx = v[k : k + 5]
        if mnc and mcc.isdigit() and mnc.isdigit() and _HEX.match(lac) and _HEX.match(cid):
            towers.append(f"{int(mcc)}/{int(mnc)}/{int(lac, 16)}/{int(cid, 16)}/{rx}")
        k += 6
    if towers:
        first = towers[0].split("/")
        record.attributes.update(mcc=first[0], mnc=first[1], lac=first[2], cid=first[3])
        _put(record, "cells", ";".join(towers))
    return [record]


def _dat(r: _Report) -> Records:
    f = _Fields(r.v, 7)
    record = r.record()
    _put(record, "data", f.next())
    _located(record, f, r.model)
    r.device_time(record)
    return [record]


def _obd(r: _Report) -> Records:
    v = r.v
    start = _first_block(v, 20)
    if len(v) < 24 or start < 0:
        return None
    record = r.record()
    _put(record, "vin", v[3] or v[7] or None)
    _put(record, "rpm", int_or_none(v[11]))
    _put(record, "obdSpeed", int_or_none(v[12]))
    _put(record, "temp1", int_or_none(v[13]))
    _put(record, "fuelConsumption", v[14])
    _put(record, "dtcsClearedDistance", int_or_none(v[15]))
    if v[17] in ("0", "1"):
        _put(record, "odbConnect", v[17] == "1")
    _put(record, "dtcsNumber", int_or_none(v[18]))
    _put(record, "dtcsCodes", v[19])
    _put(record, "throttle", int_or_none(v[20]))
    _put(record, "fuel", int_or_none(v[22]))
    if (km := int_or_none(v[start - 1])) is not None:
        _put(record, "obdOdometer", km * 1000)
    _block(record, v, start)
    if (km := float_or_none(v[-3])) is not None and "." in v[-3]:
        _put(record, "obdOdometer", int(km * 1000))
    r.device_time(record)
    return [record]


# CAN report mask: (bit, key, parse); bit 5 (rpm) precedes bit 4 (speed) on the wire
_CAN_FIELDS: tuple[tuple[int, str, Callable[[str], object]], ...] = (
    (0, "vin", str),
    (1, "ignition", lambda s: int_or_none(s) is not None and int(s) > 0),
    (2, "obdOdometer", lambda s: int_or_none(s[1:])),
    (3, "fuelUsed", float_or_none),
    (5, "rpm", int_or_none),
    (4, "obdSpeed", float_or_none),
    (6, "coolantTemp", int_or_none),
    (7, "fuelConsumption", lambda s: float_or_none(s[3:]) if s.startswith("L/H") else None),
    (8, "fuel", lambda s: float_or_none(s[1:])),
    (9, "range", lambda s: None if int_or_none(s) is None else int(s) * 100),
    (10, "throttle", int_or_none),
    (11, "hours", lambda s: None if float_or_none(s) is None else round(float(s) * 3_600_000)),
    (12, "drivingTime", float_or_none),
    (13, "idleHours", float_or_none),
    (14, "idleFuelConsumption", float_or_none),
    (15, "axleWeight", int_or_none),
    (16, "tachographInfo", lambda s: int_or_none(s, 16)),
    (17, "indicators", lambda s: int_or_none(s, 16)),
    (18, "lights", lambda s: int_or_none(s, 16)),
    (19, "doors", lambda s: int_or_none(s, 16)),
    (20, "vehicleOverspeed", float_or_none),
    (21, "engineOverspeed", float_or_none),
)
_CAN_SKIPS = {"GV350M": (22, 23, 24), "GV355CEU": (22, 23, 24, 25, 26, 27, 28)}
# extended mask (bit 29 of the report mask): (bit, key or "" to skip, parse)
_CAN_EXT_FIELDS: tuple[tuple[int, str, Callable[[str], object]], ...] = (
    (0, "adBlueLevel", lambda s: float_or_none(s[1:])),
    (1, "axleWeight1", int_or_none),
    (2, "axleWeight3", int_or_none),
    (3, "axleWeight4", int_or_none),
    (4, "", str),
    (5, "", str),
    (6, "", str),
    (7, "adc1", lambda s: None if int_or_none(s) is None else int(s) / 1000),
    *((b, "", str) for b in range(8, 15)),
    (15, "driver1Card", str),
    (16, "driver2Card", str),
    (17, "driver1Name", str),
    (18, "driver2Name", str),
    (19, "registration", str),
    *((b, "", str) for b in range(20, 31)),
)


def _can(r: _Report) -> Records:
    v, model = r.v, r.model
    f = _Fields(v, 6)
    report_mask = int_or_none(f.next(), 16)
    if report_mask is None:
        return None
    record = r.record()
    for bit, key, parse in _CAN_FIELDS:
        if report_mask >> bit & 1:
            value = f.next()
            if value:
                parsed = parse(value)
                if key == "ignition":
                    record.ignition = bool(parsed)
                else:
                    _put(record, key, parsed)
    for bit in _CAN_SKIPS.get(model, ()):
        if report_mask >> bit & 1:
            f.skip()
    ext = 0
    if report_mask >> 29 & 1:
        ext = int_or_none(f.next(), 16) or 0
    for bit, key, parse in _CAN_EXT_FIELDS:
        if ext >> bit & 1:
            value = f.next()
            if key and value:
                _put(record, key, parse(value))
    if ext >> 31 & 1:
        can = int_or_none(f.next(), 16) or 0
        f.skip(bin(can & 7).count("1"))
    if model != "GV355CEU" and report_mask >> 30 & 1:
        while f.i < len(v) and not f.peek():
            f.skip()
        valid = int_or_none(f.next())
        if f.peek():
            _apply_fix(record, v, f.i - 1)
            record.valid = bool(valid)
    r.device_time(record)
    return [record]


def _basic(r: _Report) -> Records:
    """Any other report: a location block found by shape, the cell after it, alarms by type."""
    v = r.v
    record = r.record()
    kind = r.type
    if len(v) > 5 and re.match(r"[0-9A-Fa-f]{1,2}$", v[5]):
        report_type = int(v[5], 16)
        if kind == "NMR":
            _put(record, "motion", report_type == 1)
        elif kind == "DIS":
            _put(record, f"in{report_type // 16}", report_type % 16 == 1)
        elif kind == "IGL":
            record.ignition = report_type % 16 == 1
        elif kind == "HBM" and (alarm := HBM_ALARMS.get(report_type % 16)):
            record.alarms.append(alarm)
    located = False
    for k in range(3, len(v) - 2):
        if _COORD.match(v[k]) and _COORD.match(v[k + 1]) and k >= 4:
            _apply_fix(record, v, k - 4)
            located = record.has_position
            after = k + 3
            break
    else:
        after = 3
    for k in range(after, len(v) - 3):
        if (
            re.match(r"\d{4}$", v[k])
            and re.match(r"\d{4}$", v[k + 1])
            and re.match(r"[0-9A-Fa-f]{4}$", v[k + 2])
            and re.match(r"[0-9A-Fa-f]{4,8}$", v[k + 3])
        ):
            _apply_cell(record, *v[k : k + 4])
            break
    if r.send_time is not None:
        r.device_time(record)
        if located and re.match(r"\d{1,3}$", v[-3]):
            record.battery_level = int(v[-3])
    if alarm := TYPE_ALARMS.get(kind):
        record.alarms.append(alarm)
    if not located and not record.attributes and not record.alarms and record.ignition is None:
        return []
    return [record]


_TEXT_DECODERS: dict[str, Callable[[_Report], Records]] = {
    "INF": _inf,
    "OBD": _obd,
    "CAN": _can,
    "CTN": _fri,
    "FRI": _fri,
    "GEO": _fri,
    "RTL": _fri,
    "DOG": _fri,
    "STR": _fri,
    "ERI": _eri,
    "IGN": _ign,
    "IGF": _ign,
    "VGN": _ign,
    "VGF": _ign,
    "LSW": _lsw,
    "TSW": _lsw,
    "IDA": _ida,
    "WIF": _wif,
    "GSM": _gsm,
    "VER": _ver,
    "PNA": _pna,
    "PFA": _pna,
    "DAR": _dar,
    "DTT": _dtt,
    "BAA": _baa,
    "BID": _bid,
    "LSA": _lsa,
    "LBS": _lbs,
    "DAT": _dat,
}


def _text_kind(report: _Report) -> str:
    if report.head == HEARTBEAT:
        return "heartbeat"
    if report.head.startswith("+ACK"):
        return "other"
    if report.buffered:
        return "batch"
    if report.type in STATUS_TYPES:
        return "status"
    if report.type in ALARM_TYPES:
        return "alarm"
    return "position"


def _decode_text(frame: bytes, ctx: Context) -> Decoded:
    report = _Report(frame, ctx)
    kind = _text_kind(report)
    if report.head == HEARTBEAT:
        return Decoded(kind, report.imei, [])
    if report.head.startswith("+ACK"):
        return Decoded(kind, report.imei, _ack(report) or [])
    records: Records = None
    decoder = _TEXT_DECODERS.get(report.type)
    if decoder is not None:
        try:
            records = decoder(report)
        except DecodeError:
            records = None
    if records is None:
        records = _basic(report) or []
    for record in records:
        _put(record, "type", report.type)
    if kind in ("position", "alarm"):
        if any(r.alarms for r in records):
            kind = "alarm"
        elif not any(r.has_position for r in records):
            kind = "status"
        else:
            kind = "position"
    return Decoded(kind, report.imei, records)


# --- binary ------------------------------------------------------------------------------


def _binary_time(rd: Reader) -> datetime | None:
    year, month, day = rd.u16(), rd.u8(), rd.u8()
    return utc(year, month, day, rd.u8(), rd.u8(), rd.u8())


def _binary_fix(rd: Reader, record: Record) -> None:
    """hdop(1) speed(3, 0.1 km/h) course(2) altitude(2, signed) lon lat (int32 1e-6) time(7) cell(8) reserved(1)."""
    hdop = rd.u8()
    record.valid = hdop > 0
    _put(record, "hdop", hdop)
    record.speed = rd.u24() / 10
    record.course = rd.u16()
    record.altitude = rd.i16()
    lon, lat = rd.i32() / 1e6, rd.i32() / 1e6
    if -180 <= lon <= 180 and -90 <= lat <= 90:
        record.longitude, record.latitude = lon, lat
    record.fix_time = _binary_time(rd)
    _apply_cell(record, str(rd.u16()), str(rd.u16()), f"{rd.u16():x}", f"{rd.u16():x}")
    rd.skip(1)


def _imei_u64(rd: Reader) -> str | None:
    """The IMEI as an 8-byte integer; None when the 8 bytes hold no 15-digit number (units set
    to report their device name there instead, as some captures show)."""
    value = rd.u64()
    return f"{value:015d}" if value < 10**15 else None


MSG_RSP_LCB, MSG_RSP_GEO, MSG_RSP_COMPRESSED = 3, 8, 100
#: +EVT message type -> bytes of type-specific data before the location
_EVENT_EXTRA = {6: 2, 45: 7, 46: 7, 15: 3, 17: 4, 21: 5, 26: 12, 31: 2, 35: 1, 33: 1, 23: 1, 34: 3}
_EVENT_ALARMS = {6: alarms.LOW_BATTERY, 33: alarms.JAMMING, 31: alarms.JAMMING, 23: alarms.ACCIDENT}
_EVENT_IGNITION = {45: True, 46: False}


def _binary_location(frame: bytes, archive: bool) -> tuple[str | None, list[Record]]:
    rd = Reader(frame, 4)
    kind = rd.u8()
    rd.skip(4 + 2 + 1 + 2 + 2)  # mask, length, device type, protocol version, firmware version
    imei = _imei_u64(rd)
    battery, power = rd.u8(), rd.u16()
    if kind == MSG_RSP_GEO:
        rd.skip(2)
    rd.skip(1)  # motion status
    satellites = rd.u8()
    if kind != MSG_RSP_COMPRESSED:
        rd.skip(1)  # index
    if kind == MSG_RSP_LCB:
        rd.skip(1)  # phone length
        while True:
            b = rd.u8()
            if b & 0x0F == 0x0F or b & 0xF0 == 0xF0:
                break
    records: list[Record] = []
    if kind == MSG_RSP_COMPRESSED:
        count = rd.u16()
        speed = heading = lat = lon = 0
        seconds = 0
        for _ in range(count):
            if seconds:
                seconds += 1
            form = rd.peek() >> 6
            if form == 1:
                word = rd.u24()
                speed, heading = bits(word, 9, 12), bits(word, 0, 9)
                lon, lat = rd.i32(), rd.i32()
                if not seconds:
                    seconds = rd.u32()
            elif form == 2:
                word = rd.uint(5)
                speed += twos_complement(bits(word, 30, 7), 7)
                heading += twos_complement(bits(word, 23, 7), 7)
                lon += twos_complement(bits(word, 11, 12), 12)
                lat += twos_complement(bits(word, 0, 11), 11)
            else:
                rd.skip(1)  # invalid or repeated point
                continue
            record = Record(fix_time=unix(seconds), valid=True, archive=archive)
            record.speed, record.course = speed / 10, float(heading)
            if -180 <= lon / 1e6 <= 180 and -90 <= lat / 1e6 <= 90:
                record.longitude, record.latitude = lon / 1e6, lat / 1e6
            records.append(record)
    else:
        for _ in range(rd.u8()):
            record = Record(archive=archive, battery_level=battery, satellites=satellites)
            record.power = power / 1000
            _binary_fix(rd, record)
            records.append(record)
    return imei, records


def _binary_event(frame: bytes, archive: bool) -> tuple[str | None, list[Record]]:
    rd = Reader(frame, 4)
    kind = rd.u8()
    rd.skip(4 + 2 + 1 + 2)
    record = Record(archive=archive)
    _put(record, "versionFw", rd.u16())
    imei = _imei_u64(rd)
    record.battery_level = rd.u8()
    record.power = rd.u16() / 1000
    rd.skip(1)  # motion status
    record.satellites = rd.u8()
    rd.skip(_EVENT_EXTRA.get(kind, 0))
    rd.skip(1)  # count
    _binary_fix(rd, record)
    _put(record, "event", kind)
    if alarm := _EVENT_ALARMS.get(kind):
        record.alarms.append(alarm)
    if kind in _EVENT_IGNITION:
        record.ignition = _EVENT_IGNITION[kind]
    return imei, [record]


MSG_INF_CSQ, MSG_INF_VER, MSG_INF_BAT, MSG_INF_GIR = 5, 6, 7, 10


def _binary_information(frame: bytes) -> tuple[str | None, list[Record]]:
    rd = Reader(frame, 4)
    kind = rd.u8()
    rd.skip(4 + 2)
    imei = _imei_u64(rd)
    rd.skip(1 + 2)  # device type, protocol version
    record = Record()
    _put(record, "versionFw", rd.u16())
    if kind == MSG_INF_VER:
        rd.skip(6)
    rd.skip(2)  # motion status, reserved
    record.satellites = rd.u8()
    rd.skip(1 + 7 + 1 + 1 + 2 + 2 + 2 + 4 + 1)
    if kind == MSG_INF_BAT:
        _put(record, "charge", rd.u8() != 0)
        record.power = rd.u16() / 1000
        record.battery = rd.u16() / 1000
        record.battery_level = rd.u8()
    _put(record, "iccid", rd.bytes(10).hex())
    if kind == MSG_INF_CSQ:
        _put(record, "rssi", rd.u8())
        rd.skip(1)
    rd.skip(3)  # time zone
    if kind == MSG_INF_GIR:
        rd.skip(2)
        _apply_cell(record, str(rd.u16()), str(rd.u16()), f"{rd.u16():x}", f"{rd.u16():x}")
        rd.skip(2)
    record.fix_time = _binary_time(rd)
    return imei, [record]


def _varlen(rd: Reader) -> int:
    value = rd.u8()
    if value & 0x80:
        value = (value & 0x7F) << 8 | rd.u8()
    return value


def _binary_container(frame: bytes) -> tuple[str | None, list[Record]]:
    """``+`` 00 len(2) flags [frame no.(2)] IMEI(8 BCD) type(2) version(2) custom(1) reserved(n)
    records: len(var) time(4) count(2) id(1) event(1) items: id(var) len(var) data."""
    rd = Reader(frame, 2)
    length = rd.u16()
    if rd.u8() & 0x80:
        rd.skip(2)
    imei = rd.bytes(8).hex()[1:]
    rd.skip(2 + 2 + 1)
    rd.skip(rd.u8())
    end = min(length, len(frame)) - 4
    records: list[Record] = []
    while rd.pos < end:
        start = rd.pos
        record_end = start + _varlen(rd)
        if record_end <= start + 8:
            raise DecodeError("binary record shorter than its header")
        generated = unix(rd.u32())
        rd.skip(2 + 1)  # record count number, record id
        record = Record(fix_time=generated)
        _put(record, "event", rd.u8())
        while rd.pos < record_end:
            item = _varlen(rd)
            data = rd.sub(_varlen(rd))
            if item in (0x51, 0x52):
                _container_fix(record, data, item == 0x52)
            elif item == 0x61:
                data.skip(1)  # battery status
                record.battery = data.u16() / 1000
                record.battery_level = data.u8()
        _put(record, "deviceTime", generated.isoformat().replace("+00:00", "Z"))
        records.append(record)
        rd.pos = record_end
    return imei, records


def _container_fix(record: Record, data: Reader, full: bool) -> None:
    """Item 0x51 (short) / 0x52 (full) GNSS fix: state, lon, lat, time, speed [hdop, course, altitude, sats]."""
    record.valid = bits(data.u8(), 2, 2) == 0b10
    lon, lat = data.i32() / 1e6, data.i32() / 1e6
    if -180 <= lon <= 180 and -90 <= lat <= 90:
        record.longitude, record.latitude = lon, lat
    record.fix_time = unix(data.u32())
    record.speed = data.u16() / 10
    if full:
        _put(record, "hdop", data.u8() / 10)
        record.course = data.u16()
        record.altitude = data.uint(3, signed=True) / 10
        record.satellites = data.u8()


def _decode_binary(frame: bytes) -> Decoded:
    if frame[1] == 0:
        imei, records = _binary_container(frame)
        positioned = any(r.has_position for r in records)
        return Decoded("position" if positioned else "status", imei, records)
    tag = frame[:4]
    if tag in (b"+RSP", b"+BSP"):
        imei, records = _binary_location(frame, tag == b"+BSP")
        return Decoded("batch" if tag == b"+BSP" else "position", imei, records)
    if tag in (b"+EVT", b"+BVT"):
        imei, records = _binary_event(frame, tag == b"+BVT")
        return Decoded("alarm" if records[0].alarms else "position", imei, records)
    if tag in (b"+INF", b"+BNF"):
        imei, records = _binary_information(frame)
        return Decoded("status", imei, records)
    # +HBD / +ACK / +LGN / +CRD / +BRD: no position, and no IMEI at a fixed place (the
    # connection's identity applies)
    if tag == b"+HBD":
        return Decoded("heartbeat", None, [])
    return Decoded("login" if tag == b"+LGN" else "other", None, [])


# --- codec -------------------------------------------------------------------------------


def ack_reply(frame: bytes) -> bytes | None:
    """``+SACK:<count>$``: what a unit configured for server acknowledgement waits for after a report."""
    text = frame.decode("latin-1").rstrip("\r\n\x00").removesuffix("$")
    count = text.rsplit(",", 1)[-1]
    return f"+SACK:{count}$".encode() if _HEX.match(count) else None


def heartbeat_reply(version: str, count: str) -> bytes:
    return f"+SACK:GTHBD,{version},{count}$".encode()


class Gl200Codec(Codec):
    name = "gl200"
    #: the GL601 sends the same TLV container (Traccar serves it on its own port as `gl601`)
    aliases = ("gl601",)
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_FRAME
    first_bytes = b"+"
    priority = 30
    replies = True

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] != ord("+"):
            return Detection.NO
        if len(head) < 2:
            return Detection.MORE
        text = _detect_text(head)
        if text is not Detection.NO:
            return text
        return _detect_binary(head)

    def new_framer(self) -> Framer:
        return Gl200Framer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        """One report per datagram; a text report may come without its ``$``."""
        if datagram[:1] == b"+" and not is_binary(datagram) and TEXT_END not in datagram and NUL not in datagram:
            if len(datagram) > self.max_frame:
                raise FramingError("datagram too large", discarded=datagram, reason="frame too large")
            return [datagram]
        return split_with(self.new_framer(), datagram)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if len(frame) < 2 or frame[0] != ord("+"):
            raise DecodeError("not a Queclink frame")
        if is_binary(frame):
            decoded = self._binary(frame)
            return FrameInfo(decoded.kind, decoded.device_id, None)
        report = _Report(frame)
        reply = None
        if report.head == HEARTBEAT:
            reply = heartbeat_reply(report.v[1], report.v[-1])
        return FrameInfo(_text_kind(report), report.imei or None, reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        if len(frame) < 2 or frame[0] != ord("+"):
            raise DecodeError("not a Queclink frame")
        if is_binary(frame):
            return self._binary(frame)
        try:
            return _decode_text(frame, ctx)
        except (ValueError, IndexError) as exc:
            raise DecodeError(f"malformed report: {exc}") from exc

    @staticmethod
    def _binary(frame: bytes) -> Decoded:
        try:
            return _decode_binary(frame)
        except (ValueError, IndexError) as exc:
            raise DecodeError(f"malformed binary report: {exc}") from exc


CODEC = Gl200Codec()
