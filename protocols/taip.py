"""Trimble TAIP and its descendants (Trimble, Lantrix, ControlSat CST-10, Akroz ``RUV``;
Traccar `taip`).

ASCII sentences ``>`` ... ``<`` (TCP: split on ``<``, CR/LF around ignored; UDP: one sentence
per datagram, the ``<`` optional)::

    > R<type><fixed-width data> ;attr=value ;#index ;ID=<id> ;*hh <

Data layouts (digits are fixed width; ``±`` is a sign)::

    RPV/REV  [event 2, GPS week 4, day 1] seconds-of-day 5   position
    RGP RCQ RCV RBR RPI RUS00 RUVnn [,][event digits][,][protocol word,] ddmmyy hhmmss   [position]

    position = ±dd ddddd ±ddd ddddd | ±dd mm.mmmm ±ddd mm.mmmm    (degrees / deg+minutes)
               speed 3 (mph; km/h for Akroz RUV)  course 3  [tail]
    tail     = fix mode 1, data age 2 hex, inputs 2 hex, then either
                 event 2, hdop 2                                          (RGP, RCQ ...)
                 ,flow,odometer,power 4 battery 4 (centivolts),rpm[,temp1,temp2],alarm 2 hex (RUS00)
             | inputs 2 hex, outputs 2 hex, battery 3, odometer 8 hex, gps power 1,
               [fix mode 1, pdop 2, sats 2, age 4 hex, modem 1, gsm 1, rssi 2, [±temp1 4, 2 hex, ±temp2 4, 2 hex]]

Dates are ``ddmmyy`` except on Akroz units, which write ``yymmdd`` (``190826125922`` =
2019-08-26; Traccar reads it day-first).  REV times count from the GPS epoch (1980-01-06,
no leap seconds, as Traccar); a bare seconds-of-day takes the date of ``ctx.received_at``
(the nearest day).  Akroz ``RUVnn`` sentences carry comma-separated engine data after
the position (``RUV00`` identity/versions, ``RUV01`` engine, ``RUV02`` trip, others CAN
data).  ``RAL``, ``RLN``, ``RCP``, ``RTT`` are not decoded (Traccar ignores them too).

Attributes: ``ID=`` names the device; ``IO=`` (ignition/charge bits, output, input),
``IX=`` (io1), ``AD=`` (adc1), ``SV=`` (satellites), ``BL=`` (battery mV), ``VO=`` (odometer m);
any other ``KEY=value`` is kept under its lower-case key.

Events/alarms: ``01`` SOS, ``02`` power cut; for ``RUS00,``-style sentences 22 hard
acceleration, 23 hard braking, 24 accident, 26/28 cornering; Akroz events 104/106 overspeed,
109 high RPM, 111 idle, 119 temperature, 120-122 acceleration/braking/cornering, 127 power cut,
128 power restored, 129 low battery.

Checksum ``*hh``: XOR of the text from ``>`` through the ``*`` (Lantrix units leave the ``*``
out; both are accepted).  A wrong checksum is never acknowledged.

Replies (Traccar's, once ``ID=`` is known and the sentence decodes): index ``#IP...`` ->
``>SAK;ID=<id>;#IP...<``; any other index -> ``>ACK;ID=<id>;#idx;*hh<`` (``>ACK;#idx;ID=<id>;*hh<``
when the device put the index first), hh the XOR over the reply through its ``*``; no index
-> the bare id text.  Undecodable sentences (``RAL``...) get nothing.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

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
from .kit import alarms as A
from .kit.checksums import xor8
from .kit.framing import LineFramer
from .kit.readers import MPH, ddmmyy_hhmmss, nearest_day, yymmdd_hhmmss

GPS_EPOCH = datetime(1980, 1, 6, tzinfo=UTC)
MAX_FRAME = 1024

_HEAD_A = re.compile(r"R[EP]V(?:(\d\d)(\d{4})(\d))?(\d{5})")
_HEAD_B = re.compile(r"(RGP|RCQ|RCV|RBR|RUS00|RPI|RUV\d\d),?(\d*),?(?:[A-Z][A-Z0-9]*,)?(\d{6})(\d{6})(?=[-+,]|$)")
_DEGREES = re.compile(r"([-+]\d\d)(\d{5})([-+]\d{3})(\d{5})")
_MINUTES = re.compile(r"([-+])(\d\d)(\d\d\.\d{4})([-+])(\d{3})(\d\d\.\d{4})")
_MOTION = re.compile(r"(\d{3})(\d{3})")
_HEX = "[0-9A-Fa-f]"
_TAIL_FIX = re.compile(rf"(\d){_HEX}{{2}}({_HEX}{{2}})")
_TAIL_EXTENDED = re.compile(
    rf",\d+,(\d+),(\d{{4}})(\d{{4}}),(\d+)(?:,([-+]?\d+\.?\d*),([-+]?\d+\.?\d*))?,({_HEX}{{2}})"
)
_TAIL_EVENT = re.compile(r"(\d\d)(\d\d)")
_TAIL_IO = re.compile(
    rf"({_HEX}{{2}}){_HEX}{{2}}(\d{{3}})({_HEX}{{8}})[01]"
    rf"(?:([023])(\d\d)\d\d{_HEX}{{4}}[01][0-5](\d\d)(?:([-+]\d{{4}}){_HEX}{{2}}([-+]\d{{4}}){_HEX}{{2}})?)?"
)

STANDARD_ALARMS = {1: A.SOS, 2: A.POWER_CUT}
COMMA_ALARMS = {22: A.ACCELERATION, 23: A.BRAKING, 24: A.ACCIDENT, 26: A.CORNERING, 28: A.CORNERING}
AKROZ_ALARMS = {
    104: A.OVERSPEED,
    106: A.OVERSPEED,
    109: A.HIGH_RPM,
    111: A.IDLE,
    119: A.TEMPERATURE,
    120: A.ACCELERATION,
    121: A.BRAKING,
    122: A.CORNERING,
    127: A.POWER_CUT,
    128: A.POWER_RESTORED,
    129: A.LOW_BATTERY,
}
UNDECODED = ("RAL", "RLN", "RCP", "RTT")


class Sentence:
    """One sentence split into its data part and its `;` attributes."""

    __slots__ = ("attributes", "checksum", "data", "device_id", "index", "index_first")

    def __init__(self, text: str) -> None:
        data, _, rest = text.partition(";")
        self.data = data
        self.attributes: list[tuple[str, str]] = []
        self.index: str | None = None
        self.device_id: str | None = None
        self.index_first = False
        self.checksum: str | None = None
        for item in rest.split(";") if rest else []:
            if item.startswith("*"):
                self.checksum = item[1:]
                break
            key, eq, value = item.partition("=")
            if eq:
                self.attributes.append((key.lower(), value))
                if key.lower() == "id" and self.device_id is None:
                    self.device_id = value
                    self.index_first = self.index is not None
            elif item.startswith("#"):
                self.index = item


def _text(frame: bytes) -> str:
    text = frame.decode("latin-1")
    start = text.find(">")
    if start < 0:
        raise DecodeError("no `>` in a TAIP sentence")
    end = text.find("<", start)
    return text[start + 1 : end if end >= 0 else len(text)].rstrip("\r\n")


def parse(frame: bytes) -> Sentence:
    """The sentence of a frame, its checksum verified when present."""
    text = _text(frame)
    if not re.match(r"R[A-Z]{2}", text):
        raise DecodeError("not a TAIP report (>R..)")
    sentence = Sentence(text)
    if sentence.checksum is not None:
        star = text.find(";*") + 1
        want = sentence.checksum.strip()
        if not re.fullmatch(r"[0-9A-Fa-f]{2}", want):
            raise ChecksumError(f"bad checksum field {want!r}")
        signed = (">" + text[: star + 1]).encode("latin-1")
        if int(want, 16) not in (xor8(signed), xor8(signed[:-1])):
            raise ChecksumError(f"checksum {want} does not match the sentence")
    return sentence


def _reply(sentence: Sentence) -> bytes | None:
    device_id = sentence.device_id
    if device_id is None:
        return None
    index = sentence.index
    if index is None:
        return device_id.encode("latin-1")
    if index.startswith("#IP"):
        return f">SAK;ID={device_id};{index}<".encode("latin-1")
    text = f">ACK;{index};ID={device_id};" if sentence.index_first else f">ACK;ID={device_id};{index};"
    return f"{text}*{xor8((text + '*').encode('latin-1')):02X}<".encode("latin-1")


def _on_receive_day(seconds: int, received: datetime | None) -> datetime | None:
    if received is None:
        return None
    midnight = received.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return nearest_day(midnight + timedelta(seconds=seconds), received)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DecodeError(f"bad number {text!r}")
    return value


def _akroz(record: Record, data: str, kind: int) -> None:
    """The comma-separated engine/trip data of Akroz RUVnn sentences (ValueError/IndexError on bad data)."""
    values = data.split(",")
    attributes = record.attributes
    i = 3
    if kind == 0:
        voltage = values[i]
        record.battery = int(voltage[:4]) * 0.01
        record.power = int(voltage[4:]) * 0.01
        attributes["serial"] = values[i + 1]
        attributes["versionFw"] = values[i + 2]
        attributes["versionHw"] = values[i + 3]
        i += 4 + 5
        if i < len(values) and values[i]:
            attributes["iccid"] = values[i]
    elif kind == 1:
        voltage = values[i]
        record.battery = int(voltage[:4]) * 0.01
        record.power = int(voltage[4:]) * 0.01
        i += 4
        attributes["hours"] = str(int(values[i]) * 60000)
        record.odometer = float(int(values[i + 1]))
        attributes["rpm"] = str(int(values[i + 2]))
        attributes["coolantTemp"] = str(int(values[i + 3]))
        attributes["oilPressure"] = str(int(values[i + 4]))
        attributes["fuelLevel"] = str(int(values[i + 5]))
        attributes["driverUniqueId"] = values[i + 9]
    elif kind == 2:
        i += 8
        attributes["tripTime"] = str(int(values[i]))
        attributes["tripDistance"] = str(int(values[i + 1]))
        attributes["fuelUsed"] = str(int(values[i + 2]) / 10.0)
    else:
        attributes["throttle"] = str(int(values[i]))
        attributes["hours"] = str(int(values[i + 1]) * 60000)
        record.odometer = float(int(values[i + 2]))
        attributes["rpm"] = str(int(values[i + 3]))
        attributes["coolantTemp"] = str(int(values[i + 4]))
        attributes["oilPressure"] = str(int(values[i + 5]))
        attributes["fuelLevel"] = str(int(values[i + 6]))
        attributes["fuelUsed"] = str(int(values[i + 7]) / 10.0)
        attributes["obdSpeed"] = str(int(values[i + 9]))
        attributes["engineTorque"] = str(int(values[i + 10]))
        attributes["engineBrake"] = str(int(values[i + 12]))
        attributes["cruiseControl"] = str(bool(int(values[i + 16]) & 1)).lower()
        attributes["clutchState"] = str(bool(int(values[i + 17]) >> 6 & 1)).lower()
        attributes["parkingBrake"] = str(bool(int(values[i + 18]) >> 2 & 1)).lower()
        attributes["serviceBrake"] = str(bool(int(values[i + 19]) >> 3 & 1)).lower()


def _apply_attributes(record: Record, sentence: Sentence) -> None:
    for key, value in sentence.attributes:
        if key == "id":
            continue
        try:
            if key == "io":
                bits = ord(value[0]) - 48
                record.ignition = bool(bits & 1)
                record.attributes["charge"] = str(bool(bits & 2)).lower()
                record.attributes["output"] = str(ord(value[1]) - 48)
                record.attributes["input"] = str(ord(value[2]) - 48)
            elif key == "ix":
                record.attributes["io1"] = value
            elif key == "ad":
                record.attributes["adc1"] = str(int(value))
            elif key == "sv":
                record.satellites = int(value)
            elif key == "bl":
                record.battery = int(value) / 1000
            elif key == "vo":
                record.odometer = float(int(value))
            else:
                record.attributes[key] = value
        except (ValueError, IndexError) as exc:
            raise DecodeError(f"bad attribute {key}={value!r}") from exc


def decode_sentence(sentence: Sentence, ctx: Context) -> Record | None:
    """The record of a decodable report, None for the sentences Traccar does not decode."""
    data = sentence.data
    akroz = data.startswith("RUV")
    record = Record(valid=True)
    event: int | None = None
    pos = 0
    head = _HEAD_A.match(data)
    if head:
        if head.group(1) is not None:
            event = int(head.group(1))
            days = int(head.group(2)) * 7 + int(head.group(3))
            record.fix_time = GPS_EPOCH + timedelta(days=days, seconds=int(head.group(4)))
        else:
            record.fix_time = _on_receive_day(int(head.group(4)), ctx.received_at)
    else:
        head = _HEAD_B.match(data)
        if head is None:
            return None
        if head.group(2):
            event = int(head.group(2))
        if akroz:  # Akroz writes yymmdd (190826 = 2019-08-26)
            record.fix_time = yymmdd_hhmmss(head.group(3), head.group(4)) or ctx.received_at
        else:
            record.fix_time = ddmmyy_hhmmss(head.group(3), head.group(4)) or ctx.received_at
    pos = head.end()

    located = False
    coords = _DEGREES.match(data, pos)
    if coords:
        record.latitude = float(f"{coords.group(1)}.{coords.group(2)}")
        record.longitude = float(f"{coords.group(3)}.{coords.group(4)}")
    else:
        coords = _MINUTES.match(data, pos)
        if coords:
            lat = int(coords.group(2)) + float(coords.group(3)) / 60
            lon = int(coords.group(5)) + float(coords.group(6)) / 60
            record.latitude = -lat if coords.group(1) == "-" else lat
            record.longitude = -lon if coords.group(4) == "-" else lon
    motion = _MOTION.match(data, coords.end()) if coords else None
    if coords and motion:
        located = True
        if not (-90 <= record.latitude <= 90 and -180 <= record.longitude <= 180):  # type: ignore[operator]
            raise DecodeError("coordinates out of range")
        record.speed = int(motion.group(1)) * (1.0 if akroz else MPH)
        record.course = float(int(motion.group(2)))
        event = _tail(record, data, motion.end(), akroz, event)
    else:
        record.latitude = record.longitude = None

    if akroz:
        try:
            _akroz(record, data, int(data[3:5]))
        except (ValueError, IndexError) as exc:
            raise DecodeError(f"bad Akroz RUV data: {exc}") from exc

    if event is not None:
        record.attributes["event"] = str(event)
        if akroz:
            alarm = AKROZ_ALARMS.get(event)
        elif len(data) > 5 and data[5] == ",":
            alarm = COMMA_ALARMS.get(event)
        else:
            alarm = STANDARD_ALARMS.get(event)
        if alarm:
            record.alarms.append(alarm)
    _apply_attributes(record, sentence)
    if not located and record.fix_time is None:
        record.fix_time = ctx.received_at
    return record


def _tail(record: Record, data: str, pos: int, akroz: bool, event: int | None) -> int | None:
    fix = _TAIL_FIX.match(data, pos)
    rest = None
    if fix:
        rest = _TAIL_EXTENDED.match(data, fix.end()) or _TAIL_EVENT.match(data, fix.end())
    if fix and rest:
        mode = int(fix.group(1))
        record.valid = 2 <= mode < 8 if akroz else mode > 0
        inputs = int(fix.group(2), 16)
        record.ignition = bool(inputs & 0x80)
        if akroz:
            record.attributes["charge"] = str(bool(inputs & 0x40)).lower()
        record.attributes["input"] = str(inputs)
        if rest.re is _TAIL_EXTENDED:
            record.odometer = float(int(rest.group(1)))
            record.power = int(rest.group(2)) / 100
            record.battery = int(rest.group(3)) / 100
            record.attributes["rpm"] = str(int(rest.group(4)))
            if rest.group(5) is not None:
                record.attributes["temp1"] = str(_number(rest.group(5)))
                record.attributes["temp2"] = str(_number(rest.group(6)))
            event = int(rest.group(7), 16)
        else:
            if not akroz:
                event = int(rest.group(1))
            record.attributes["hdop"] = str(int(rest.group(2)))
        return event
    io = _TAIL_IO.match(data, pos)
    if io:
        record.attributes["input"] = str(int(io.group(1), 16))
        record.battery = float(int(io.group(2)))
        record.odometer = float(int(io.group(3), 16))
        if io.group(4) is not None:
            record.valid = int(io.group(4)) > 0
            record.attributes["pdop"] = str(int(io.group(5)))
            record.attributes["rssi"] = str(int(io.group(6)))
        if io.group(7) is not None:
            record.attributes["temp1"] = str(int(io.group(7)) / 100)
            record.attributes["temp2"] = str(int(io.group(8)) / 100)
    return event


def _kind(sentence: Sentence) -> str:
    return "other" if sentence.data.startswith(UNDECODED) else "position"


def _detect(head: bytes) -> Detection:
    text = head.lstrip(b"\r\n")
    if not text:
        return Detection.MORE
    want = (b">", b"R", None, None, None)
    for i, byte in enumerate(text[:5]):
        expected = want[i]
        if expected is not None:
            ok = byte == expected[0]
        elif i < 4:
            ok = 0x41 <= byte <= 0x5A
        else:
            ok = byte in b"0123456789+-,"
        if not ok:
            return Detection.NO
    return Detection.YES if len(text) >= 5 else Detection.MORE


class TaipCodec(Codec):
    name = "taip"
    first_bytes = b">\r\n"
    priority = 30
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        verdict = _detect(head)
        if verdict is Detection.MORE and transport == "udp":
            return Detection.NO
        return verdict

    def new_framer(self) -> Framer:
        return LineFramer(self.max_frame, b"<", skip=b"\r\n")

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        frames = []
        for piece in datagram.split(b"<"):
            if piece.strip(b"\r\n"):
                frames.append(piece.strip(b"\r\n") + b"<")
        if not frames or any(len(frame) > self.max_frame or b">" not in frame for frame in frames):
            raise FramingError("datagram holds no TAIP sentence", discarded=datagram, reason="garbage")
        return frames

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        sentence = parse(frame)
        kind = _kind(sentence)
        reply = None
        if kind != "other":
            try:
                record = decode_sentence(sentence, Context(transport))
            except DecodeError:
                record = None
            if record is None:
                kind = "other"
            else:
                reply = _reply(sentence)
                if record.alarms:
                    kind = "alarm"
                elif not record.has_position:
                    kind = "status"
        return FrameInfo(kind, sentence.device_id, reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        sentence = parse(frame)
        record = decode_sentence(sentence, ctx)
        if record is None:
            return Decoded("other", sentence.device_id, [])
        kind = "alarm" if record.alarms else "position" if record.has_position else "status"
        return Decoded(kind, sentence.device_id, [record])


CODEC = TaipCodec()
