"""Coban GPS-10x/30x/40x, TK103A/B and their many clones (Traccar `gps103`, port 5001).

ASCII frames, comma separated, each ended by ``;``, ``*``, ``\\n`` or ``\\r\\n`` (the
terminator is kept in the frame, as Traccar's frame decoder keeps it)::

    ##,imei:359586015829802,A;                       login            -> LOAD
    359586015829802;                                 heartbeat        -> ON
    imei:<imei>,<keyword>,<local time>,<rfid|phone>,F,<hhmmss.sss UTC>,A|V,<lat>,N|S,<lon>,E|W,
         <speed knots>,<course>[,<altitude>,<ignition 0/1>,<door 0/1>,<fuel1 %>,<fuel2 %>,<temp>];
    imei:<imei>,<keyword>,<local time>,<rfid|phone>,L,,,<lac hex>,,<cid hex>,,,;   no GPS fix
    imei:<imei>,OBD,<yymmddhhmmss>,<odometer>,<fuel now>,<fuel avg>,<hours>,<speed>,<load %>,
         <coolant>,<throttle %>,<rpm>,<battery V>,<dtc>,<dtc>,...;
    imei:<imei>,vr,<hex photo chunk>;                photo data (after a `vt<count>` report)
    imei:<imei>,<name>,<event>,<sensor>,<voltage>,hhmmss,ddmmyy,<rssi>,<fix 0/1>,<lat deg>,
         <lon deg>,<speed km/h>,<course>,<alt>,<hdop>,<sat>,<ignition>,<charge>,<error>,*

The local time is ``yymmddhhmm[ss]`` (``yy/mm/dd hh:mm`` on old firmware): the unit's
``time zone`` setting.  The UTC time of day comes from the GPRMC part; the offset between
the two (rounded into -12h..+12h) corrects the local date, as Traccar does.  Hemisphere
letters may stand before or after the ``ddmm.mmmm`` value; a longitude may have none.

Keywords: ``tracker`` (periodic), ``help me`` SOS, ``low battery``, ``stockade``
geofence, ``move``, ``speed`` overspeed, ``door alarm``, ``ac alarm`` power cut,
``accident alarm``, ``sensor alarm`` vibration, ``bonnet alarm``, ``footbrake alarm``,
``DTC`` fault, ``T:<temp>`` temperature, ``oil...`` fuel leak (``oil <level>``), ``acc
on``/``acc off`` ignition, ``rfid`` (driver id in the rfid field); anything else is kept
as ``event``.

Replies: ``LOAD`` to a login (any frame with ``imei:`` of at most 30 characters), ``ON``
to a digit-led heartbeat, ``**,imei:<imei>,E;`` after ``help me`` (stops the SOS repeats).
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
from .kit.framing import LineFramer, drain
from .kit.readers import KNOTS, checked_coordinates, ddmm, ddmmyy_hhmmss, utc, yymmdd_hhmmss

LOGIN_PREFIX = b"##,imei:"
IMEI_PREFIX = b"imei:"
IMEI_DIGITS = 15
MAX_ID_DIGITS = 20
SHORT_LOGIN = 30  # Traccar answers LOAD to any imei: frame this short
PHOTO_OFFSET = 21  # "imei:" + 15 digits + ","
OBD_TYPE = "OBD"

REPLY_LOAD = b"LOAD"
REPLY_ON = b"ON"

KEYWORD_ALARMS = {
    "help me": alarms.SOS,
    "low battery": alarms.LOW_BATTERY,
    "stockade": alarms.GEOFENCE,
    "move": alarms.MOVEMENT,
    "speed": alarms.OVERSPEED,
    "door alarm": alarms.DOOR,
    "ac alarm": alarms.POWER_CUT,
    "accident alarm": alarms.ACCIDENT,
    "sensor alarm": alarms.VIBRATION,
    "bonnet alarm": alarms.BONNET,
    "footbrake alarm": alarms.FOOT_BRAKE,
    "DTC": alarms.FAULT,
}
SOS_KEYWORD = "help me"
PERIODIC_KEYWORD = "tracker"
MS_PER_HOUR = 3_600_000


def keyword_alarm(keyword: str) -> str | None:
    """Traccar's alarm for a keyword field (None: not an alarm)."""
    if keyword.startswith("T:"):
        return alarms.TEMPERATURE
    if keyword.startswith("oil"):
        return alarms.FUEL_LEAK
    return KEYWORD_ALARMS.get(keyword)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _number(text: str) -> float | None:
    """A plain unsigned/signed decimal ('12', '-0.1', '+22'), None otherwise."""
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.replace(".", "", 1).isdigit():
        return None
    return float(text)


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _detect_prefix(head: bytes, signature: bytes) -> Detection | None:
    """MORE while head is a prefix of signature, None once past it, NO when it differs."""
    n = min(len(head), len(signature))
    if head[:n] != signature[:n]:
        return Detection.NO
    return Detection.MORE if len(head) < len(signature) else None


def _detect_imei(head: bytes, offset: int) -> Detection:
    """`imei:` + digits + `,` starting at offset."""
    verdict = _detect_prefix(head[offset:], IMEI_PREFIX)
    if verdict is not None:
        return verdict
    i = offset + len(IMEI_PREFIX)
    j = i
    while j < len(head) and 0x30 <= head[j] <= 0x39:
        j += 1
    if j - i > MAX_ID_DIGITS:
        return Detection.NO
    if j == len(head):
        return Detection.MORE
    return Detection.YES if head[j] == 0x2C and j > i else Detection.NO


class _Frame:
    """The outer shape of one frame: what inspect needs."""

    __slots__ = ("body", "imei", "kind", "reply", "text")

    def __init__(self, frame: bytes) -> None:
        raw = frame.decode("latin-1")
        self.text = raw.rstrip("\r\n")
        self.reply: bytes | None = None
        self.imei: str | None = None
        self.body: str | None = None  # the `imei:` sentence to decode
        if "imei:" in self.text and len(self.text) <= SHORT_LOGIN:
            self.kind = "login"
            self.reply = REPLY_LOAD
            start = self.text.find("imei:") + len("imei:")
            end = start
            while end < len(self.text) and self.text[end].isdigit():
                end += 1
            self.imei = self.text[start:end] or None
            return
        sentence = self.text
        if sentence[:1].isdigit():
            self.reply = REPLY_ON
            start = sentence.find("imei:")
            if start < 0:
                self.kind = "heartbeat"
                digits = sentence.rstrip(";*")
                self.imei = digits if _digits(digits) else None
                return
            sentence = sentence[start:]
        if not sentence.startswith("imei:"):
            raise DecodeError("not a GPS103 frame (imei:<digits>,...)")
        comma = sentence.find(",")
        imei = sentence[5:comma] if comma > 0 else ""
        if not _digits(imei):
            raise DecodeError("GPS103 frame without a numeric imei")
        self.imei = imei
        self.body = sentence
        keyword = sentence[comma + 1 :].split(",", 1)[0]
        if sentence.startswith("vr", PHOTO_OFFSET):
            self.kind = "other"
        elif OBD_TYPE in sentence[PHOTO_OFFSET : PHOTO_OFFSET + 3]:
            self.kind = "status"
        elif keyword_alarm(keyword):
            self.kind = "alarm"
            if keyword == SOS_KEYWORD:
                self.reply = f"**,imei:{imei},E;".encode("ascii")
        else:
            self.kind = "position"


class Gps103Codec(Codec):
    name = "gps103"
    first_bytes = b"#i0123456789"
    priority = 30
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 32768  # Traccar's CharacterDelimiterFrameDecoder limit (photo chunks)

    def detect(self, head: bytes, transport: str) -> Detection:
        if not head:
            return Detection.MORE
        lead = head[0]
        if lead == 0x23:  # "##,imei:"
            verdict = _detect_prefix(head, LOGIN_PREFIX[:3])
            if verdict is not None:
                return verdict
            return _detect_imei(head, 3)
        if lead == 0x69:  # "imei:"
            return _detect_imei(head, 0)
        j = 0
        while j < len(head) and 0x30 <= head[j] <= 0x39:
            j += 1
        if j < IMEI_DIGITS:
            return Detection.MORE if j == len(head) else Detection.NO
        if j > IMEI_DIGITS:
            return Detection.NO
        if j == len(head):
            return Detection.MORE
        if head[j] in b";\r\n":
            return Detection.YES
        return _detect_imei(head, j)

    def new_framer(self) -> Framer:
        return LineFramer(self.max_frame, ends=b"\n;*", skip=b"\r\n")

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        """Terminated frames; the last one may lack its terminator (Traccar reads a
        datagram as one message)."""
        framer = self.new_framer()
        frames = drain(framer, datagram)
        rest = framer.take_rest()
        if rest.strip(b"\r\n"):
            frames.append(rest)
        if not frames:
            raise FramingError("empty datagram", discarded=datagram, reason="garbage")
        return frames

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        shape = _Frame(frame)
        return FrameInfo(shape.kind, shape.imei, shape.reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        shape = _Frame(frame)
        if shape.body is None or shape.kind == "other":
            return Decoded(shape.kind, shape.imei, [])
        sentence = shape.body.rstrip("\r\n")
        if sentence.endswith(";"):
            sentence = sentence[:-1]
        if shape.kind == "status":
            record = _decode_obd(sentence)
        elif sentence.endswith("*"):
            record = _decode_alternative(sentence[:-1])
        else:
            record = _decode_regular(sentence, ctx)
        kind = shape.kind
        if kind == "position" and not record.has_position:
            kind = "status"
        return Decoded(kind, shape.imei, [record])


# ------------------------------------------------------------------ regular reports


def _local_time(text: str) -> tuple[datetime, int, int] | None:
    """(local date at midnight, hours, minutes) from `yymmddhhmm[ss]` / `yy/mm/dd hh:mm`."""
    digits = text.replace("/", "").replace(" ", "").replace(":", "")
    if not _digits(digits) or len(digits) not in (10, 12):
        return None
    day = utc(int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    hours, minutes = int(digits[6:8]), int(digits[8:10])
    if day is None or hours > 23 or minutes > 59:
        return None
    return day, hours, minutes


def _utc_time(text: str) -> tuple[int, int, int, int] | None:
    """(h, m, s, microseconds) of a GPRMC `hhmmss[.sss]`; None for the speed-like variants."""
    whole, _, fraction = text.partition(".")
    if len(whole) != 6 or not _digits(whole) or (fraction and not _digits(fraction)):
        return None
    h, m, s = int(whole[:2]), int(whole[2:4]), int(whole[4:6])
    if h > 23 or m > 59 or s > 59:
        return None
    micro = round(float("0." + fraction) * 1e6) if fraction else 0
    return h, m, s, min(micro, 999_999)


def _fix_time(local: tuple[datetime, int, int] | None, gps: tuple[int, int, int, int] | None, ctx: Context):
    if local is None:
        base = ctx.received_at
        if base is None or gps is None:
            return base
        return base.replace(hour=gps[0], minute=gps[1], second=gps[2], microsecond=gps[3])
    day, hours, minutes = local
    moment = day + timedelta(hours=hours, minutes=minutes)
    if gps is None:
        return moment
    delta = (hours - gps[0]) * 60 + minutes - gps[1]
    if delta <= -12 * 60:
        delta += 24 * 60
    elif delta > 12 * 60:
        delta -= 24 * 60
    return moment + timedelta(seconds=gps[2], microseconds=gps[3]) - timedelta(minutes=delta)


def _coordinate(
    fields: list[str], i: int, letters: tuple[str, str], limit: int, empty_after: bool
) -> tuple[float, int]:
    """A `ddmm.mmmm` value with its hemisphere letter before or after it (a longitude may
    have an empty one after it)."""
    before = ""
    if i < len(fields) and fields[i] in letters:
        before = fields[i]
        i += 1
    if i >= len(fields):
        raise DecodeError("truncated coordinates")
    value = fields[i]
    i += 1
    after = ""
    if i < len(fields) and (fields[i] in letters or (empty_after and fields[i] == "")):
        after = fields[i]
        i += 1
    whole, dot, fraction = value.partition(".")
    if not (dot and _digits(whole) and len(whole) >= 3 and _digits(fraction)):
        raise DecodeError(f"bad coordinate {value!r}")
    degrees = ddmm(value, before or after)
    if abs(degrees) > limit:
        raise DecodeError(f"coordinate out of range: {value}")
    return degrees, i


def _decode_regular(sentence: str, ctx: Context) -> Record:
    fields = sentence.split(",")
    if len(fields) < 5:
        raise DecodeError("GPS103 report with fewer than 5 fields")
    keyword = fields[1]
    record = Record()
    attrs = record.attributes
    alarm = keyword_alarm(keyword)
    if alarm:
        record.alarms.append(alarm)
    if keyword == "acc on":
        record.ignition = True
    elif keyword == "acc off":
        record.ignition = False
    elif keyword.startswith("T:"):
        temp = _number(keyword[2:])
        if temp is not None:
            attrs["temp1"] = _fmt(temp)
    elif keyword.startswith("oil "):
        fuel = _number(keyword[4:])
        if fuel is not None:
            attrs[keys.FUEL] = _fmt(fuel)
    elif keyword.startswith("vt"):
        pass  # announces a photo of that many `vr` chunks
    elif not alarm and keyword and keyword != PERIODIC_KEYWORD:
        attrs[keys.EVENT] = keyword
    local = _local_time(fields[2])
    rfid = fields[3]
    if keyword == "rfid" and rfid:
        attrs[keys.DRIVER_UNIQUE_ID] = rfid
    source = fields[4]
    if source == "L":
        _cell(fields, attrs)
        if local is not None:
            record.fix_time = local[0] + timedelta(hours=local[1], minutes=local[2])
        else:
            record.fix_time = ctx.received_at
        return record
    if source != "F" or len(fields) < 9:
        raise DecodeError(f"GPS103 report source {source!r} is neither F nor L")
    gps = _utc_time(fields[5])
    if fields[6] not in ("A", "V"):
        raise DecodeError(f"bad validity {fields[6]!r}")
    record.valid = fields[6] == "A"
    latitude, i = _coordinate(fields, 7, ("N", "S"), 90, False)
    longitude, i = _coordinate(fields, i, ("E", "W"), 180, True)
    record.latitude, record.longitude = checked_coordinates(latitude, longitude)
    record.fix_time = _fix_time(local, gps, ctx)
    _tail(fields[i:], record)
    return record


def _cell(fields: list[str], attrs: dict[str, str]) -> None:
    if len(fields) > 9 and fields[5] == fields[6] == fields[8] == "":
        try:
            lac, cid = int(fields[7], 16), int(fields[9], 16)
        except ValueError:
            return
        attrs[keys.LAC] = str(lac)
        attrs[keys.CELL_ID] = str(cid)


def _tail(rest: list[str], record: Record) -> None:
    """speed, course, altitude, ignition, door, fuel1 %, fuel2 %, temperature: each optional,
    read in order while they have their shape."""
    values = [*rest, *[""] * 8][:8]
    speed, course, altitude = (_number(v) for v in values[:3])
    record.speed = (speed or 0.0) * KNOTS
    record.course = course or 0.0
    record.altitude = altitude or 0.0
    for text in values[:3]:
        if text and _number(text) is None:
            return
    ignition, door, fuel1, fuel2, temp = values[3:8]
    if ignition not in ("", "0", "1"):
        return
    if ignition:
        record.ignition = ignition == "1"
    if door not in ("", "0", "1"):
        return
    if door:
        record.attributes[keys.DOOR] = "true" if door == "1" else "false"
    if fuel1:
        if not fuel1.endswith("%") or _number(fuel1[:-1]) is None:
            return
        record.attributes["fuel1"] = fuel1[:-1]
    if fuel2:
        value = fuel2[:-1] if fuel2.endswith("%") else fuel2
        if _number(value) is None:
            return
        if fuel2.endswith("%"):
            record.attributes["fuel2"] = value
    if temp:
        body = temp[1:] if temp[:1] in "+-" else temp
        if _digits(body):
            record.attributes["temp1"] = str(int(temp))


# ------------------------------------------------------------------ OBD and alternative


def _decode_obd(sentence: str) -> Record:
    fields = sentence.split(",")
    if len(fields) < 15 or len(fields[2]) != 12:
        raise DecodeError("short GPS103 OBD report")
    record = Record(fix_time=yymmdd_hhmmss(fields[2][:6], fields[2][6:]))
    attrs = record.attributes
    odometer, _instant, average, hours, speed, load, coolant, throttle, rpm, battery = fields[3:13]
    if odometer:
        if not _digits(odometer):
            raise DecodeError(f"bad OBD odometer {odometer!r}")
        record.odometer = float(odometer)
    if _number(average) is not None:
        attrs[keys.FUEL_CONSUMPTION] = average
    if _digits(hours):
        attrs[keys.HOURS] = str(int(hours) * MS_PER_HOUR)
    if _digits(speed):
        attrs[keys.OBD_SPEED] = str(int(speed))
    if load:
        attrs[keys.ENGINE_LOAD] = load
    coolant_value = _number(coolant)
    if coolant_value is not None:
        attrs[keys.COOLANT_TEMP] = str(int(coolant_value))
    if throttle:
        attrs[keys.THROTTLE] = throttle
    if _digits(rpm):
        attrs[keys.RPM] = str(int(rpm))
    volts = _number(battery)
    if volts is not None:
        record.battery = volts
    dtcs = " ".join(code for code in fields[13:] if code)
    attrs[keys.DTCS] = dtcs
    return record


def _decode_alternative(sentence: str) -> Record:
    fields = sentence.rstrip(",").split(",")
    if len(fields) < 19:
        raise DecodeError("short GPS103 alternative report")
    _imei, _name, event, sensor, voltage, hms, dmy, rssi, fix, lat, lon, speed, course, alt, hdop, sat, ign, charge = (
        fields[:18]
    )
    error = fields[18]
    numbers = [_number(v) for v in (lat, lon, speed, course, alt, hdop)]
    if any(n is None for n in numbers) or not (_digits(sat) and _digits(rssi) and _digits(fix)):
        raise DecodeError("malformed GPS103 alternative report")
    latitude, longitude, speed_kmh, course_deg, altitude, hdop_value = numbers
    record = Record(fix_time=ddmmyy_hhmmss(dmy, hms))
    record.valid = int(fix) > 0
    record.latitude, record.longitude = checked_coordinates(latitude, longitude)  # type: ignore[arg-type]
    record.speed, record.course, record.altitude = speed_kmh, course_deg, altitude
    record.satellites = int(sat)
    record.ignition = ign == "1"
    attrs = record.attributes
    for key, value in ((keys.EVENT, event), ("sensorId", sensor), ("sensorVoltage", voltage), ("error", error)):
        if value and value.strip("-"):
            attrs[key] = value
    attrs[keys.RSSI] = str(int(rssi))
    attrs[keys.HDOP] = _fmt(hdop_value)  # type: ignore[arg-type]
    attrs[keys.CHARGE] = "true" if charge == "1" else "false"
    return record


CODEC = Gps103Codec()
