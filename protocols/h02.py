"""H02 trackers (SinoTrack ST-90x and the many no-brand ``*HQ`` units; Traccar `h02`, port 5013).

Two encodings share one connection (PROTOCOLS.md 3a/3b/5):

Text, ``*`` ... ``#`` (CR/LF may follow), comma separated::

    *XX,id,V1,hhmmss,A,ddmm.mmmm,N,dddmm.mmmm,E,speed,course,ddmmyy,status[,extra...]#
    *XX,id,V4,<confirmed command and its parameters...>,hhmmss,A,<as V1 from the validity on>#
    *HQ,id,HTBT[,battery %]#                 heartbeat          (V0 likewise)
    *HQ,id,NBR,hhmmss,mcc,mnc,delay,n,(lac,cid,rssi)*n,ddmmyy,status#      cell towers, no fix
    *HQ,id,LINK,hhmmss,rssi,satellites,battery %,steps,turnovers,ddmmyy,status#
    *HQ,id,V3,hhmmss,mccmnc,n,(lac,cid,level,ta)*n,battery(hex),reboot,X,ddmmyy,status#
    *hq,imei,VP1,A,ddmm.mmmm,N,dddmm.mmmm,E,speed,course,ddmmyy#   /   *hq,imei,VP1,V,mcc,mnc,cells (Y-separated)#
    *HQ,id,SMS,<free text answer>#

``XX`` is a two-letter maker tag (``HQ``, ``TH``, lower case seen), the id 10 digits
(SinoTrack) or a 15-digit IMEI.  Other ``V..`` types (V5, V6, V8, V19, VI1...) share the
V1 layout with extra fields; they are found by anchoring on the ``N|S`` and ``E|W``
hemisphere fields.  Coordinates come as ``ddmm.mmmm`` (any number of degree digits,
``38.6508,W`` included), ``-dd-mm.mmmm`` or ``dddmmmmmm``; the speed is in knots; the date
is ``ddmmyy``; all times are UTC.

Binary, ``$`` + BCD (32 bytes; 45 and longer variants append data we keep as hex;
a 42-byte variant carries an 8-byte id whose first 15 digits are the IMEI)::

    $ | id 5 B | hh mm ss | dd mm yy | lat ddmmmmmm 4 B | battery 1 B | lon dddmmmmm m 4.5 B
      | flags nibble (0x2 valid, 0x4 north, 0x8 east) | speed ddd (knots) + course ddd 3 B
      | status 4 B | trailing bytes

Status word: 32 bits, **inverted** (a cleared bit is active): bit 0 vibration, bit 1 or 18
SOS, bit 2 overspeed, bit 19 power cut; bit 10 is read as ignition (set = on), as Traccar
does.  The raw word is kept as ``status`` (decimal, as Traccar stores it).

Replies (the units tolerate missing ones): heartbeats ``HTBT``/``V0`` are echoed truncated
after the type (``*HQ,id,HTBT#``); ``V1`` is answered ``*HQ,id,V4,V1,yyyyMMddHHmmss#`` and
``NBR`` ``*HQ,id,V4,NBR,yyyyMMddHHmmss#``.  Traccar writes the server clock there; `inspect`
is sans-I/O, so it writes the frame's own date and time (no reply when the frame has none).
Binary frames are not answered.

Binary frame length: the stream carries no length field.  Like Traccar the framer tells a
long frame from the bytes that follow the 32nd: a new frame (``$``, ``*``, CR/LF) or
nothing at all ends a 32-byte frame, anything else makes it 45 bytes long; the first such
decision is kept for the rest of the connection (a unit sends one variant).

H02 has no flag for buffered points: ``archive`` is always False.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
from .kit.framing import drop_leading

STAR = ord("*")
DOLLAR = ord("$")
HASH = ord("#")
CR, LF = 0x0D, 0x0A
LINE_BREAKS = b"\r\n"
FRAME_STARTS = frozenset({STAR, DOLLAR, CR, LF})

KNOT_KMH = 1.852

# --- binary layout -------------------------------------------------------------------
BINARY_SHORT = 32
BINARY_LONG = 45
BINARY_LONG_ID = 42  # Traccar: the 8-byte id variant
SHORT_ID_BYTES = 5
LONG_ID_BYTES = 8
IMEI_DIGITS = 15
CORE_BYTES = 23  # after the marker and id: time 3, date 3, lat 4, battery 1, lon+flags 5, speed+course 3, status 4
# nibble offsets inside the core's hex text
N_TIME, N_DATE, N_LAT, N_BATTERY, N_LON, N_FLAGS, N_SPEED, N_COURSE, N_STATUS, N_END = (
    0, 6, 12, 20, 22, 31, 32, 35, 38, 46,
)  # fmt: skip
DIGIT_SPANS = ((N_TIME, N_BATTERY), (N_LON, N_FLAGS), (N_SPEED, N_STATUS))
FLAG_VALID, FLAG_NORTH, FLAG_EAST = 0x2, 0x4, 0x8
# battery byte (facts from Traccar): 1-3 -> 0/10/20 %, 4-6 -> 60/80/100 %, 7-100 -> %, F1-F6 -> 1-6 %
BATTERY_STEP_LOW, BATTERY_STEP_HIGH = 10, 20
BATTERY_CHARGING_BASE = 0xF0

# --- status word ---------------------------------------------------------------------
STATUS_ALARM_BITS: tuple[tuple[int, str], ...] = (
    (0, "vibration"),
    (1, "sos"),
    (18, "sos"),
    (2, "overspeed"),
    (19, "powerCut"),
)
IGNITION_BIT = 10
STATUS_DIGITS = 8
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

# --- text ----------------------------------------------------------------------------
HEARTBEATS = frozenset({"HTBT", "V0"})
STATUS_TYPES = frozenset({"NBR", "LINK", "V3"})
# types besides V.. that units send (detection must not take EasyTrack's *ET,id,DW... for H02)
OTHER_TYPES = frozenset({"HTBT", "NBR", "LINK", "SMS", "XT", "BS", "BASE"})
MAX_ID_LEN = 20
MAX_TYPE_LEN = 8
MAKER_LEN = 2
DATE_LEN = TIME_LEN = 6
SIM_INFO_FIELDS = 3  # V19: phone/IP, ICCID... between the date and the status
ODOMETER_EXTRA_FIELDS = 6  # odometer, temperature, fuel, altitude, lac, cid
TIME_LIMIT = timedelta(days=1)


# --- small parsers -------------------------------------------------------------------
def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _is_number(text: str) -> bool:
    """digits with at most one decimal point (`12`, `0.48`, `000.`)."""
    whole, _, fraction = text.partition(".")
    return bool(whole) and _is_digits(whole) and (not fraction or _is_digits(fraction))


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in HEX_DIGITS for c in text)


def _is_status(text: str) -> bool:
    return len(text) == STATUS_DIGITS and _is_hex(text)


def _is_letters(data: bytes) -> bool:
    return data.isascii() and data.isalpha()


def _timestamp(ddmmyy: str, hhmmss: str) -> datetime | None:
    """Date + time of day, UTC.  The time is read leniently (``160169`` is 16:02:09) as
    Traccar does; None when the date is not a real day or the time runs past one day."""
    if not (len(ddmmyy) == DATE_LEN and len(hhmmss) == TIME_LEN and _is_digits(ddmmyy + hhmmss)):
        return None
    try:
        day = datetime(2000 + int(ddmmyy[4:]), int(ddmmyy[2:4]), int(ddmmyy[:2]), tzinfo=UTC)
    except ValueError:
        return None
    offset = timedelta(hours=int(hhmmss[:2]), minutes=int(hhmmss[2:4]), seconds=int(hhmmss[4:]))
    return day + offset if offset < TIME_LIMIT else None


def _coordinate(value: str, hemisphere: str, limit: int) -> float | None:
    """`ddmm.mmmm`, `-dd-mm.mmmm` or `dddmmmmmm` + hemisphere -> signed degrees (None if empty)."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("-"):
        degrees, _, minutes = value[1:].partition("-")
    elif "." in value:
        whole, _, fraction = value.partition(".")
        degrees, minutes = whole[:-2], f"{whole[-2:]}.{fraction}"
    else:
        degrees, minutes = value[:-6], f"{value[-6:-4]}.{value[-4:]}"
    if not ((not degrees or _is_digits(degrees)) and _is_number(minutes)):
        raise DecodeError(f"bad coordinate {value!r}")
    result = int(degrees or 0) + float(minutes) / 60
    if result > limit or float(minutes) >= 60:
        raise DecodeError(f"coordinate out of range {value!r}")
    return -result if hemisphere in "SW" else result


def _apply_status(record: Record, word: int) -> None:
    for bit, alarm in STATUS_ALARM_BITS:
        if not word >> bit & 1 and alarm not in record.alarms:
            record.alarms.append(alarm)
    record.ignition = bool(word >> IGNITION_BIT & 1)
    record.attributes["status"] = str(word)


def _battery_percent(value: int) -> int | None:
    if value == 0:
        return None
    if value <= 3:
        return (value - 1) * BATTERY_STEP_LOW
    if value <= 6:
        return (value - 1) * BATTERY_STEP_HIGH
    if value <= 100:
        return value
    if BATTERY_CHARGING_BASE < value <= BATTERY_CHARGING_BASE + 6:
        return value - BATTERY_CHARGING_BASE
    return None


# --- binary --------------------------------------------------------------------------
def _binary_core_ok(nibbles: str) -> bool:
    """The core's digit fields are BCD and in range, as far as `nibbles` goes."""
    for start, end in DIGIT_SPANS:
        span = nibbles[start:end]
        if span and not span.isdigit():
            return False

    def field(start: int, width: int, low: int, high: int) -> bool:
        text = nibbles[start : start + width]
        return len(text) < width or low <= int(text) <= high

    return (
        field(N_TIME, 2, 0, 23)
        and field(N_TIME + 2, 2, 0, 59)
        and field(N_TIME + 4, 2, 0, 59)
        and field(N_DATE, 2, 1, 31)
        and field(N_DATE + 2, 2, 1, 12)
        and field(N_LAT, 2, 0, 90)
        and field(N_LAT + 2, 2, 0, 59)
        and field(N_LON, 3, 0, 180)
        and field(N_LON + 3, 2, 0, 59)
    )


def _binary_id_bytes(frame: bytes) -> int:
    return LONG_ID_BYTES if len(frame) == BINARY_LONG_ID else SHORT_ID_BYTES


def _binary_id(frame: bytes) -> str:
    if len(frame) < BINARY_SHORT:
        raise DecodeError(f"binary frame of {len(frame)} bytes (at least {BINARY_SHORT})")
    id_bytes = _binary_id_bytes(frame)
    device_id = frame[1 : 1 + id_bytes].hex()[: IMEI_DIGITS if id_bytes == LONG_ID_BYTES else None]
    if not device_id.isdigit():
        raise DecodeError("binary frame id is not BCD")
    return device_id


def _binary_core(frame: bytes) -> tuple[str, str, bytes]:
    """(device id, hex text of the core, trailing bytes); DecodeError unless the BCD fields are valid."""
    device_id = _binary_id(frame)
    core_start = 1 + _binary_id_bytes(frame)
    core = frame[core_start : core_start + CORE_BYTES].hex()
    if not _binary_core_ok(core):
        raise DecodeError("binary frame fields are not valid BCD")
    return device_id, core, frame[core_start + CORE_BYTES :]


def _decode_binary(frame: bytes, ctx: Context) -> Decoded:
    device_id, h, trailing = _binary_core(frame)
    flags = int(h[N_FLAGS], 16)
    latitude = int(h[N_LAT : N_LAT + 2]) + int(h[N_LAT + 2 : N_BATTERY]) / 10_000 / 60
    longitude = int(h[N_LON : N_LON + 3]) + int(h[N_LON + 3 : N_FLAGS]) / 10_000 / 60
    record = Record(
        fix_time=_timestamp(h[N_DATE:N_LAT], h[N_TIME:N_DATE]) or ctx.received_at,
        valid=bool(flags & FLAG_VALID),
        latitude=latitude if flags & FLAG_NORTH else -latitude,
        longitude=longitude if flags & FLAG_EAST else -longitude,
        speed=int(h[N_SPEED:N_COURSE]) * KNOT_KMH,
        course=float(int(h[N_COURSE:N_STATUS])),
        battery_level=_battery_percent(int(h[N_BATTERY:N_LON], 16)),
    )
    _apply_status(record, int(h[N_STATUS:N_END], 16))
    if trailing:
        record.attributes["data"] = trailing.hex()
    return Decoded("alarm" if record.alarms else "position", device_id, [record])


# --- text ----------------------------------------------------------------------------
def _text_kind(kind: str) -> str:
    if kind in HEARTBEATS:
        return "heartbeat"
    if kind in STATUS_TYPES:
        return "status"
    if kind.startswith("V"):
        return "position"
    return "other"


def _hemisphere_index(fields: list[str]) -> int | None:
    """Index of the N|S field of a V1-like position block (its E|W field is two further on)."""
    for i in range(6, len(fields) - 2):
        if fields[i] in ("N", "S") and fields[i + 2] in ("E", "W"):
            return i
    return None


def _date_index(fields: list[str], i: int) -> int | None:
    """Index of the ddmmyy field after speed and course (an optional battery field may sit between)."""
    for j in (i + 5, i + 6):
        if j < len(fields) and len(fields[j]) == DATE_LEN and _is_digits(fields[j]):
            return j
    return None


def _split(frame: bytes) -> list[str]:
    frame = frame.rstrip(b"\r\n")  # a capture may keep the line end some units send after "#"
    if len(frame) < MAKER_LEN + 3 or frame[0] != STAR or frame[-1] != HASH or frame[MAKER_LEN + 1] != ord(","):
        raise DecodeError("not an H02 text frame (*XX,id,TYPE...#)")
    if not _is_letters(frame[1 : MAKER_LEN + 1]):
        raise DecodeError("H02 maker tag is not two letters")
    fields = frame[1:-1].decode("latin-1").split(",")
    if len(fields) < 3 or not (fields[1] == "" or _is_digits(fields[1])):
        raise DecodeError("H02 text frame without a numeric id and a type")
    return fields


def _v_fix(fields: list[str], ctx: Context) -> Record | None:
    """A V1-like report (V1, V4, V5, V6, V8, V19, VI1...); None when it holds no hemispheres."""
    i = _hemisphere_index(fields)
    if i is None:
        return None
    record = Record()
    kind = fields[2].upper()
    validity, time = fields[i - 2], fields[i - 3]
    record.valid = validity == "A" or _is_digits(validity)  # digits: VI1's coding scheme
    prefix = fields[3 : i - 3]
    if prefix:
        record.attributes["result" if kind == "V4" else "data"] = ",".join(prefix)
    latitude = _coordinate(fields[i - 1], fields[i], 90)
    longitude = _coordinate(fields[i + 1], fields[i + 2], 180)
    if latitude is not None and longitude is not None:
        record.latitude, record.longitude = latitude, longitude
    speed = fields[i + 3].strip() if i + 3 < len(fields) else ""
    if speed:
        if not _is_number(speed):
            raise DecodeError(f"bad speed {speed!r}")
        record.speed = float(speed) * KNOT_KMH
    course = fields[i + 4] if i + 4 < len(fields) else ""
    if course:
        if not _is_number(course):
            raise DecodeError(f"bad course {course!r}")
        record.course = float(course)
    j = _date_index(fields, i)
    record.fix_time = (_timestamp(fields[j], time) if j is not None else None) or ctx.received_at
    if j == i + 6:
        record.attributes["batteryRaw"] = fields[i + 5]
    rest = fields[(i + 5 if j is None else j) + 1 :]  # an empty or broken date still takes its slot
    if rest and _is_status(rest[0]):
        status, rest = rest[0], rest[1:]
    elif len(rest) > SIM_INFO_FIELDS and _is_status(rest[SIM_INFO_FIELDS]):
        record.attributes["simInfo"] = ",".join(rest[:SIM_INFO_FIELDS])
        status, rest = rest[SIM_INFO_FIELDS], rest[SIM_INFO_FIELDS + 1 :]
    else:
        status = None
    if status is not None:
        _apply_status(record, int(status, 16))
    _extra_fields(record, rest)
    return record


def _extra_fields(record: Record, rest: list[str]) -> None:
    """Fields after the status word: odometer,temperature,fuel,altitude,lac,cid or io1..ioN."""
    if len(rest) == ODOMETER_EXTRA_FIELDS:
        odometer, temperature, fuel, altitude, lac, cid = rest
        if (
            _is_digits(odometer)
            and _is_digits(temperature.removeprefix("-"))
            and "." in fuel
            and _is_number(fuel)
            and _is_digits(altitude.removeprefix("-"))
        ):
            record.odometer = float(odometer)
            record.altitude = float(altitude)
            record.attributes.update({"temp1": temperature, "fuel": fuel, "lac": lac, "cid": cid})
            return
    for n, value in enumerate(rest, 1):
        record.attributes[f"io{n}"] = value.strip()


def _status_record(date: str, time: str, status: str, ctx: Context) -> Record:
    if not _is_status(status):
        raise DecodeError(f"bad status word {status!r}")
    record = Record(fix_time=_timestamp(date, time) or ctx.received_at)
    _apply_status(record, int(status, 16))
    return record


def _nbr(fields: list[str], ctx: Context) -> Record:
    """hhmmss, mcc, mnc, delay, count, (lac, cid, rssi)*count, ddmmyy, status."""
    if len(fields) < 8 or not _is_digits(fields[7]):
        raise DecodeError("NBR frame without a cell count")
    count = int(fields[7])
    end = 8 + 3 * count
    if len(fields) < end + 2:
        raise DecodeError("NBR frame shorter than its cell count")
    record = _status_record(fields[end], fields[3], fields[end + 1], ctx)
    cells = fields[8:end]
    record.attributes.update(
        {
            "mcc": fields[4],
            "mnc": fields[5],
            "gsmDelay": fields[6],
            "cellTowers": ";".join(",".join(cells[k : k + 3]) for k in range(0, len(cells), 3)),
        }
    )
    return record


def _link(fields: list[str], ctx: Context) -> Record:
    """hhmmss, rssi, satellites, battery %, steps, turnovers, ddmmyy, status."""
    if len(fields) < 11 or not all(_is_digits(f) for f in fields[4:9]):
        raise DecodeError("malformed LINK frame")
    record = _status_record(fields[9], fields[3], fields[10], ctx)
    record.satellites = int(fields[5])
    record.battery_level = float(fields[6])
    record.attributes.update({"rssi": fields[4], "steps": fields[7], "turnovers": fields[8]})
    return record


def _v3(fields: list[str], ctx: Context) -> Record:
    """hhmmss, mcc+mnc, count, (lac, cid, level, ta)*count, battery (hex), reboot, X, ddmmyy, status."""
    if len(fields) < 11 or fields[-3] != "X" or not _is_digits(fields[4]) or not _is_digits(fields[5]):
        raise DecodeError("malformed V3 frame")
    battery = fields[-5]
    if not _is_hex(battery):
        raise DecodeError(f"bad V3 battery field {battery!r}")
    record = _status_record(fields[-2], fields[3], fields[-1], ctx)
    cells = fields[6:-5]
    record.attributes.update(
        {
            "mcc": fields[4][:3],
            "mnc": fields[4][3:],
            "cellTowers": ";".join(",".join(cells[k : k + 4]) for k in range(0, len(cells), 4)),
            "batteryRaw": str(int(battery, 16)),
            "reboot": fields[-4],
        }
    )
    return record


def _vp1(fields: list[str], ctx: Context) -> Record:
    """`A|B,lat,N,lon,E,speed,course,ddmmyy` or `V,mcc,mnc,cells`.  The fix carries only a
    date, stamped at 00:00 UTC as Traccar does."""
    if len(fields) < 4:
        raise DecodeError("VP1 frame without data")
    if fields[3] == "V":
        if len(fields) < 6:
            raise DecodeError("VP1 cell report without mcc/mnc")
        cells = ",".join(fields[6:]).split("Y")
        return Record(
            fix_time=ctx.received_at,
            attributes={"mcc": fields[4], "mnc": fields[5], "cellTowers": ";".join(cells)},
        )
    if (
        len(fields) < 11
        or fields[3] not in ("A", "B")
        or fields[5] not in ("N", "S")
        or fields[7] not in ("E", "W")
        or not (_is_number(fields[8]) and _is_number(fields[9]))
    ):
        raise DecodeError("malformed VP1 position")
    latitude = _coordinate(fields[4], fields[5], 90)
    longitude = _coordinate(fields[6], fields[7], 180)
    return Record(
        fix_time=_timestamp(fields[10], "000000") or ctx.received_at,
        valid=True,
        latitude=latitude if longitude is not None else None,
        longitude=longitude if latitude is not None else None,
        speed=float(fields[8]) * KNOT_KMH,
        course=float(fields[9]),
    )


def _decode_text(frame: bytes, ctx: Context) -> Decoded:
    fields = _split(frame)
    device_id = fields[1] or None
    kind = fields[2].upper()
    frame_kind = _text_kind(kind)
    record: Record | None
    if kind in HEARTBEATS:
        level = fields[3] if len(fields) > 3 else ""
        record = Record(fix_time=ctx.received_at, battery_level=float(level)) if _is_digits(level) else None
    elif kind == "NBR":
        record = _nbr(fields, ctx)
    elif kind == "LINK":
        record = _link(fields, ctx)
    elif kind == "V3":
        record = _v3(fields, ctx)
    elif kind == "VP1":
        record = _vp1(fields, ctx)
        frame_kind = "position" if record.has_position else "status"
    elif kind == "SMS":
        text = frame[1:-1].decode("latin-1").split(",", 3)
        record = Record(fix_time=ctx.received_at, attributes={"result": text[3] if len(text) > 3 else ""})
    else:
        record = _v_fix(fields, ctx)
    if record is None:
        return Decoded(frame_kind, device_id, [])
    if record.alarms:
        frame_kind = "alarm"
    return Decoded(frame_kind, device_id, [record])


def _reply_time(fields: list[str]) -> str | None:
    """yyyyMMddHHmmss from the frame's own date and time (see the module docstring)."""
    kind = fields[2].upper()
    when = None
    if kind == "NBR":
        if len(fields) > 7 and _is_digits(fields[7]) and len(fields) > 8 + 3 * int(fields[7]):
            when = _timestamp(fields[8 + 3 * int(fields[7])], fields[3])
    else:
        i = _hemisphere_index(fields)
        j = _date_index(fields, i) if i is not None else None
        if i is not None and j is not None:
            when = _timestamp(fields[j], fields[i - 3])
    return f"{when:%Y%m%d%H%M%S}" if when else None


def _text_reply(frame: bytes, fields: list[str]) -> bytes | None:
    kind = fields[2].upper()
    if kind in HEARTBEATS:
        type_end = 1 + len(fields[0]) + 1 + len(fields[1]) + 1 + len(fields[2])
        return frame[:type_end] + b"#"
    if kind in ("V1", "NBR") and fields[1]:
        when = _reply_time(fields)
        if when:
            return f"*HQ,{fields[1]},V4,{kind},{when}#".encode("ascii")
    return None


# --- detection -----------------------------------------------------------------------
def _detect_text(head: bytes) -> Detection:
    """`*` + 2 letters + `,` + digits + `,` + an H02 type + `,` or `#`."""
    n = len(head)
    if n > 1 and not _is_letters(head[1 : MAKER_LEN + 1]):
        return Detection.NO
    if n <= MAKER_LEN + 1:
        return Detection.MORE
    if head[MAKER_LEN + 1] != ord(","):
        return Detection.NO
    id_start = MAKER_LEN + 2
    id_end = head.find(b",", id_start, id_start + MAX_ID_LEN + 1)
    if id_end < 0:
        partial = head[id_start : id_start + MAX_ID_LEN + 1]
        ok = len(partial) <= MAX_ID_LEN and (not partial or partial.isdigit())
        return Detection.MORE if ok else Detection.NO
    if id_end > id_start and not head[id_start:id_end].isdigit():
        return Detection.NO
    kind = head[id_end + 1 : id_end + 2 + MAX_TYPE_LEN]
    for end, byte in enumerate(kind):
        if byte in b",#":
            return Detection.YES if _h02_type(kind[:end].decode("ascii").upper(), complete=True) else Detection.NO
        if not (0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A):
            return Detection.NO
    partial = kind.decode("ascii").upper()
    return Detection.MORE if len(kind) <= MAX_TYPE_LEN and _h02_type(partial, complete=False) else Detection.NO


def _h02_type(kind: str, *, complete: bool) -> bool:
    if not kind:
        return True  # `*HQ,4109198974,#` is seen; a partial type may still become anything
    if kind.startswith("V") or kind in OTHER_TYPES:
        return True
    return not complete and any(t.startswith(kind) for t in OTHER_TYPES)


def _detect_binary(head: bytes) -> Detection:
    core = head[1 + SHORT_ID_BYTES : 1 + SHORT_ID_BYTES + CORE_BYTES].hex()
    if not (head[1 : 1 + SHORT_ID_BYTES].hex().isdigit() or len(head) == 1) or not _binary_core_ok(core):
        return Detection.NO
    return Detection.YES if len(head) >= BINARY_SHORT else Detection.MORE


# --- framing -------------------------------------------------------------------------
class H02Framer(Framer):
    """Text (`*`...`#`) and binary (`$`, 32 or 45 bytes) frames, CR/LF skipped between."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 1  # where to resume looking for the `#` of a text frame
        self._binary_len: int | None = None  # decided once per connection

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if drop_leading(buf, LINE_BREAKS):
            self._scan = 1
        if not buf:
            return None
        if buf[0] == STAR:
            return self._text()
        if buf[0] == DOLLAR:
            return self._binary()
        star, dollar = buf.find(STAR), buf.find(DOLLAR)
        cut = min((p for p in (star, dollar) if p >= 0), default=len(buf))
        junk = bytes(buf[:cut])
        del buf[:cut]
        raise FramingError(f"{len(junk)} bytes outside a frame", discarded=junk, reason="garbage")

    def _text(self) -> bytes | None:
        buf = self._buf
        end = buf.find(HASH, self._scan, self.max_frame)
        if end < 0:
            self._scan = max(1, min(len(buf), self.max_frame))
            if len(buf) >= self.max_frame:
                junk = bytes(buf)
                buf.clear()
                self._scan = 1
                raise FramingError(
                    f"no '#' within {self.max_frame} bytes", discarded=junk, fatal=True, reason="frame too large"
                )
            return None
        self._scan = 1
        frame = bytes(buf[: end + 1])
        del buf[: end + 1]
        return frame

    def _binary(self) -> bytes | None:
        buf = self._buf
        length = self._binary_len
        if length is None:
            if len(buf) < BINARY_SHORT:
                return None
            if len(buf) == BINARY_SHORT:
                length = BINARY_SHORT  # nothing follows yet: the common short frame, decision deferred
            else:
                length = BINARY_SHORT if buf[BINARY_SHORT] in FRAME_STARTS else BINARY_LONG
                self._binary_len = length
        if len(buf) < length:
            return None
        frame = bytes(buf[:length])
        del buf[:length]
        return frame


class H02Codec(Codec):
    name = "h02"
    first_bytes = b"*$"
    priority = 20
    replies = False
    transports = frozenset({"tcp", "udp"})
    max_frame = 1024  # text frames run to ~250 bytes, SMS answers a little more

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        if head[0] == STAR:
            return _detect_text(head)
        if head[0] == DOLLAR:
            return _detect_binary(head)
        return Detection.NO

    def new_framer(self) -> Framer:
        return H02Framer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        """Every frame of the datagram; a binary frame runs to the end unless a new frame
        starts right after its 32nd byte.  Bytes outside frames reject the datagram."""
        frames: list[bytes] = []
        pos, size = 0, len(datagram)
        while pos < size:
            lead = datagram[pos]
            if lead in LINE_BREAKS:
                pos += 1
                continue
            if lead == STAR:
                end = datagram.find(b"#", pos) + 1
            elif lead == DOLLAR and size - pos >= BINARY_SHORT:
                short = size - pos > BINARY_SHORT and datagram[pos + BINARY_SHORT] in FRAME_STARTS
                end = pos + BINARY_SHORT if short else size
            else:
                end = 0
            if end <= pos or end - pos > self.max_frame:
                raise FramingError("datagram holds bytes outside a frame", discarded=datagram, reason="garbage")
            frames.append(datagram[pos:end])
            pos = end
        if not frames:
            raise FramingError("empty datagram", discarded=datagram, reason="garbage")
        return frames

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        if frame[:1] == b"$":
            return FrameInfo("position", _binary_core(frame)[0], None)
        fields = _split(frame)
        return FrameInfo(_text_kind(fields[2].upper()), fields[1] or None, _text_reply(frame, fields))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        if frame[:1] == b"$":
            return _decode_binary(frame, ctx)
        return _decode_text(frame, ctx)


CODEC = H02Codec()
