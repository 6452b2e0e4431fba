"""Indian AIS-140 / ITS vehicle trackers (iTriangle, Rosmerta, CHVTS, Teltonika AIS ...; Traccar `its`).

Comma-separated ASCII; a frame starts with ``$`` and ends at ``\\r\\n``, at ``*`` (often
followed by a hex checksum, sometimes by one binary checksum byte before it) or where the
next ``$`` begins.  The AIS-140 standard leaves the header to the vendor, so the packets
are recognised by their shape:

Tracking packet (``$NRM``, ``$Header``, ``$RLP``, ``$,03`` ...)::

    $[,]tag, vendor, firmware, status(2), [event,] L|H, imei, vehicle, valid(0|1),
        ddmmyyyy, hhmmss, lat, N|S, lon, E|W, speed, course, sats, altitude, pdop, hdop,
        operator, ignition, charging, power V, battery V, emergency, tamper,
        signal, mcc, mnc, lac, cid, [neighbour cells ...], inputs(4), outputs(2), [tail] [*cs]

    status: NR normal, EA/WD emergency (sos), BL low battery, HB harsh braking,
    HA harsh acceleration, RT rash turning, OS overspeed, TA tamper, BD power cut,
    BR power restored, IN/IF ignition on/off.  L = live, H = history (archive).
    Date may also be ``ddmmyy`` or six fields ``dd,mm,yyyy,hh,mm,ss``; coordinates are
    decimal degrees with hemisphere letters; speed km/h; altitude metres.
    tail: ``index,odometer km,adc1,ax,ay,az,tiltY,tiltX`` | ``index,odometer km,checksum`` |
    ``index,adc1,adc2`` | ``adc1,odometer,index(6),responseFormat,response``.

Emergency packet (``$EPB``)::

    $[,]EPB, EMR|SEM, imei, status(2), ddmmyyyyhhmmss, A|V, lat, N, lon, E, altitude, speed, ...

Login (``$,LGN,...``, ``$LGN,,imei,...``, ``$,01,vendor,fw,imei,vehicle,``, ``$Header,vendor,
vehicle,imei,firmware,AIS140,lat,N,lon,E*cs``), health (``$,02,...``) and heartbeat
(``$,HBT,...``) packets carry no position.

Replies (as Traccar sends them): ``$,01,`` → ``$,1,*``; ``$,LGN,`` → ``$LGN<ddMMyyyyHHmmss>*``
(server UTC clock); ``$,HBT,`` → ``$HBT*``.  Nothing else is answered.
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
from .kit import alarms, keys
from .kit.framing import drop_leading, garbage, no_end_marker
from .kit.readers import utc

START = ord("$")
MAX_FRAME = 2048
MAX_CHECKSUM_DIGITS = 8
STATUS_ALARMS = {
    "WD": alarms.SOS,
    "EA": alarms.SOS,
    "BL": alarms.LOW_BATTERY,
    "HB": alarms.BRAKING,
    "HA": alarms.ACCELERATION,
    "RT": alarms.CORNERING,
    "OS": alarms.OVERSPEED,
    "TA": alarms.TAMPERING,
    "BD": alarms.POWER_CUT,
    "BR": alarms.POWER_RESTORED,
}
EMERGENCY_TYPES = ("EMR", "SEM")
LOGIN_REPLY = b"$,1,*"
HEARTBEAT_REPLY = b"$HBT*"

_IMEI = re.compile(r"\d{15}")
_DECIMAL = re.compile(r"\d+\.\d+")
_NUMBER = re.compile(r"-?\d+(?:\.\d*)?")
_UNSIGNED = re.compile(r"\d+(?:\.\d*)?")
_INT = re.compile(r"-?\d+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_INPUTS = re.compile(r"[012]{4}")
_OUTPUTS = re.compile(r"[01]{2}")
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")
_HEX_BYTES = b"0123456789ABCDEFabcdef"


# --------------------------------------------------------------------- framing
class ItsFramer(Framer):
    """`$` ... up to CR LF, a `*` (+ the hex checksum and CR LF already buffered) or the next `$`."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 1

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if drop_leading(buf, b"\r\n"):
            self._scan = 1
        if not buf:
            return None
        if buf[0] != START:
            j = buf.find(b"$")
            self._scan = 1
            raise garbage(buf, j if j >= 0 else len(buf))
        end = self._end()
        if end is None:
            self._scan = max(1, len(buf) - 1)
            if len(buf) > self.max_frame:
                self._scan = 1
                raise no_end_marker(buf, self.max_frame)
            return None
        self._scan = 1
        frame = bytes(buf[:end])
        del buf[:end]
        if end > self.max_frame:
            raise FramingError(f"frame of {end} bytes", discarded=frame, fatal=True, reason="frame too large")
        return frame

    def _end(self) -> int | None:
        buf = self._buf
        for j in range(self._scan, len(buf)):
            byte = buf[j]
            if byte == START:
                return j
            if byte == 0x0D and buf[j + 1 : j + 2] == b"\n":
                return j + 2
            if byte == 0x2A:  # '*'
                end = j + 1
                if buf[end : end + 1] == b"*":
                    end += 1
                stop = end
                while stop < len(buf) and stop - end < MAX_CHECKSUM_DIGITS and buf[stop] in _HEX_BYTES:
                    stop += 1
                if buf[stop : stop + 2] == b"\r\n":
                    stop += 2
                return stop
        return None


# --------------------------------------------------------------------- parsing
def _fields(frame: bytes) -> list[str]:
    """The comma fields after `$` (a leading empty field dropped), checksum/terminator removed."""
    text = frame.rstrip(b"\r\n")
    if not text.startswith(b"$"):
        raise DecodeError("not an ITS frame ($...)")
    star = text.find(b"*")
    if star >= 0:
        text = text[:star]
        if len(text) >= 2 and text[-2:-1] == b"," and not (0x20 <= text[-1] <= 0x7E):
            text = text[:-1]  # one binary checksum byte before '*'
    body = text[1:].decode("latin-1")
    if body.startswith(","):
        body = body[1:]
    return body.split(",")


def _layout(f: list[str]) -> tuple[str, int] | None:
    """('track', imei index) for tracking packets, ('emergency', imei index) for EPB-style
    ones, None when the fields are neither."""
    if len(f) > 5 and len(f[3]) == 2:
        if f[4] in ("L", "H") and _IMEI.fullmatch(f[5]):
            return "track", 5
        if len(f) > 6 and f[4].isdecimal() and f[5] in ("L", "H") and _IMEI.fullmatch(f[6]):
            return "track", 6
    if len(f) > 2 and (f[1] in EMERGENCY_TYPES or f[0] == "EPB") and _IMEI.fullmatch(f[2]):
        return "emergency", 2
    if len(f) > 3 and f[2] in EMERGENCY_TYPES and _IMEI.fullmatch(f[3]):
        return "emergency", 3  # a vendor field before the packet type
    return None


def _imei(f: list[str], limit: int = 8) -> str | None:
    return next((x for x in f[:limit] if _IMEI.fullmatch(x)), None)


def _datetime(f: list[str], j: int) -> tuple[datetime | None, int] | None:
    """Date and time from f[j:]: ``ddmmyyyyhhmmss``, ``ddmm(yy)yy,hhmmss`` or
    ``dd,mm,(yy)yy,hh,mm,ss`` -> (moment, or None when it is no real instant such as the
    all-zero date of units without a fix; index after), or None when the fields are no date."""

    def digits(k: int, *sizes: int) -> bool:
        return k < len(f) and f[k].isdecimal() and len(f[k]) in sizes

    if digits(j, 14):
        d = f[j]
        return utc(int(d[4:8]), int(d[2:4]), int(d[0:2]), int(d[8:10]), int(d[10:12]), int(d[12:14])), j + 1
    if digits(j, 6, 8) and digits(j + 1, 6):
        d, t = f[j], f[j + 1]
        return utc(int(d[4:]), int(d[2:4]), int(d[0:2]), int(t[0:2]), int(t[2:4]), int(t[4:6])), j + 2
    if all(digits(j + k, 2) for k in (0, 1, 3, 4, 5)) and digits(j + 2, 2, 4):
        n = [int(x) for x in f[j : j + 6]]
        return utc(n[2], n[1], n[0], n[3], n[4], n[5]), j + 6
    return None


def _coordinate(value: str, hemisphere: str, negative: str, limit: float) -> float:
    if not _DECIMAL.fullmatch(value):
        raise DecodeError(f"bad coordinate {value!r}")
    degrees = float(value)
    if degrees > limit:
        raise DecodeError(f"coordinate out of range {value!r}")
    return -degrees if hemisphere == negative else degrees


def _apply_status(record: Record, status: str | None) -> None:
    if status == "IN":
        record.ignition = True
    elif status == "IF":
        record.ignition = False
    elif status in STATUS_ALARMS and STATUS_ALARMS[status] not in record.alarms:
        record.alarms.append(STATUS_ALARMS[status])


def _position(f: list[str], layout: str, at: int, ctx: Context) -> Record:
    record = Record()
    attrs = record.attributes
    status: str | None = None
    if layout == "track":
        status = f[3]
        if at == 6:
            attrs[keys.EVENT] = str(int(f[4]))
        record.archive = f[at - 1] == "H"
    elif f[at - 1] == "EMR":
        record.alarms.append(alarms.SOS)
    j = at + 1
    when = _datetime(f, j + 1) if j < len(f) and len(f[j]) == 2 else None
    if when is not None:
        status = f[j]
    else:
        j += 1  # vehicle registration
        if j < len(f) and f[j] in ("0", "1") and (when := _datetime(f, j + 1)) is not None:
            record.valid = f[j] == "1"
        else:
            when = _datetime(f, j)
    if when is None:
        raise DecodeError("no date/time after the IMEI")
    moment, j = when
    record.fix_time = moment or ctx.received_at
    if j < len(f) and f[j] in ("0", "1", "A", "V"):
        record.valid = f[j] in ("1", "A")
        j += 1
    if j + 4 > len(f) or f[j + 1] not in ("N", "S") or f[j + 3] not in ("E", "W"):
        raise DecodeError("no coordinates")
    record.latitude = _coordinate(f[j], f[j + 1], "S", 90)
    record.longitude = _coordinate(f[j + 2], f[j + 3], "W", 180)
    _apply_status(record, status)
    rest = f[j + 4 :]
    if len(rest) >= 3 and _UNSIGNED.fullmatch(rest[0]) and _UNSIGNED.fullmatch(rest[1]) and rest[2].isdecimal():
        record.speed = float(rest[0])
        record.course = float(rest[1])
        record.satellites = int(rest[2])
        _details(record, rest[3:])
    elif len(rest) >= 2 and re.fullmatch(r"-?\d+\.\d+", rest[0]) and _DECIMAL.fullmatch(rest[1]):
        record.altitude = float(rest[0])
        record.speed = float(rest[1])
    return record


def _details(record: Record, r: list[str]) -> None:
    """altitude ... outputs and the optional tail (left alone when the fields do not fit)."""
    if len(r) < 12 or not all(_UNSIGNED.fullmatch(x) for x in r[0:3]):
        return
    flags = (r[4], r[5], r[8])
    if not all(x in ("0", "1") for x in flags) or not _UNSIGNED.fullmatch(r[6]) or not _UNSIGNED.fullmatch(r[7]):
        return
    attrs = record.attributes
    record.altitude = float(r[0])
    attrs[keys.PDOP] = str(float(r[1]))
    attrs[keys.HDOP] = str(float(r[2]))
    if r[3]:
        attrs[keys.OPERATOR] = r[3]
    record.ignition = r[4] == "1"
    attrs[keys.CHARGE] = "true" if r[5] == "1" else "false"
    record.power = float(r[6])
    record.battery = float(r[7])
    attrs["emergency"] = "true" if r[8] == "1" else "false"
    k = 9
    if k < len(r) and len(r[k]) <= 1 and not r[k].isdecimal():
        k += 1  # tamper flag
    io = next(
        (m for m in range(len(r) - 2, k - 1, -1) if _INPUTS.fullmatch(r[m]) and _OUTPUTS.fullmatch(r[m + 1])), None
    )
    if io is None:
        return
    _cells(attrs, r[k:io])
    attrs[keys.INPUT] = str(int(r[io].replace("2", "0"), 2))  # 2 = input not fitted
    attrs[keys.OUTPUT] = str(int(r[io + 1], 2))
    _tail(record, r[io + 2 :])


def _cells(attrs: dict[str, str], cells: list[str]) -> None:
    if len(cells) < 5 or any("x" in c for c in cells):
        return
    try:
        signal, mcc, mnc = int(cells[0]), int(cells[1]), int(cells[2])
        lac, cid = int(cells[3], 16), int(cells[4], 16)
    except ValueError:
        return
    attrs[keys.RSSI] = str(signal)
    attrs[keys.MCC], attrs[keys.MNC], attrs[keys.LAC], attrs[keys.CELL_ID] = str(mcc), str(mnc), str(lac), str(cid)


def _tail(record: Record, t: list[str]) -> None:
    """The optional fields after the outputs, the first of Traccar's four shapes that fits."""
    attrs = record.attributes
    number = _UNSIGNED.fullmatch
    if (
        len(t) >= 9
        and t[0].isdecimal()
        and number(t[1])
        and number(t[2])
        and all(_NUMBER.fullmatch(x) for x in t[3:6])
        and all(_INT.fullmatch(x) for x in t[6:8])
    ):
        record.odometer = float(t[1]) * 1000
        attrs["adc1"] = str(float(t[2]))
        attrs[keys.G_SENSOR] = f"[{float(t[3])},{float(t[4])},{float(t[5])}]"
        attrs["tiltY"], attrs["tiltX"] = str(int(t[6])), str(int(t[7]))
    elif len(t) >= 4 and t[0].isdecimal() and number(t[1]) and _HEX.fullmatch(t[2]):
        record.odometer = float(t[1]) * 1000
    elif len(t) >= 4 and t[0].isdecimal() and number(t[1]) and number(t[2]):
        attrs["adc1"], attrs["adc2"] = str(float(t[1])), str(float(t[2]))
    elif (
        len(t) >= 6 and _DECIMAL.fullmatch(t[0]) and t[1].isdecimal() and re.fullmatch(r"\d{6}", t[2]) and t[3] and t[4]
    ):
        attrs["adc1"] = str(float(t[0]))
        record.odometer = float(int(t[1]))
        attrs[keys.INDEX] = str(int(t[2]))
        attrs["responseFormat"], attrs["response"] = t[3], t[4]


def _kind(f: list[str]) -> str:
    tag = f[0] if f else ""
    if tag in ("LGN", "01") or (tag == "Header" and len(f) > 5 and f[5] == "AIS140"):
        return "login"
    if tag == "HBT":
        return "heartbeat"
    if tag == "02":
        return "status"
    layout = _layout(f)
    if layout is None:
        return "other"
    if layout[0] == "emergency":
        return "alarm"
    status = f[3]
    if status in STATUS_ALARMS:
        return "alarm"
    return "batch" if f[layout[1] - 1] == "H" else "position"


def _signature(head: bytes) -> Detection:
    """Whether `head` starts like an ITS packet: `$`, a short tag, and an IMEI where one of
    the known layouts puts it."""
    if head[:1] != b"$":
        return Detection.NO
    ends = [i for i in (head.find(b"*"), head.find(b"\r"), head.find(b"$", 1)) if i >= 0]
    cut = min(ends, default=len(head))
    text = head[:cut]
    # a one-byte binary checksum may stand between the last `,` and the `*` (or the end, so far)
    at_checksum = head[cut : cut + 1] == b"*" if cut < len(head) else True
    checked = text[:-1] if at_checksum and text[-2:-1] == b"," else text
    if not _PRINTABLE.fullmatch(checked):
        return Detection.NO
    f = _fields(text)
    complete = f if cut < len(head) else f[:-1]
    if not re.fullmatch(r"[A-Za-z0-9]{0,8}", f[0] if complete else f[0][:8]):
        return Detection.NO
    if _layout(complete) is not None:
        return Detection.YES
    if _imei(complete) and (_kind(complete) in ("login", "heartbeat", "status") or complete[0] == ""):
        return Detection.YES
    if cut < len(head) or len(complete) >= 9:
        return Detection.NO
    if _imei(complete):
        # a `$Header,<vendor>,<vehicle>,<imei>,...` login whose AIS140 field is still to come
        return Detection.MORE if complete[0] == "Header" and _imei(complete[:4]) else Detection.NO
    # only the tracking layout puts the IMEI past field 3: `status(2), [event,] L|H` before it
    if len(complete) > 3 and len(complete[3]) != 2:
        return Detection.NO
    if len(complete) > 4 and complete[4] not in ("L", "H") and not complete[4].isdecimal():
        return Detection.NO
    if len(complete) > 5 and complete[5] not in ("L", "H"):
        return Detection.NO
    return Detection.MORE


class ItsCodec(Codec):
    name = "its"
    first_bytes = b"$"
    priority = 40
    replies = True
    transports = frozenset({"tcp"})
    max_frame = MAX_FRAME

    def detect(self, head: bytes, transport: str) -> Detection:
        return _signature(head[:MAX_FRAME])

    def new_framer(self) -> Framer:
        return ItsFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        f = _fields(frame)
        kind = _kind(f)
        layout = _layout(f)
        device_id = f[layout[1]] if layout else _imei(f)
        reply = None
        clock = False
        text = frame.lstrip()
        if text.startswith(b"$,01,"):
            reply = LOGIN_REPLY
        elif text.startswith(b"$,LGN,"):
            clock = True
        elif text.startswith(b"$,HBT,"):
            reply = HEARTBEAT_REPLY
        return FrameInfo(kind, device_id, reply, clock)

    def reply_at(self, frame: bytes, transport: str, now: datetime) -> bytes | None:
        if frame.startswith(b"$,LGN,"):
            return f"$LGN{now:%d%m%Y%H%M%S}*".encode()
        return None

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes")
        f = _fields(frame)
        kind = _kind(f)
        layout = _layout(f)
        if layout is None:
            return Decoded(kind, _imei(f), [])
        return Decoded(kind, f[layout[1]], [_position(f, layout[0], layout[1], ctx)])


CODEC = ItsCodec()
