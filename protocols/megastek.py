"""Megastek (Taiwan) GVT-800, GVT900, STL060 (Traccar `megastek`).

New format, often behind a 4-digit length (total = 4 + value), ends ``;!``::

    [0137]$MGV002,<imei>,<name>,R|S,ddmmyy,hhmmss,A|V,ddmm.mmmmm,N|S,dddmm.mmmmm,E|W,
          xx,sats,xx,hdop,speed kn,course,altitude m,odometer km,mcc,mnc,lac hex,cid hex,rssi,
          <io>,temp1,temp2,rfid,[charge(1)belt(1)],battery %,alert,[wifi mac:rssi|...];!
    io = [heart rate(3)] input(4 binary) output(4 binary) adc1 adc2 adc3
       | heart rate, steps, activity time, light sleep, deep sleep        (watches)

``R`` is a live point, ``S`` a stored one (``archive``).

Old formats carry an NMEA ``$GPRMC`` sentence (speed in knots; ``hhmmss.sss``)::

    STX,<id>,$GPRMC,...*cs,F|L,<alert>,imei:<imei>,sats[/visible],altitude,Battery=nn%,[,]charger,
        mcc,mnc,lac hex,cid hex;<check>                      (LOGSTX,... : the logged variant)
    STX<id padded to 16><2 bytes>$GPRMC,...*cs,mcc,mnc,lac,cid,rssi,battery %,flags,inputs,
        [outputs,]adc1,[adc2,adc3,]<alert>;<check>

The device id is the IMEI when the line carries ``imei:``, else the id after ``STX``.
``cmd=aid;user=..;pwd=..;lat=..;lon=..;pacc=..`` is the unit's AGPS request (no position).

Framing: a digit first -> 4-digit length; otherwise leading CR/LF are skipped and the
frame ends at ``!`` or ``\\n``.  The server never answers.  Alerts map to alarms by name
(``PW ON`` power on, ``SOS``/``Help``, ``Geo..in``/``Geo..out``, ``PSD`` power cut...).
"""

from __future__ import annotations

import re

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
from .kit.framing import drop_leading, garbage, no_end_marker, split_with, take_sized
from .kit.readers import KNOTS, ddmmyy_hhmmss

ALERTS = {
    "pw on": A.POWER_ON,
    "poweron": A.POWER_ON,
    "poweroff": A.POWER_OFF,
    "sos": A.SOS,
    "help": A.SOS,
    "over speed": A.OVERSPEED,
    "overspeed": A.OVERSPEED,
    "lowspeed": A.LOW_SPEED,
    "low battery": A.LOW_BATTERY,
    "lowbattery": A.LOW_BATTERY,
    "low extern voltage": A.LOW_POWER,
    "gps cut": A.GPS_ANTENNA_CUT,
    "vib": A.VIBRATION,
    "hit": A.VIBRATION,
    "move in": A.GEOFENCE_ENTER,
    "move out": A.GEOFENCE_EXIT,
    "corner": A.CORNERING,
    "fatigue": A.FATIGUE_DRIVING,
    "psd": A.POWER_CUT,
    "psr": A.POWER_RESTORED,
    "belt on": A.LOCK,
    "belton": A.LOCK,
    "belt off": A.UNLOCK,
    "beltoff": A.UNLOCK,
    "error": A.FAULT,
}

_NEW = re.compile(rb"(?:\d{4})?\$MGV\d{3},")
_NEW_PREFIX = re.compile(rb"\d{0,4}(?:\$(?:M(?:G(?:V\d{0,3})?)?)?)?")
_OLD = re.compile(rb"(?:LOG)?STX,")
_AGPS = b"cmd=aid;"
_BIN4 = re.compile(r"[01]{4}")
_TEMP = re.compile(r"-?\d+\.?\d*")


def alarm_of(text: str) -> str | None:
    value = text.strip().lower()
    if value.startswith("geo"):
        if value.endswith("in"):
            return A.GEOFENCE_ENTER
        if value.endswith("out"):
            return A.GEOFENCE_EXIT
    return ALERTS.get(value)


class _MegastekFramer(Framer):
    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if drop_leading(buf, b"\r\n"):
            self._scan = 0
        if not buf:
            return None
        if 0x30 <= buf[0] <= 0x39:
            if len(buf) < 4:
                return None
            digits = bytes(buf[:4])
            if not digits.isdigit():
                self._scan = 0
                raise garbage(buf, next((j for j in range(1, len(buf)) if buf[j] in b"$SL"), len(buf)))
            total = 4 + int(digits)
            return take_sized(buf, total, self.max_frame)
        j = self._scan
        n = len(buf)
        while j < n and buf[j] not in b"!\n":
            j += 1
        if j >= n:
            self._scan = n
            if n > self.max_frame:
                self._scan = 0
                raise no_end_marker(buf, self.max_frame)
            return None
        self._scan = 0
        frame = bytes(buf[: j + 1])
        del buf[: j + 1]
        if len(frame) > self.max_frame:
            raise no_end_marker(bytearray(frame), self.max_frame)
        return frame


def _coordinate(value: str, hemisphere: str) -> float:
    """`(d)ddmm.mmmm`: Traccar reads the minutes as given, even past 60 (the LOGSTX captures)."""
    dot = value.find(".")
    if dot < 3:
        raise DecodeError(f"bad coordinate {value!r}")
    result = int(value[: dot - 2]) + float(value[dot - 2 :]) / 60
    return -result if hemisphere in ("S", "W") else result


def _gprmc(location: str) -> Record | None:
    g = location.split("*")[0].split(",")
    if len(g) < 10 or g[0] != "$GPRMC" or g[2] not in ("A", "V"):
        return None
    if not (g[3] and g[5] and re.fullmatch(r"\d{6}(\.\d+)?", g[1]) and re.fullmatch(r"\d{6}", g[9])):
        return None
    fix_time = ddmmyy_hhmmss(g[9], g[1])
    if fix_time is None:
        return None
    rec = Record(fix_time=fix_time, valid=g[2] == "A")
    rec.latitude = _coordinate(g[3], g[4])
    rec.longitude = _coordinate(g[5], g[6])
    rec.speed = float(g[7] or 0) * KNOTS
    rec.course = float(g[8] or 0)
    return rec


def _simple_status(rec: Record, status: str) -> str | None:
    """`F|L,alert,imei:<n>,sats,alt,Battery=nn%,[,]charger,mcc,mnc,lac,cid;` -> the IMEI."""
    s = status.split(";")[0].split(",")
    if len(s) < 6 or s[0] not in ("F", "L") or not s[2].startswith("imei:"):
        return None
    imei = s[2][5:]
    if not imei.isdigit():
        return None
    alarm = alarm_of(s[1])
    if alarm:
        rec.alarms.append(alarm)
    if s[3]:
        seen, _, visible = s[3].partition("/")
        rec.satellites = int(seen)
        if visible:
            rec.attributes["satVisible"] = str(int(visible))
    if s[4]:
        rec.altitude = float(s[4])
    m = re.fullmatch(r"Battery=(\d+)%", s[5])
    if m:
        rec.battery_level = float(m[1])
    rest = s[6:]
    if len(rest) >= 5:
        if rest[-5]:
            rec.attributes["charge"] = str(int(rest[-5]) == 1).lower()
        mcc, mnc, lac, cid = rest[-4:]
        if mcc and mnc and lac and cid:
            rec.attributes.update(mcc=str(int(mcc)), mnc=str(int(mnc)), lac=str(int(lac, 16)), cid=str(int(cid, 16)))
    return imei


def _alternative_status(rec: Record, status: str) -> None:
    """`mcc,mnc,lac,cid,rssi,battery,flags,inputs,[outputs,]adc1,[adc2,adc3,]alert;`."""
    s = status.split(";")[0].split(",")
    if len(s) < 10:
        return
    rec.attributes.update(mcc=str(int(s[0])), mnc=str(int(s[1])), lac=str(int(s[2], 16)), cid=str(int(s[3], 16)))
    rec.attributes["rssi"] = s[4]
    rec.battery_level = float(s[5])
    middle, alert = s[6:-1], s[-1]
    rec.attributes["flags"] = middle[0]
    rec.attributes["input"] = middle[1]
    adcs = middle[2:]
    if len(adcs) in (2, 4):
        rec.attributes["output"] = adcs[0]
        adcs = adcs[1:]
    for i, value in enumerate(adcs[:3], 1):
        rec.attributes[f"adc{i}"] = value
    alarm = alarm_of(alert)
    if alarm:
        rec.alarms.append(alarm)


def _decode_old(text: str) -> Decoded:
    logged = text.startswith("LOG")
    sentence = text[3:] if logged else text
    gp = sentence.find("$GPRMC")
    if gp < 0:
        raise DecodeError("no $GPRMC sentence")
    simple = sentence[3:4] == ","
    if simple:
        device_id = sentence[4 : sentence.index(",", 4)] if "," in sentence[4:] else ""
        star = sentence.find("*", gp)
        if star >= 0:
            location, status = sentence[gp : star + 3], sentence[star + 4 :]
        else:
            m = re.search(r",([FL],[^,]*,imei:)", sentence[gp:])
            location = sentence[gp : gp + m.start()] if m else sentence[gp:]
            status = sentence[gp + m.start(1) :] if m else ""
    else:
        device_id = sentence[3 : max(gp - 2, 3)].strip()
        star = sentence.find("*", gp)
        if star < 0:
            raise DecodeError("no checksum after $GPRMC")
        location, status = sentence[gp : star + 3], sentence[star + 4 :]
    rec = _gprmc(location)
    if rec is None:
        return Decoded("status", device_id or None, [])
    rec.archive = logged
    if simple:
        imei = _simple_status(rec, status)
        device_id = imei or device_id
    else:
        _alternative_status(rec, status)
    return Decoded("batch" if logged else "position", device_id or None, [rec])


def _io_block(rec: Record, rest: list[str]) -> int:
    """The io fields after the rssi; returns how many were used."""
    at = rec.attributes

    def empty_or(pattern: re.Pattern[str], value: str) -> bool:
        return value == "" or bool(pattern.fullmatch(value))

    def digits(values: list[str]) -> bool:
        return all(v == "" or v.isdigit() for v in values)

    if (
        len(rest) >= 6
        and re.fullmatch(r"\d{3}", rest[0])
        and empty_or(_BIN4, rest[1])
        and empty_or(_BIN4, rest[2])
        and digits(rest[3:6])
    ):
        at["heartRate"] = str(int(rest[0]))
        ins, outs, adcs, used = rest[1], rest[2], rest[3:6], 6
    elif len(rest) >= 5 and empty_or(_BIN4, rest[0]) and empty_or(_BIN4, rest[1]) and digits(rest[2:5]):
        ins, outs, adcs, used = rest[0], rest[1], rest[2:5], 5
    elif len(rest) >= 5 and all(v.isdigit() for v in rest[:5]):
        at.update(
            heartRate=str(int(rest[0])),
            steps=str(int(rest[1])),
            activityTime=rest[2],
            lightSleepTime=rest[3],
            deepSleepTime=rest[4],
        )
        return 5
    else:
        return 0
    at["input"] = str(int(ins, 2)) if ins else "0"
    at["output"] = str(int(outs, 2)) if outs else "0"
    for i, value in enumerate(adcs, 1):
        at[f"adc{i}"] = str(int(value)) if value else "0"
    return used


def _decode_new(text: str) -> Decoded:
    start = text.find("$MGV")
    f = text[start:].split(",")
    if len(f) < 14:
        raise DecodeError("short $MGV report")
    imei = f[1]
    if not imei.isdigit():
        raise DecodeError("bad IMEI")
    if f[3] not in ("R", "S") or f[6] not in ("A", "V"):
        raise DecodeError("bad $MGV report")
    if not (f[7] and f[9] and f[8] in ("N", "S") and f[10] in ("E", "W")):
        return Decoded("status", imei, [])  # no coordinates: Traccar drops the report
    fix_time = ddmmyy_hhmmss(f[4], f[5])
    if fix_time is None:
        raise DecodeError("bad date")
    rec = Record(fix_time=fix_time, valid=f[6] == "A", archive=f[3] == "S")
    rec.latitude = _coordinate(f[7], f[8])
    rec.longitude = _coordinate(f[9], f[10])
    rec.satellites = int(f[12] or 0)
    at = rec.attributes
    at["hdop"] = str(float(f[14] or 0))
    if len(f) <= 23:
        return Decoded("batch" if rec.archive else "position", imei, [rec])
    rec.speed = float(f[15] or 0) * KNOTS
    rec.course = float(f[16] or 0)
    rec.altitude = float(f[17] or 0)
    if f[18]:
        rec.odometer = float(f[18]) * 1000
    mcc, mnc, lac, cid, rssi = f[19:24]
    if mcc and mnc and lac and cid:
        at.update(mcc=str(int(mcc)), mnc=str(int(mnc)), lac=str(int(lac, 16)), cid=str(int(cid, 16)))
        if rssi:
            at["rssi"] = rssi
    rest = f[24:]
    used = _io_block(rec, rest)
    rest = rest[used:]
    for i in (1, 2):
        if rest and _TEMP.fullmatch(rest[0]):
            at[f"temp{i}"] = str(float(rest[0]))
        rest = rest[1:]
    if len(rest) >= 3:
        if rest[0]:
            at["driverUniqueId"] = rest[0]

        def num(v: str) -> bool:
            return v == "" or v.isdigit()

        if len(rest) >= 4 and num(rest[1]) and num(rest[2]) and ";" not in rest[2]:
            flags, battery, alert, wifi = rest[1], rest[2], rest[3], rest[4] if len(rest) > 4 else ""
            if flags[:1] in ("0", "1"):
                at["charge"] = str(int(flags[0]) > 0).lower()
                if len(flags) > 1 and flags[1].isdigit():
                    at["belt"] = flags[1]
        else:
            battery, alert, wifi = rest[1], rest[2], rest[3] if len(rest) > 3 else ""
        if battery.isdigit():
            rec.battery_level = float(int(battery))
        alert = alert.split(";")[0]
        at["alertText"] = alert
        alarm = alarm_of(alert)
        if alarm:
            rec.alarms.append(alarm)
        points = []
        for point in wifi.split(";")[0].split("|"):
            mac, _, level = point.partition(":")
            if len(mac) == 12 and level.lstrip("-").isdigit():
                points.append(":".join(mac[i : i + 2] for i in range(0, 12, 2)) + "/" + level)
        if points:
            at["wifi"] = ",".join(points)
    return Decoded("batch" if rec.archive else "position", imei, [rec])


class MegastekCodec(Codec):
    name = "megastek"
    first_bytes = b"0123456789$SLc"
    priority = 30
    replies = False
    transports = frozenset({"tcp"})
    max_frame = 4096  # 4-digit length field

    def detect(self, head: bytes, transport: str) -> Detection:
        if _NEW.match(head) or _OLD.match(head) or head.startswith(_AGPS):
            return Detection.YES
        if head.startswith(b"STX") and len(head) > 3:
            gp = head.find(b"$GPRMC", 4, 40)
            if gp >= 19:
                return Detection.YES
            if len(head) < 27 and b"$" not in head[4:19] and b"," not in head[3:19]:
                return Detection.MORE
            return Detection.NO
        m = _NEW_PREFIX.match(head)
        if m and m.end() == len(head):
            return Detection.MORE
        for prefix in (b"LOGSTX,", b"STX", _AGPS):
            if prefix.startswith(head):
                return Detection.MORE
        return Detection.NO

    def new_framer(self) -> Framer:
        return _MegastekFramer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        return split_with(self.new_framer(), datagram if datagram.endswith((b"!", b"\n")) else datagram + b"\n")

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        decoded = self._parse(frame)
        return FrameInfo(decoded.kind, decoded.device_id, None)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        return self._parse(frame)

    def _parse(self, frame: bytes) -> Decoded:
        text = frame.decode("latin-1").strip("\r\n")
        if text.endswith("!"):
            text = text[:-1]
        try:
            if text.startswith("cmd="):
                return Decoded("other", None, [])
            if "$MG" in text:
                return _decode_new(text)
            if text.startswith(("STX", "LOGSTX")):
                return _decode_old(text)
        except (ValueError, IndexError) as exc:
            raise DecodeError(f"bad Megastek report: {exc}") from exc
        raise DecodeError("not a Megastek frame")


CODEC = MegastekCodec()
