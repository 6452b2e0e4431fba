"""Generic NMEA trackers and phone apps (Traccar `t55`: the old Traccar Client, Maxon, WMCS,
u-blox PUBX units, "NMEA over TCP/UDP" apps ...).  A loose fallback: tried after every protocol
with a specific ``$`` signature.

One text sentence per line (``\\n``, CR ignored; UDP: one or more lines per datagram)::

    [<id>[,|/<id>/]]$<talker><type>,field,...[*hh][,t55 extension]

Identification lines (no position; the id is bound to the connection)::

    $PGID,<id>*hh     $DEVID,<id>*hh    $PCPTI,<id>,...   $PSIWMDID,<id>*hh
    $CONNECT,<id>,... $IMEI=<id>        IMEI <id>         $GPFID,<id>     <hex id>

Position sentences (any common talker ``GP``/``GN``/``GL``/``GA``/``GB``/``BD``/``II``)::

    RMC  hhmmss[.s],A|V,ddmm.m,N|S,dddmm.m,E|W,knots,course,ddmmyy[,magvar,E|W,mode,nav][*hh]
         t55 extension after the checksum: ,sats,imei,ignition 0|1,fuel,battery[,io1,io2...]
    GGA  hhmmss[.s],lat,N|S,lon,E|W,quality (0 = no fix),sats,hdop,altitude,...   (no date)
    GLL  lat,N|S,lon,E|W,hhmmss[.s],A|V,...                                          (no date)
    $GPRMA,A|V,lat,N|S,lon,E|W,,,knots,course,...                                    (no time)
    $TRCCR,yyyymmddhhmmss.sss,A|V,lat°,lon°,knots,course,altitude,battery,...
    $PUBX,00,hhmmss.ss,lat,N|S,lon,E|W,alt,status (NF = no fix),hacc,vacc,km/h,course,vvel,
          age,hdop,vdop,tdop,sats,<id>,...*hh
    $ID,<imei>,...[,ALARM,0x<code>],...,GPSE<X|H|T|D>,A|V[,D,ddmmyy][,T,hhmmss][,S,vis:used]
        [,La,lat°,N|S][,Lo,lon°,E|W][,H,course][,V,km/h][,DD,distance]          (WMCS)
    QZE,<imei>,event,ddmmyyyy,hhmmss,lat°,lon°,km/h,course,A|V,ignition

Status sentences: ``$GPIOP,inputs,outputs,adc1..adc4,power,battery`` and
``$GPTXT,NET,<id>,operator,rssi,mcc mnc*hh``.

GpsGate clients (Traccar `gpsgate`, an alias here: the same NMEA lines plus a login) send
``$FRLIN,<user>,<id>,<password>*hh`` (answered ``$FRSES,<session>*hh``), ``$FRVER,...``
(answered with the server version) and ``$FRCMD,<id>,<command>,,lat,N|S,lon,E|W,altitude,
knots,course,ddmmyy,hhmmss,1|0`` positions; their ``$GPRMC`` lines are t55's.

Detection (priority 85, after every specific ``$`` protocol): the first line must parse as
one of the sentences above (a TCP head without its newline yet is MORE while it can still
become one).  RMC lines with a non-standard tail (ExtremTrac's ``...,0,,1111,1111``) are not
claimed; a bare hex id line only once its ``\n`` arrived and when nothing but ``$``
sentences follow it (digit-only heads are gps103/pui/iotm/Futureway first frames too).

Sentences without a date take it from ``ctx.received_at`` (the time of day rolled back a day
when it lies more than 12 h ahead of the receive time); without any time (RMA) the receive
time is the fix time.  Checksums are not enforced: several real units send wrong ones and
Traccar accepts them.  Speeds in knots are converted to km/h.  The server never answers
(Traccar's optional ``OK1`` acknowledgement is a per-device setting, not part of the wire
protocol).  A position sentence sent before the unit identified itself is still decoded:
the edge attributes it to the connection once the id is known.
"""

from __future__ import annotations

import re
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
from .kit.checksums import crc32, nmea
from .kit.framing import LineFramer
from .kit.readers import KNOTS, checked_coordinates, ddmm, ddmmyy_hhmmss, finite_float, nearest_day, utc

TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "GQ", "BD", "II", "IN"})
NMEA_TYPES = ("RMC", "GGA", "GLL")
#: sentence words that name a t55 sentence (after the `$`)
WORDS = frozenset({"GPRMA", "TRCCR", "GPIOP", "PUBX", "GPTXT", "ID", "PGID", "DEVID", "PCPTI"})
WORDS |= {"PSIWMDID", "CONNECT", "GPFID", "FRLIN", "FRVER", "FRCMD"}
IDENTITY_WORDS = ("PGID", "DEVID", "PCPTI", "PSIWMDID", "CONNECT", "GPFID", "FRLIN")
GPSGATE_VERSION = "$FRVER,1,0,GpsGate Server 1.0"

_PREFIX = re.compile(rb"[0-9A-Za-z]{1,24}(?:,|/[0-9A-Za-z]{1,24}/)?(?=\$)")
_HEX_ID = re.compile(r"[0-9A-F]{6,24}")
_TIME = re.compile(r"(\d\d)(\d\d)(\d\d)(\.\d+)?")
_IMEI_LINE = re.compile(r"\$?IMEI[ =:]([0-9A-Za-z]{4,24})")
_IMEI_START = re.compile(r"\$?I(M(E(I([ =:][0-9A-Za-z]{0,24})?)?)?)?")
MODES = frozenset("ADEFMNPRSV")
MAX_LINE = 1024


# --- small readers ---------------------------------------------------------------------
def _float(text: str, default: float | None = None) -> float:
    return finite_float(text.strip(), default)


def _int(text: str, default: int | None = None) -> int:
    text = text.strip()
    if not text and default is not None:
        return default
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise DecodeError(f"bad integer {text!r}")
    return int(text)


def _nmea_coordinate(value: str, hemisphere: str, positive: str, negative: str) -> float:
    if hemisphere not in (positive, negative) or not re.fullmatch(r"\d{3,5}\.\d+", value):
        raise DecodeError(f"bad coordinate {value!r} {hemisphere!r}")
    return ddmm(value, hemisphere)


def _position(record: Record, lat: float, lon: float) -> None:
    record.latitude, record.longitude = checked_coordinates(lat, lon)


def _time_of_day(text: str) -> tuple[int, int, int, int]:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise DecodeError(f"bad time {text!r}")
    fraction = match.group(4)
    micro = round(float(fraction) * 1e6) if fraction else 0
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), min(micro, 999_999)


def _on_receive_day(text: str, received: datetime | None) -> datetime | None:
    """A time of day on the receive date (the day before when it lies > 12 h ahead)."""
    hour, minute, second, micro = _time_of_day(text)
    if received is None:
        return None
    moment = utc(received.year, received.month, received.day, hour, minute, second, micro)
    if moment is None:
        raise DecodeError(f"bad time {text!r}")
    return nearest_day(moment, received)


def _split_checksum(body: str) -> tuple[str, str | None, str]:
    """(fields before `*`, checksum text, text after the checksum)."""
    star = body.find("*")
    if star < 0:
        return body, None, ""
    rest = body[star + 1 :]
    match = re.match(r"\s*([0-9A-Fa-f]{1,2})", rest)
    if match is None:
        return body[:star], None, rest
    return body[:star].rstrip(), match.group(1), rest[match.end() :]


# --- sentences -------------------------------------------------------------------------
def _rmc(body: str, ctx: Context) -> tuple[Record, str | None]:
    fields_text, _, extension = _split_checksum(body)
    f = fields_text.split(",")
    if len(f) < 9:
        raise DecodeError("RMC with fewer than 9 fields")
    tail = f[9:]
    # standard tail: magnetic variation, its direction, mode, navigational status
    if len(tail) > 4 or (tail and tail[0].strip() and not re.fullmatch(r"\d+(\.\d*)?", tail[0].strip())):
        raise DecodeError("RMC with an unknown tail")
    if len(tail) > 1 and tail[1].strip() not in ("", "E", "W"):
        raise DecodeError("RMC with an unknown tail")
    if any(item.strip() and item.strip() not in MODES for item in tail[2:]):
        raise DecodeError("RMC with an unknown tail")
    hour, minute, second, micro = _time_of_day(f[0])
    if f[1] not in ("A", "V"):
        raise DecodeError(f"bad RMC status {f[1]!r}")
    date = f[8].strip()
    if not re.fullmatch(r"\d{6}", date):
        raise DecodeError(f"bad RMC date {date!r}")
    fix_time = ddmmyy_hhmmss(date, f"{hour:02d}{minute:02d}{second:02d}")
    if fix_time is None:
        raise DecodeError(f"not a real instant: {date} {f[0]}")
    record = Record(fix_time=fix_time.replace(microsecond=micro), valid=f[1] == "A")
    _position(record, _nmea_coordinate(f[2], f[3], "N", "S"), _nmea_coordinate(f[4], f[5], "E", "W"))
    record.speed = _float(f[6], 0.0) * KNOTS
    record.course = _float(f[7], 0.0)
    device_id = None
    ext = [item.strip() for item in extension.split(",")[1:]] if extension.startswith(",") else []
    if len(ext) >= 5:
        record.satellites = _int(ext[0])
        device_id = ext[1] or None
        record.ignition = ext[2] == "1"
        record.attributes["fuel"] = str(_int(ext[3], 0))
        record.battery = _int(ext[4])
        for i, value in enumerate(ext[5:], start=1):
            record.attributes[f"io{i}"] = value
    return record, device_id


def _gga(body: str, ctx: Context) -> Record:
    f = _split_checksum(body)[0].split(",")
    if len(f) < 9:
        raise DecodeError("GGA with fewer than 9 fields")
    record = Record(fix_time=_on_receive_day(f[0], ctx.received_at))
    _position(record, _nmea_coordinate(f[1], f[2], "N", "S"), _nmea_coordinate(f[3], f[4], "E", "W"))
    record.valid = _int(f[5]) > 0
    record.satellites = _int(f[6])
    record.attributes["hdop"] = str(_float(f[7]))
    record.altitude = _float(f[8])
    return record


def _gll(body: str, ctx: Context) -> Record:
    f = _split_checksum(body)[0].split(",")
    if len(f) < 6 or f[5] not in ("A", "V"):
        raise DecodeError("GLL needs lat,N,lon,E,time,status")
    record = Record(fix_time=_on_receive_day(f[4], ctx.received_at), valid=f[5] == "A")
    _position(record, _nmea_coordinate(f[0], f[1], "N", "S"), _nmea_coordinate(f[2], f[3], "E", "W"))
    return record


def _rma(body: str, ctx: Context) -> Record:
    f = _split_checksum(body)[0].split(",")
    if len(f) < 9 or f[0] not in ("A", "V"):
        raise DecodeError("RMA needs status,lat,N,lon,E,,,speed,course")
    record = Record(fix_time=ctx.received_at, valid=f[0] == "A")
    _position(record, _nmea_coordinate(f[1], f[2], "N", "S"), _nmea_coordinate(f[3], f[4], "E", "W"))
    record.speed = _float(f[7], 0.0) * KNOTS
    record.course = _float(f[8], 0.0)
    return record


def _trccr(body: str, ctx: Context) -> Record:
    f = _split_checksum(body)[0].split(",")
    if len(f) < 8 or f[1] not in ("A", "V"):
        raise DecodeError("TRCCR needs time,status,lat,lon,speed,course,altitude,battery")
    match = re.fullmatch(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\.\d+)?", f[0])
    if match is None:
        raise DecodeError(f"bad TRCCR time {f[0]!r}")
    fix_time = utc(*(int(g) for g in match.groups()[:6]))
    if fix_time is None:
        raise DecodeError(f"not a real instant: {f[0]}")
    record = Record(fix_time=fix_time, valid=f[1] == "A")
    _position(record, _float(f[2]), _float(f[3]))
    record.speed = _float(f[4]) * KNOTS
    record.course = _float(f[5])
    record.altitude = _float(f[6])
    record.battery = _float(f[7])
    return record


def _gpiop(body: str, ctx: Context) -> Record:
    f = _split_checksum(body)[0].split(",")
    if len(f) < 8 or not all(re.fullmatch(r"[01]{8}", x) for x in f[:2]):
        raise DecodeError("GPIOP needs inputs,outputs,adc1..4,power,battery")
    record = Record(fix_time=ctx.received_at)
    record.attributes["input"] = str(int(f[0], 2))
    record.attributes["output"] = str(int(f[1], 2))
    for i in range(4):
        record.attributes[f"adc{i + 1}"] = str(_float(f[2 + i]))
    record.power = _float(f[6])
    record.battery = _float(f[7])
    return record


def _qze(body: str, ctx: Context) -> tuple[Record, str]:
    f = body.split(",")
    if len(f) < 10 or not re.fullmatch(r"\d{15}", f[0]) or f[8] not in ("A", "V"):
        raise DecodeError("QZE needs imei,event,date,time,lat,lon,speed,course,status,ignition")
    if not re.fullmatch(r"\d{8}", f[2]) or not re.fullmatch(r"\d{6}", f[3]):
        raise DecodeError("bad QZE date/time")
    date, time = f[2], f[3]
    fix_time = utc(int(date[4:]), int(date[2:4]), int(date[:2]), int(time[:2]), int(time[2:4]), int(time[4:]))
    if fix_time is None or fix_time.year < 1980:
        raise DecodeError("bad QZE date/time")
    record = Record(fix_time=fix_time, valid=f[8] == "A")
    record.attributes["event"] = str(_int(f[1]))
    _position(record, _float(f[4]), _float(f[5]))
    record.speed = float(_int(f[6]))
    record.course = float(_int(f[7]))
    record.ignition = _int(f[9]) > 0
    return record, f[0]


def _pubx(body: str, ctx: Context) -> tuple[Record, str | None]:
    f = _split_checksum(body)[0].split(",")
    if len(f) < 19:
        raise DecodeError("PUBX,00 needs 19 fields")
    record = Record(fix_time=_on_receive_day(f[1], ctx.received_at))
    record.attributes["index"] = str(_int(f[0]))
    _position(record, _nmea_coordinate(f[2], f[3], "N", "S"), _nmea_coordinate(f[4], f[5], "E", "W"))
    record.altitude = _float(f[6])
    record.valid = f[7] != "NF"
    record.attributes["accuracy"] = str(_float(f[8]))
    record.speed = _float(f[10])
    record.course = _float(f[11])
    record.attributes["hdop"] = str(_float(f[14]))
    record.attributes["vdop"] = str(_float(f[15]))
    record.satellites = _int(f[17])
    return record, f[18] or None


def _gptxt(body: str, ctx: Context) -> tuple[Record | None, str | None]:
    f = _split_checksum(body)[0].split(",")
    if len(f) < 5 or f[0] != "NET":
        return None, None
    record = Record(fix_time=ctx.received_at)
    record.attributes["operator"] = f[2]
    record.attributes["rssi"] = str(_int(f[3]))
    mcc, _, mnc = f[4].partition(" ")
    record.attributes["mcc"] = str(_int(mcc))
    record.attributes["mnc"] = str(_int(mnc))
    return record, f[1] or None


def _wmcs(body: str, ctx: Context) -> tuple[Record, str]:
    f = body.split(",")
    if not f or not (f[0].isascii() and f[0].isdigit()):
        raise DecodeError("$ID needs a numeric id")
    device_id = f[0]
    gps = next((i for i, item in enumerate(f) if re.fullmatch(r"GPSE[XHTD]", item)), None)
    if gps is None or gps + 1 >= len(f) or f[gps + 1] not in ("A", "V"):
        raise DecodeError("$ID without a GPSE block")
    record = Record(fix_time=ctx.received_at, valid=f[gps + 1] == "A")
    if "ALARM" in f[:gps]:
        code = f[f.index("ALARM") + 1]
        if re.fullmatch(r"0x[0-9A-Fa-f]+", code):
            record.attributes["alarmCode"] = code
    items = f[gps + 2 :]
    pairs: dict[str, list[str]] = {}
    i = 0
    while i < len(items):
        key = items[i]
        width = 2 if key in ("La", "Lo") else 1
        pairs[key] = items[i + 1 : i + 1 + width]
        i += 1 + width
    date, time = pairs.get("D"), pairs.get("T")
    if date and time:
        fix_time = ddmmyy_hhmmss(date[0], time[0])
        if fix_time is None:
            raise DecodeError("bad $ID date/time")
        record.fix_time = fix_time
    if pairs.get("S"):
        visible, _, used = pairs["S"][0].partition(":")
        record.attributes["satVisible"] = str(_int(visible))
        record.satellites = _int(used)
    la, lo = pairs.get("La"), pairs.get("Lo")
    if la and lo and len(la) == 2 and len(lo) == 2:
        lat = _float(la[0])
        lon = _float(lo[0])
        lat = -abs(lat) if la[1] == "S" else lat
        lon = -abs(lon) if lo[1] == "W" else lon
        _position(record, lat, lon)
    if pairs.get("H"):
        record.course = _float(pairs["H"][0])
    if pairs.get("V"):
        record.speed = _float(pairs["V"][0])
    if pairs.get("DD"):
        record.attributes["totalDistance"] = str(_float(pairs["DD"][0]))
    return record, device_id


def _frcmd(body: str) -> tuple[Record, str]:
    """A GpsGate `$FRCMD` position: id, command, -, lat, N|S, lon, E|W, altitude, knots, course,
    ddmmyy, hhmmss, valid 1|0."""
    f = [item.strip() for item in _split_checksum(body)[0].split(",")]
    if len(f) < 13 or not f[0]:
        raise DecodeError("FRCMD with fewer than 13 fields")
    fix_time = ddmmyy_hhmmss(f[10], f[11])
    if fix_time is None:
        raise DecodeError(f"not a real instant: {f[10]} {f[11]}")
    record = Record(fix_time=fix_time, valid=f[12] == "1")
    _position(record, _nmea_coordinate(f[3], f[4], "N", "S"), _nmea_coordinate(f[5], f[6], "E", "W"))
    record.altitude = _float(f[7], 0.0)
    record.speed = _float(f[8], 0.0) * KNOTS
    record.course = _float(f[9], 0.0)
    record.attributes["command"] = f[1]
    return record, f[0]


def _identity(word: str, body: str) -> str | None:
    """The id an identification sentence names."""
    if word == "FRLIN":  # user, id, password
        fields = _split_checksum(body)[0].split(",")
        return fields[1].strip() or None if len(fields) > 2 else None
    text = body.split(",", 1)[0] if word in ("PCPTI", "CONNECT") else _split_checksum(body)[0]
    text = text.strip()
    return text or None


# --- line anatomy ----------------------------------------------------------------------
class Line:
    __slots__ = ("body", "prefix_id", "word")

    def __init__(self, word: str, body: str, prefix_id: str | None) -> None:
        self.word = word
        self.body = body
        self.prefix_id = prefix_id


def _word_of(sentence: str) -> tuple[str, str] | None:
    """(word, body) of a `$WORD,body` / `QZE,body` sentence, None when not a t55 sentence."""
    if sentence.startswith("QZE,"):
        return "QZE", sentence[4:]
    if not sentence.startswith("$"):
        return None
    comma = sentence.find(",")
    word = sentence[1:comma] if comma > 0 else sentence[1:]
    body = sentence[comma + 1 :] if comma > 0 else ""
    if len(word) == 5 and word[:2] in TALKERS and word[2:] in NMEA_TYPES:
        return word[2:], body
    if word in WORDS:
        if word in ("GPRMA", "GPIOP", "GPTXT"):
            return word[2:], body
        return word, body
    if word.startswith("IMEI"):
        return "IMEI", sentence
    return None


def parse_line(frame: bytes) -> Line:
    text = frame.decode("latin-1").strip()
    if not text:
        raise DecodeError("empty line")
    prefix_id = None
    if not text.startswith("$") and "$" in text:
        match = _PREFIX.match(frame.strip())
        if match is None:
            raise DecodeError("bytes before `$` are no device id")
        raw = text[: match.end()]
        if raw.endswith(","):
            prefix_id = raw[:-1]
        elif raw.endswith("/"):
            prefix_id = raw[raw.index("/") + 1 : -1]
        else:
            prefix_id = raw
        text = text[match.end() :]
    word_body = _word_of(text)
    if word_body is not None:
        return Line(word_body[0], word_body[1], prefix_id)
    if prefix_id is None:
        match = _IMEI_LINE.fullmatch(text)
        if match:
            return Line("IMEI", match.group(1), None)
        if _HEX_ID.fullmatch(text):
            return Line("HEXID", text, None)
    raise DecodeError("not a t55 sentence")


def _kind(word: str) -> str:
    if word in IDENTITY_WORDS or word in ("IMEI", "HEXID"):
        return "login"
    if word in ("IOP", "TXT", "FRVER"):
        return "status"
    return "position"


def decode_line(line: Line, ctx: Context) -> Decoded:
    word, body = line.word, line.body
    device_id = line.prefix_id
    record: Record | None = None
    if word in IDENTITY_WORDS:
        return Decoded("login", _identity(word, body), [])
    if word in ("IMEI", "HEXID"):
        match = _IMEI_LINE.fullmatch(body) if word == "IMEI" and body.startswith(("$", "I")) else None
        return Decoded("login", match.group(1) if match else body, [])
    if word == "RMC":
        record, inner = _rmc(body, ctx)
        device_id = inner or device_id
    elif word == "GGA":
        record = _gga(body, ctx)
    elif word == "GLL":
        record = _gll(body, ctx)
    elif word == "RMA":
        record = _rma(body, ctx)
    elif word == "TRCCR":
        record = _trccr(body, ctx)
    elif word == "IOP":
        record = _gpiop(body, ctx)
    elif word == "QZE":
        record, device_id = _qze(body, ctx)
    elif word == "PUBX":
        record, inner = _pubx(body, ctx)
        device_id = inner or device_id
    elif word == "TXT":
        record, inner = _gptxt(body, ctx)
        device_id = inner or device_id
    elif word == "ID":
        record, device_id = _wmcs(body, ctx)
    elif word == "FRCMD":
        record, device_id = _frcmd(body)
    kind = _kind(word)
    return Decoded(kind, device_id, [record] if record is not None else [])


# --- detection -------------------------------------------------------------------------
_SIGNATURE_PREFIXES = tuple(
    [f"${t}{n}," for t in sorted(TALKERS) for n in NMEA_TYPES] + [f"${w}," for w in sorted(WORDS)] + ["QZE,"]
)


def _could_start(text: str) -> bool:
    """`text` (no newline yet) may still grow into a t55 sentence."""
    if _IMEI_START.fullmatch(text):
        return True
    return any(p.startswith(text) or text.startswith(p) for p in _SIGNATURE_PREFIXES)


def _detect(head: bytes, transport: str) -> Detection:
    if not head:
        return Detection.MORE
    newline = head.find(b"\n")
    complete = newline >= 0 or transport == "udp"
    first = head[: newline if newline >= 0 else len(head)]
    if len(first) > MAX_LINE:
        return Detection.NO
    text = first.decode("latin-1").rstrip("\r")
    dollar = text.find("$")
    sentence = text
    if dollar > 0:
        if _PREFIX.match(first) is None:
            return Detection.NO
        sentence = text[dollar:]
    elif dollar < 0 and not text.startswith(("IMEI", "QZE")):
        # a bare hex id line, or the id prefix of a sentence still to come
        if not re.fullmatch(r"[0-9A-Za-z]{0,24}(,|/[0-9A-Za-z]{0,24}/?)?", text):
            return Detection.NO
        if newline >= 0 and _HEX_ID.fullmatch(text):
            # a bare id line: only when nothing but NMEA follows it (Futureway opens with a hex
            # header line followed by `IMEI:` lines)
            after = head[newline + 1 :].lstrip(b"\r\n")
            return Detection.YES if not after or after.startswith(b"$") else Detection.NO
        return Detection.NO if transport == "udp" else Detection.MORE
    try:
        line = parse_line(first)
        decode_line(line, Context(received_at=None))
    except DecodeError:
        if complete:
            return Detection.NO
        return Detection.MORE if _could_start(sentence) else Detection.NO
    if line.word == "HEXID":
        return Detection.NO
    return Detection.YES


def _nmea_reply(message: str) -> bytes:
    return f"{message}*{nmea(message):02X}\r\n".encode("ascii")


class T55Codec(Codec):
    name = "t55"
    aliases = ("gpsgate",)
    first_bytes = b"$0123456789ABCDEFIQ"
    priority = 85
    replies = True  # GpsGate clients wait for $FRSES; plain NMEA units never get an answer
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_LINE

    def detect(self, head: bytes, transport: str) -> Detection:
        return _detect(head, transport)

    def new_framer(self) -> Framer:
        return LineFramer(self.max_frame, b"\n")

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        frames = [line for line in datagram.splitlines() if line.strip()]
        if not frames or any(len(line) > self.max_frame for line in frames):
            raise FramingError("no sentence in datagram", discarded=datagram, reason="garbage")
        return frames

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        line = parse_line(frame)
        device_id = line.prefix_id
        if line.word in IDENTITY_WORDS or line.word in ("IMEI", "HEXID", "QZE", "ID", "TXT", "PUBX", "RMC", "FRCMD"):
            device_id = decode_line(line, Context(received_at=None)).device_id or device_id
        reply = None
        if line.word == "FRLIN":
            # the session token only has to be echoed by the client; the device id's CRC is stable
            reply = _nmea_reply(
                f"$FRSES,{crc32((device_id or '').encode()):08X}" if device_id else "$FRERR,AuthError,Parse error"
            )
        elif line.word == "FRVER":
            reply = _nmea_reply(GPSGATE_VERSION)
        return FrameInfo(_kind(line.word), device_id, reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"line of {len(frame)} bytes (max {self.max_frame})")
        return decode_line(parse_line(frame), ctx)


CODEC = T55Codec()
