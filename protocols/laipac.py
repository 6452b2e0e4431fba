"""Laipac (Canada) AVL110/AVL120, SF-Lite, S911 family (Traccar `laipac`).

NMEA-style lines ending in ``\\n`` (CR ignored), every one checksummed ``*hh`` (XOR of the
characters between ``$`` and ``*``)::

    $AVRMC,<id>,hhmmss,<status>,ddmm.mmmm,N|S,dddmm.mmmm,E|W,knots,course,ddmmyy,<event>,
           <battery>,<mileage km>,<gps>,<adc1>,<adc2>[,<lac 4 hex><cid 4 hex>,<mcc 3><mnc 3>][,...]*hh
    $EAVSYS,<id>,<iccid>,[<phone>],<owner>,[<firmware>]*hh      SIM/firmware information
    $ECHK,<id>,<n>*hh                                          heartbeat
    $AVSYS,<id>,...*hh                                         system information (not decoded)

Status ``A`` valid, ``V`` invalid, ``R`` valid but repeated (not acknowledged before), ``P``
valid (Traccar: prior fix); lower case = the unit waits for an acknowledgement.  Battery is
millivolts or volts with a dot (``4076`` / ``3.727``), mileage kilometres (odometer in metres),
adc1/adc2 millivolts (adc2 only on the AVL110/AVL120: option ``model``).  The cell is the
serving LAC/CID (hex) and MCC/MNC (``0,0`` when unknown), kept as ``network``.

Event letter/digit: ``3`` SOS, ``5`` power cut, ``6`` overspeed, ``4``/``7`` geofence exit,
``X`` geofence enter, ``8`` vibration, ``H`` power off, ``T`` tampering, ``Y`` tow, ``Z`` low
battery.  ``A``-``D`` and ``O``-``R`` are input states (in1/in2 bits; the SF-Lite reports in3
false for ``A``-``D``, true for ``O``-``R``) and are no event.

Replies (Traccar's): ``$ECHK`` is echoed (plus CR LF); an ``$AVRMC`` with a lower-case
status gets ``$EAVACK,<event>,<its checksum>*hh\\r\\n``; events ``3``, ``M``, ``S``/``T``,
``X``/``4``, ``Y``, ``Z`` get ``$AVCFG,<password>,<d|m|t|x|y|z>*hh\\r\\n`` (password: the
factory ``00000000``; Traccar takes a per-device one from its database).
"""

from __future__ import annotations

import json
import re

from .base import (
    ChecksumError,
    Codec,
    Context,
    Decoded,
    DecodeError,
    Detection,
    FrameInfo,
    Framer,
    Record,
)
from .kit import alarms as A
from .kit.checksums import nmea
from .kit.framing import LineFramer
from .kit.readers import KNOTS, checked_coordinates, ddmm, ddmmyy_hhmmss, decimal, integer

DEFAULT_PASSWORD = "00000000"
WORDS = ("AVRMC", "EAVSYS", "ECHK", "AVSYS")
SIGNATURES = tuple(f"${word},".encode() for word in WORDS)
MAX_LINE = 1024

EVENT_ALARMS = {
    "Z": A.LOW_BATTERY,
    "Y": A.TOW,
    "X": A.GEOFENCE_ENTER,
    "T": A.TAMPERING,
    "H": A.POWER_OFF,
    "8": A.VIBRATION,
    "7": A.GEOFENCE_EXIT,
    "4": A.GEOFENCE_EXIT,
    "6": A.OVERSPEED,
    "5": A.POWER_CUT,
    "3": A.SOS,
}
#: events the server confirms with an $AVCFG command
CONFIG_CODES = {"3": "d", "M": "m", "S": "t", "T": "t", "X": "x", "4": "x", "Y": "y", "Z": "z"}
ADC2_MODELS = ("AVL110", "AVL120")


class Line:
    __slots__ = ("checksum", "fields", "text", "word")

    def __init__(self, word: str, fields: list[str], checksum: str, text: str) -> None:
        self.word = word
        self.fields = fields
        self.checksum = checksum
        self.text = text  # the line without CR/LF


def parse(frame: bytes) -> Line:
    text = frame.decode("latin-1").strip("\r\n")
    if not text.startswith("$"):
        raise DecodeError("not a Laipac sentence ($...)")
    star = text.rfind("*")
    if star < 0:
        raise DecodeError("Laipac sentence without a checksum")
    checksum = text[star + 1 :].strip()
    if not re.fullmatch(r"[0-9A-Fa-f]{2}", checksum):
        raise ChecksumError(f"bad checksum field {checksum!r}")
    if int(checksum, 16) != nmea(text[:star]):
        raise ChecksumError(f"checksum {checksum} does not match the sentence")
    fields = text[1:star].split(",")
    if fields[0] not in WORDS or len(fields) < 2 or not fields[1]:
        raise DecodeError(f"not a Laipac sentence: {fields[0]!r}")
    return Line(fields[0], fields[1:], checksum, text)


def _sentence(body: str) -> bytes:
    return f"{body}*{nmea(body):02X}\r\n".encode("latin-1")


def replies(line: Line, password: str = DEFAULT_PASSWORD) -> bytes | None:
    if line.word == "ECHK":
        return line.text.encode("latin-1") + b"\r\n"
    if line.word != "AVRMC" or len(line.fields) < 11:
        return None
    status, event = line.fields[2], line.fields[10]
    out = b""
    if status[:1].islower():
        out += _sentence(f"$EAVACK,{event},{line.checksum}")
    code = CONFIG_CODES.get(event)
    if code is not None:
        out += _sentence(f"$AVCFG,{password},{code}")
    return out or None


def _avrmc(fields: list[str], model: str | None) -> Record:
    if len(fields) < 16:
        raise DecodeError(f"$AVRMC with {len(fields)} fields, needs 16")
    time, status = fields[1], fields[2]
    if not re.fullmatch(r"\d{6}", time) or status not in "AVRPavrp" or len(status) != 1:
        raise DecodeError("bad $AVRMC time/status")
    date = fields[9]
    if not re.fullmatch(r"\d{6}", date):
        raise DecodeError(f"bad $AVRMC date {date!r}")
    record = Record(fix_time=ddmmyy_hhmmss(date, time), valid=status.upper() in "ARP")
    if record.fix_time is None:
        raise DecodeError(f"not a real instant: {date} {time}")
    record.attributes["status"] = status
    for value, pattern in ((fields[3], r"\d{4}\.\d+"), (fields[5], r"\d{5}\.\d+")):
        if not re.fullmatch(pattern, value):
            raise DecodeError(f"bad coordinate {value!r}")
    if fields[4] not in ("N", "S") or fields[6] not in ("E", "W"):
        raise DecodeError("bad hemisphere")
    lat = ddmm(fields[3], fields[4])
    lon = ddmm(fields[5], fields[6])
    record.latitude, record.longitude = checked_coordinates(lat, lon)
    record.speed = decimal(fields[7]) * KNOTS
    record.course = decimal(fields[8])
    event = fields[10]
    if not re.fullmatch(r"[0-9A-Za-z]", event):
        raise DecodeError(f"bad event {event!r}")
    alarm = EVENT_ALARMS.get(event)
    if alarm:
        record.alarms.append(alarm)
    if "A" <= event <= "D" or "O" <= event <= "R":
        bits = ord(event) - (ord("A") if event <= "D" else ord("O"))
        record.attributes["in1"] = str(bool(bits & 1)).lower()
        record.attributes["in2"] = str(bool(bits & 2)).lower()
        if model == "SF-Lite":
            record.attributes["in3"] = "true" if event >= "O" else "false"
    else:
        record.attributes["event"] = event
    battery = fields[11]
    if not re.fullmatch(r"[\d.]+", battery) or not battery.replace(".", ""):
        raise DecodeError(f"bad battery {battery!r}")
    record.battery = int(battery.replace(".", "")) / 1000
    record.odometer = decimal(fields[12]) * 1000
    record.attributes["gps"] = str(integer(fields[13]))
    record.attributes["adc1"] = str(decimal(fields[14]) / 1000)
    adc2 = decimal(fields[15])
    if model in ADC2_MODELS:
        record.attributes["adc2"] = str(adc2 / 1000)
    cell = fields[16:18]
    if len(cell) == 2:
        first, second = cell
        if re.fullmatch(r"[0-9A-Fa-f]{8}", first) and re.fullmatch(r"\d{6}", second):
            # "310260" = MCC 310 / MNC 260; European units pad a 2-digit MNC in front:
            # "020408" = MCC 204 / MNC 08 (Traccar splits 3+3 and reads MCC 20)
            mcc, mnc = (second[1:4], second[4:]) if second[0] == "0" else (second[:3], second[3:])
            tower = {
                "mcc": int(mcc),
                "mnc": int(mnc),
                "lac": int(first[:4], 16),
                "cid": int(first[4:], 16),
            }
            record.attributes["network"] = json.dumps({"cellTowers": [tower]}, separators=(",", ":"))
    return record


def _eavsys(fields: list[str], ctx: Context) -> Record:
    if len(fields) < 5 or not fields[1].isdigit():
        raise DecodeError("$EAVSYS needs id,iccid,phone,owner,firmware")
    record = Record(fix_time=ctx.received_at)
    record.attributes["iccid"] = fields[1]
    if fields[2]:
        record.attributes["phone"] = fields[2]
    if fields[4]:
        record.attributes["versionFw"] = fields[4]
    return record


def _kind(line: Line) -> str:
    if line.word == "ECHK":
        return "heartbeat"
    if line.word == "AVSYS":
        return "other"
    if line.word == "EAVSYS":
        return "status"
    event = line.fields[10] if len(line.fields) > 10 else ""
    return "alarm" if event in EVENT_ALARMS else "position"


class LaipacCodec(Codec):
    name = "laipac"
    first_bytes = b"$"
    priority = 30
    replies = True
    transports = frozenset({"tcp"})
    max_frame = MAX_LINE

    def detect(self, head: bytes, transport: str) -> Detection:
        for signature in SIGNATURES:
            if head.startswith(signature):
                return Detection.YES
            if signature.startswith(head):
                return Detection.MORE
        return Detection.NO

    def new_framer(self) -> Framer:
        return LineFramer(self.max_frame, b"\n")

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        line = parse(frame)
        return FrameInfo(_kind(line), line.fields[0], replies(line))

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"line of {len(frame)} bytes (max {self.max_frame})")
        line = parse(frame)
        kind = _kind(line)
        records: list[Record] = []
        if line.word == "AVRMC":
            records.append(_avrmc(line.fields, ctx.options.get("model")))
        elif line.word == "EAVSYS":
            records.append(_eavsys(line.fields, ctx))
        return Decoded(kind, line.fields[0], records)


CODEC = LaipacCodec()
