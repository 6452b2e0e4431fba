"""TRV (VT202/VT33S/PT33-type trackers) and "IW" kids'/seniors' watches (Traccar `trv`).

ASCII frames ending ``#``: a header ``TRV`` or ``IW``, a 4-character command (``AP00``,
``AP01``, ``CP01``, ``YP14``, ``APHT``...) and the command's body::

    TRVAP00<imei>                      login (IW: IWAP00<imei>[,<iccid>,<imsi>])
    TRVAP01<position>                  live point; AP10 alarm, YP03/YP14 also carry a position
    position = yymmdd A|V ddmm.mmmm N|S dddmm.mmmm E|W speed(ddd.d km/h) hhmmss course(6)
               gsm(3) sats(3) battery(3, %) acc(1) arm(2) mode(2) [3-5 digits]
               ,mcc,mnc,lac,cid [,alarm(2)] [,... wifi name|mac|rssi&...]
    TRVCP01,gsm(3)gps(3)battery(3)acc(1)arm(2)mode(2)[interval(3)vib(1)sens(3)auto(1)time(4)
            blocked(1)power(1)motion(1)]                                      heartbeat
    IWAP02,lang,reply,n,mcc,mnc,lac|cid|rssi,...,n,wifi     cells and Wi-Fi only
    IWAP03,rssi(3)sats(3)battery(3)x(1)fort(2)mode(2),steps,rolls         pedometer
    IWAP49,hr  IWAPHT,hr,sys,dia  IWAPHP,hr,sys,dia,spo2,sugar,temp  IWAP50,temp,battery%

Optional status values (acc, arm, blocked, power, motion) are 0 when unknown.  Alarm codes:
01 SOS, 05/06 fall down.  Only ``AP00`` carries the IMEI; the other frames belong to the
connection's device.  The battery triple is a percentage (``batteryLevel``).

Replies: the command with its first letter advanced (AP -> BP, CP -> DP, YP -> ZP) and
``#``: ``TRVBP01#``.  ``IWAP00`` is answered ``IWBP00,<yyyyMMddHHmmss UTC>,0#`` (clock reply),
``TRVAP14`` ``TRVBP14,0.000,0.000#`` (no AGPS data); AP12, AP33, AP34, AP40, AP76, AP77,
AP84-AP87 and IWAP14 get nothing, nor do the units' answers to server commands (a body of
six digits only).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
from .kit import alarms as A
from .kit.framing import LineFramer, split_with
from .kit.readers import ddmm, yymmdd_hhmmss

END = b"#"
NO_REPLY = frozenset({"AP12", "AP33", "AP34", "AP40", "AP76", "AP77", "AP84", "AP85", "AP86", "AP87"})
POSITION_TYPES = frozenset({"AP01", "AP10", "YP03", "YP14"})
ALARM_CODES = {1: A.SOS, 5: A.FALL_DOWN, 6: A.FALL_DOWN}

_SIGNATURE = re.compile(rb"(?:TRV|IW)[A-Z]P[0-9A-Z]{2}")
_PREFIX = re.compile(rb"(?:T(?:R(?:V(?:[A-Z](?:P[0-9A-Z]?)?)?)?)?|I(?:W(?:[A-Z](?:P[0-9A-Z]?)?)?)?)")
_POSITION = re.compile(
    r"(?P<date>\d{6})(?P<valid>[AV])(?P<lat>\d{4}\.\d+)(?P<ns>[NS])(?P<lon>\d{5}\.\d+)(?P<ew>[EW])"
    r"(?P<speed>\d{3}\.\d)(?P<time>\d{6})(?P<course>[\d.]{6})(?P<gsm>\d{3})(?P<sat>\d{3})(?P<battery>\d{3})"
    r"(?P<acc>\d)(?P<arm>\d\d)(?P<mode>\d\d)\d{0,5},(?P<mcc>\d+),(?P<mnc>\d+),(?P<lac>\d+),(?P<cid>\d+)"
    r"(?:,(?P<alarm>\d\d)(?=,|$))?(?P<rest>.*)"
)
_STATUS = re.compile(r"(?P<gsm>\d{3})(?P<sat>\d{3})(?P<battery>\d{3})(?P<acc>\d)(?P<arm>\d\d)(?P<mode>\d\d)")
_CP01_EXTRA = re.compile(r"(?P<interval>\d{3})\d\d{3}\d\d{4}(?P<blocked>\d)(?P<power>\d)(?P<motion>\d)")
_AP03 = re.compile(r"(?P<rssi>\d{3})(?P<sat>\d{3})(?P<battery>\d{3})\d[0-9A-Fa-f]{2}\d\d,(?P<steps>\d+),\d+")


def _split(frame: bytes) -> tuple[str, str, str]:
    """(header, command, body) of a frame, the `#` and line breaks removed."""
    text = frame.strip(b"\r\n").rstrip(b"#").decode("latin-1")
    header = "TRV" if text.startswith("TRV") else "IW" if text.startswith("IW") else ""
    command = text[len(header) : len(header) + 4]
    if not header or not _SIGNATURE.match(text[: len(header) + 4].encode("latin-1")):
        raise DecodeError("not a TRV/IW frame")
    return header, command, text[len(header) + 4 :]


def _answer(header: str, command: str) -> str:
    return header + chr(ord(command[0]) + 1) + command[1:]


def _reply(header: str, command: str, body: str) -> tuple[bytes | None, bool]:
    """(reply, needs the clock)."""
    if command == "AP00" and header == "IW":
        return None, True
    if command == "AP14":
        return (b"TRVBP14,0.000,0.000#" if header == "TRV" else None), False
    if command in NO_REPLY or re.fullmatch(r"\d{6}", body[1:]):
        return None, False
    return (_answer(header, command) + "#").encode("latin-1"), False


def _kind(command: str) -> str:
    if command == "AP00":
        return "login"
    if command == "CP01":
        return "heartbeat"
    if command == "AP10":
        return "alarm"
    if command in POSITION_TYPES:
        return "position"
    return "status"


def _optional(value: str, active: int) -> str | None:
    v = int(value)
    return None if v == 0 else str(v == active).lower()


def _common(rec: Record, m: re.Match[str]) -> None:
    at = rec.attributes
    at["rssi"] = str(int(m["gsm"]))
    rec.satellites = int(m["sat"])
    rec.battery_level = float(int(m["battery"]))
    acc = int(m["acc"])
    if acc:
        rec.ignition = acc == 1
    armed = _optional(m["arm"], 1)
    if armed is not None:
        at["armed"] = armed
    if int(m["mode"]):
        at["mode"] = str(int(m["mode"]))


def _wifi(rec: Record, fields: list[str]) -> None:
    points = []
    for field in fields:
        for item in field.split("&"):
            parts = item.strip().split("|")
            if len(parts) == 3 and parts[2].lstrip("-").isdigit():
                points.append(f"{parts[1].replace('-', ':')}/{parts[2]}")
    if points:
        rec.attributes["wifi"] = ",".join(points)


def _position(body: str) -> Record:
    m = _POSITION.match(body)
    if not m:
        raise DecodeError("malformed position report")
    fix_time = yymmdd_hhmmss(m["date"], m["time"])
    if fix_time is None:
        raise DecodeError("bad date")
    rec = Record(fix_time=fix_time, valid=m["valid"] == "A")
    rec.latitude = ddmm(m["lat"], m["ns"])
    rec.longitude = ddmm(m["lon"], m["ew"])
    if not (-90 <= rec.latitude <= 90 and -180 <= rec.longitude <= 180):
        raise DecodeError("coordinates out of range")
    rec.speed = float(m["speed"])
    try:
        rec.course = float(m["course"])
    except ValueError as exc:
        raise DecodeError("bad course") from exc
    _common(rec, m)
    rec.attributes.update(mcc=m["mcc"], mnc=str(int(m["mnc"])), lac=m["lac"], cid=m["cid"])
    if m["alarm"] is not None:
        alarm = ALARM_CODES.get(int(m["alarm"]))
        if alarm:
            rec.alarms.append(alarm)
    _wifi(rec, m["rest"].split(","))
    return rec


def _status(command: str, body: str) -> Record | None:
    values = body.split(",")
    rec = Record()
    at = rec.attributes
    if command == "CP01":
        m = _STATUS.match(values[1] if len(values) > 1 else "")
        if not m:
            raise DecodeError("malformed CP01")
        _common(rec, m)
        extra = _CP01_EXTRA.match(values[1][m.end() :])
        if extra:
            for key, name, active in (("blocked", "blocked", 2), ("power", "charge", 1), ("motion", "motion", 1)):
                v = _optional(extra[key], active)
                if v is not None:
                    at[name] = v
        return rec
    if command == "AP02":
        if len(values) < 7:
            raise DecodeError("malformed AP02")
        mcc, mnc = values[4], values[5]
        cells = [v.split("|") for v in values[6:] if v.count("|") == 2 and "-" not in v]
        if cells:
            lac, cid, rssi = cells[0]
            at.update(mcc=str(int(mcc)), mnc=str(int(mnc)), lac=lac, cid=cid, rssi=rssi)
            at["cells"] = str(len(cells))
        _wifi(rec, [v for v in values[6:] if "-" in v])
        return rec
    if command == "AP03":
        m = _AP03.match(body[1:])
        if not m:
            raise DecodeError("malformed AP03")
        at.update(rssi=str(int(m["rssi"])), steps=m["steps"])
        rec.satellites = int(m["sat"])
        rec.battery_level = float(int(m["battery"]))
        return rec
    if command == "AP49":
        at["heartRate"] = str(int(values[1]))
        return rec
    if command in ("APHT", "APHP"):
        at.update(heartRate=str(int(values[1])), pressureSystolic=str(int(values[2])))
        at["pressureDiastolic"] = str(int(values[3]))
        if command == "APHP":
            at.update(spo2=str(int(values[4])), bloodSugar=str(float(values[5])), temperature=str(float(values[6])))
        return rec
    if command == "AP50":
        at["temperature"] = str(float(values[1]))
        rec.battery_level = float(int(values[2]))
        return rec
    return None


class TrvCodec(Codec):
    name = "trv"
    first_bytes = b"TI"
    priority = 30
    replies = True
    transports = frozenset({"tcp"})
    max_frame = 1024  # Traccar's delimiter limit

    def detect(self, head: bytes, transport: str) -> Detection:
        if _SIGNATURE.match(head):
            return Detection.YES
        m = _PREFIX.match(head)
        if m and m.end() == len(head):
            return Detection.MORE
        return Detection.NO

    def new_framer(self) -> Framer:
        return LineFramer(self.max_frame, ends=END)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram if datagram.endswith(END) else datagram + END)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        header, command, body = _split(frame)
        device_id = None
        if command == "AP00":
            device_id = body.split(",")[0]
            if not device_id.isalnum():
                raise DecodeError("login without an IMEI")
        reply, clock = _reply(header, command, body)
        return FrameInfo(_kind(command), device_id, reply, clock)

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        header, command, _ = _split(frame)
        if header == "IW" and command == "AP00":
            return f"IWBP00,{now.astimezone(UTC):%Y%m%d%H%M%S},0#".encode()
        return None

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        _, command, body = _split(frame)
        kind = _kind(command)
        if command == "AP00":
            return Decoded(kind, self.inspect(frame, ctx.transport).device_id, [])
        try:
            if command in POSITION_TYPES:
                rec: Record | None = _position(body)
            else:
                rec = _status(command, body)
        except (ValueError, IndexError) as exc:
            raise DecodeError(f"malformed {command}: {exc}") from exc
        if rec is None:
            return Decoded("other", None, [])
        if rec.fix_time is None and ctx.received_at is not None:
            rec.fix_time = ctx.received_at
        rec.attributes["command"] = command
        return Decoded(kind, None, [rec])


CODEC = TrvCodec()
