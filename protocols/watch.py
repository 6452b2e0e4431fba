"""3G/4G kids' and elderly watches (the "3G" protocol of Wonlex/SeTracker-type and ZJ units;
Traccar `watch`).

ASCII frames in square brackets, fields split by ``*``, the content by ``,``::

    [ VV * id * [index *] LLLL * TYPE [,content] ]
      |    |     |         |      `- LK, UD, UD2, UD_LTE, UD_WCDMA, AL..., WT, INIT, TKQ, TKQ2,
      |    |     |         |         PULSE/HEART/BLOOD/BPHRT/TEMP/btemp2/oxygen, img, JXTK, TK ...
      |    |     |         `- content length, 4 hex digits
      |    |     `- optional 4-hex message index (ZJ units); echoed in replies
      |    `- device id (10 digits, sometimes an IMEI)
      `- two-character vendor (3G, SG, CS, ZJ, YS ...), echoed in replies

    [3G*9031853319*004E*UD2,220322,055105,A,22.761162,N,114.360192,E,...]

Framing: brackets are counted (binary audio/image payloads may hold ``[``/``]``), so a frame
ends where the count returns to zero.  Inside a frame ``}`` escapes the next byte: ``}``
0x01 = ``}``, 0x02 = ``[``, 0x03 = ``]``, 0x04 = ``,``, 0x05 = ``*``.  The framer returns the
bytes as received; the decoder unescapes (leniently: an unknown escape is kept as is,
decoder-test frames were unescaped already).

Position content (UD*, AL*, WT)::

    ddmmyy,hhmmss,A|V,lat,[N|S],lon,[E|W],speed km/h,course,altitude,sats,rssi,battery %,
    steps,tumbles,status (hex),cells: count,ta,mcc,mnc,(lac,cid,rssi)*count,
    wifi: count,(name,mac,rssi)*count[,accuracy]

The cell towers (MCC/MNC/LAC/CID, hex or decimal LAC/CID, RSSI) and Wi-Fi access points
(MAC, RSSI) that follow are kept as ``network``: JSON shaped like Traccar's Network object
(``{"cellTowers": [...], "wifiAccessPoints": [...]}``); Wi-Fi-only and LBS-only reports
(``V`` with 0/0 coordinates) keep it too, so a location service can resolve them.

Latitude/longitude are decimal degrees; a ``S``/``W`` hemisphere makes the value negative (a
``-84.14,W`` stays negative).  Time is UTC as sent.  ``UD2`` is the blind-area supplement
(points stored while offline) and decodes with ``archive``.

Status bits (Traccar's reading): 0 low battery, 1 geofence exit, 2 geofence enter, 14 power
cut, 16 SOS, 17 low battery, 18 geofence exit, 19 geofence enter, 20 removing (off the
wrist), 21/22 fall down; bit 4 = motion.  An ``AL`` frame without a recognised bit is a
``general`` alarm.

Other content: ``LK,steps,tumbles,battery`` (a status record with ``steps`` and the
battery level), health readings ``PULSE``/``HEART`` (``heartRate``), ``BLOOD``/``BPHRT``
(``pressureHigh``, ``pressureLow``[, ``heartRate``]), ``TEMP`` / ``btemp2`` (``temp1``),
``oxygen`` (``bloodOxygen``), all stamped with the receive time.  Media (``img`` photos,
``TK``/``TK2`` voice messages, ``JXTK`` audio chunks) is acknowledged as Traccar does but not
decoded: a sans-I/O decoder has no media store.

Replies (as Traccar sends them, the index repeated when the device used one, length as
4 lower-case hex digits): ``LK`` -> ``[VV*id*0002*LK]``, ``AL...`` -> ``[VV*id*0002*AL]``,
``INIT`` -> ``[VV*id*0006*INIT,1]``, ``TKQ``/``TKQ2`` echoed, ``JXTK`` (audio chunk) ->
``JXTKR,1``.  Nothing else is answered.  TCP only.
"""

from __future__ import annotations

import json
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
from .kit import alarms as A
from .kit import framing
from .kit.framing import drop_leading, garbage, no_end_marker, resync_cut
from .kit.readers import ddmmyy_hhmmss, finite_float

START = ord("[")
END = ord("]")
ESCAPE = ord("}")
UNESCAPE = {0x01: ord("}"), 0x02: ord("["), 0x03: ord("]"), 0x04: ord(","), 0x05: ord("*")}

MAX_ID = 20
MAX_HEADER = 64

# header after "[VV*": id * [index *] length * type-initial
_HEADER = re.compile(rb"([0-9A-Za-z]{1,20})\*(?:([0-9A-Za-z]{1,8})\*)?([0-9A-Fa-f]{4})\*([A-Za-z])")
_ALNUM = re.compile(rb"[0-9A-Za-z]*")

HEALTH = {"pulse", "heart", "blood", "bphrt", "temp", "btemp2", "oxygen"}
ECHOED = ("TKQ", "TKQ2")

STATUS_ALARMS: tuple[tuple[int, str], ...] = (
    (0, A.LOW_BATTERY),
    (1, A.GEOFENCE_EXIT),
    (2, A.GEOFENCE_ENTER),
    (14, A.POWER_CUT),
    (16, A.SOS),
    (17, A.LOW_BATTERY),
    (18, A.GEOFENCE_EXIT),
    (19, A.GEOFENCE_ENTER),
    (20, A.REMOVING),
    (21, A.FALL_DOWN),
    (22, A.FALL_DOWN),
)
MOTION_BIT = 4


def _alnum(data: bytes) -> bool:
    return _ALNUM.fullmatch(data) is not None


def _detect(head: bytes) -> Detection:
    if not head:
        return Detection.MORE
    if head[0] != START:
        return Detection.NO
    vendor = head[1:3]
    if not _alnum(vendor):
        return Detection.NO
    if len(head) < 4:
        return Detection.MORE
    if head[3] != ord("*"):
        return Detection.NO
    rest = head[4 : 4 + MAX_HEADER]
    if _HEADER.match(rest):
        return Detection.YES
    parts = rest.split(b"*")
    complete, last = parts[:-1], parts[-1]
    # id * [index *] length * : three complete parts only with the index field (the type follows)
    if len(complete) > 3 or len(head) >= 4 + MAX_HEADER:
        return Detection.NO
    if len(complete) == 3 and not re.fullmatch(rb"[0-9A-Fa-f]{4}", complete[2]):
        return Detection.NO
    if any(not part or len(part) > MAX_ID or not _alnum(part) for part in complete):
        return Detection.NO
    if len(last) > MAX_ID or not _alnum(last):
        return Detection.NO
    return Detection.MORE


class WatchFramer(Framer):
    """`[` ... `]` with nested brackets counted; CR/LF between frames ignored."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 1
        self._depth = 1

    def next_frame(self) -> bytes | None:
        buf = self._buf
        drop_leading(buf, b"\r\n")
        if not buf:
            return None
        if buf[0] != START:
            self._scan, self._depth = 1, 1
            raise garbage(buf, resync_cut(buf, b"["))
        depth, pos, end = self._depth, self._scan, len(buf)
        while pos < end:
            byte = buf[pos]
            pos += 1
            if byte == START:
                depth += 1
            elif byte == END:
                depth -= 1
                if depth == 0:
                    break
        if depth:
            self._scan, self._depth = pos, depth
            if len(buf) > self.max_frame:
                self._scan, self._depth = 1, 1
                raise no_end_marker(buf, self.max_frame)
            return None
        self._scan, self._depth = 1, 1
        frame = bytes(buf[:pos])
        del buf[:pos]
        if len(frame) > self.max_frame:
            raise FramingError(f"frame of {len(frame)} bytes", discarded=frame, fatal=True, reason="frame too large")
        return frame


def unescape(data: bytes) -> bytes:
    """`}0n` escapes resolved; an unknown escape is kept verbatim."""
    return framing.unescape(data, ESCAPE, UNESCAPE, keep_unknown=True)


def escape(data: bytes) -> bytes:
    """The device-side inverse of `unescape` (for payload bytes inside a frame)."""
    return framing.escape(data, ESCAPE, UNESCAPE)


class Header:
    __slots__ = ("content", "device_id", "index", "type", "vendor")

    def __init__(self, vendor: str, device_id: str, index: str | None, type_: str, content: bytes) -> None:
        self.vendor = vendor
        self.device_id = device_id
        self.index = index
        self.type = type_
        self.content = content


def parse(frame: bytes, unescaped: bool = False) -> Header:
    """Split one frame (with or without its trailing `]`)."""
    data = frame.rstrip(b"\r\n")
    if _detect(data[: 4 + MAX_HEADER]) is not Detection.YES:
        raise DecodeError("not a watch frame ([VV*id*LLLL*TYPE...])")
    if data.endswith(b"]"):
        data = data[:-1]
    if not unescaped:
        data = unescape(data)
    match = _HEADER.match(data, 4)
    if match is None:
        raise DecodeError("not a watch frame ([VV*id*LLLL*TYPE...])")
    body = data[match.start(4) :]
    comma = body.find(b",")
    type_raw, content = (body, b"") if comma < 0 else (body[:comma], body[comma + 1 :])
    index = match.group(2)
    return Header(
        data[1:3].decode("ascii"),
        match.group(1).decode("ascii"),
        index.decode("ascii") if index else None,
        type_raw.decode("latin-1"),
        content,
    )


def build(vendor: str, device_id: str, content: bytes, index: str | None = None) -> bytes:
    """One frame as Traccar (and the devices) write it: `[VV*id*[index*]llll*content]`."""
    parts = [vendor.encode(), device_id.encode()]
    if index is not None:
        parts.append(index.encode())
    parts.append(b"%04x" % len(content))
    return b"[" + b"*".join(parts) + b"*" + content + b"]"


def _kind(type_: str) -> str:
    upper = type_.upper()
    if upper == "LK":
        return "heartbeat"
    if upper == "INIT":
        return "login"
    if upper == "UD2":
        return "batch"
    if upper.startswith("UD") or upper == "WT":
        return "position"
    if upper.startswith("AL"):
        return "alarm"
    if type_.lower() in HEALTH:
        return "status"
    return "other"


def reply_content(type_: str) -> bytes | None:
    if type_ == "LK":
        return b"LK"
    if type_.startswith("AL"):
        return b"AL"
    if type_ == "INIT":
        return b"INIT,1"
    if type_ in ECHOED:
        return type_.encode()
    if type_ == "JXTK":
        return b"JXTKR,1"
    return None


def status_alarm(status: int) -> str | None:
    for bit, alarm in STATUS_ALARMS:
        if status >> bit & 1:
            return alarm
    return None


def _int(text: str, base: int = 10) -> int:
    text = text.strip()
    if not text or not text.lstrip("-").isalnum():
        raise DecodeError(f"bad integer {text!r}")
    try:
        return int(text, base)
    except ValueError as exc:
        raise DecodeError(f"bad integer {text!r}") from exc


def _coordinate(value: str, hemisphere: str, limit: float) -> float:
    number = finite_float(value.strip())
    if hemisphere in ("S", "W"):
        number = -abs(number)
    elif hemisphere not in ("", "N", "E"):
        raise DecodeError(f"bad hemisphere {hemisphere!r}")
    if abs(number) > limit:
        raise DecodeError(f"coordinate out of range: {value}")
    return number


_HEX_LETTER = re.compile(r"[A-Fa-f]")
_SIX_DIGITS = re.compile(r"[0-9]{6}")


def _network(values: list[str]) -> dict | None:
    """Cells and Wi-Fi access points after the status field (None when unreadable)."""
    cells: list[dict] = []
    wifi: list[dict] = []
    try:
        i = 0
        count = int(values[i])
        i += 1
        if count > 0:
            i += 1  # timing advance
            mcc = int(values[i]) if values[i] else 0
            i += 1
            mnc = int(values[i]) if values[i] else 0
            i += 1
            for _ in range(count):
                lac_text, cid_text, rssi = values[i], values[i + 1], values[i + 2]
                i += 3
                lac = int(lac_text, 16 if _HEX_LETTER.search(lac_text) else 10)
                cid = int(cid_text, 16 if _HEX_LETTER.search(cid_text) else 10)
                cell = {"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid}
                if rssi:
                    cell["rssi"] = int(rssi)
                cells.append(cell)
        if i < len(values) and values[i]:
            count = int(values[i])
            i += 1
            for _ in range(count):
                mac, rssi = values[i + 1], values[i + 2]
                i += 3
                if mac and mac != "0" and rssi:
                    wifi.append({"macAddress": mac, "signalStrength": int(rssi)})
    except (ValueError, IndexError):
        return None
    out: dict = {}
    if cells:
        out["cellTowers"] = cells
    if wifi:
        out["wifiAccessPoints"] = wifi
    return out or None


POSITION_FIELDS = 16


def decode_position(content: str) -> Record:
    values = content.split(",")
    if len(values) < POSITION_FIELDS:
        raise DecodeError(f"position content has {len(values)} fields, needs {POSITION_FIELDS}")
    date, time, validity = values[0], values[1], values[2]
    if not (_SIX_DIGITS.fullmatch(date) and _SIX_DIGITS.fullmatch(time)) or validity not in ("A", "V"):
        raise DecodeError("bad date/time/validity in position")
    record = Record(fix_time=ddmmyy_hhmmss(date, time), valid=validity == "A")
    if record.fix_time is None:
        raise DecodeError(f"not a real instant: {date} {time}")
    record.latitude = _coordinate(values[3], values[4], 90)
    record.longitude = _coordinate(values[5], values[6], 180)
    record.speed = finite_float(values[7])
    record.course = finite_float(values[8])
    record.altitude = finite_float(values[9])
    record.satellites = _int(values[10])
    record.attributes["rssi"] = str(_int(values[11]))
    record.battery_level = _int(values[12])
    record.attributes["steps"] = str(_int(values[13]))
    status = _int(values[15], 16)
    alarm = status_alarm(status)
    if alarm:
        record.alarms.append(alarm)
    if status >> MOTION_BIT & 1:
        record.attributes["motion"] = "true"
    record.attributes["status"] = values[15]
    extra = values[POSITION_FIELDS:]
    if extra:
        network = _network(extra)
        if network:
            record.attributes["network"] = json.dumps(network, separators=(",", ":"))
    return record


def _health(type_: str, content: str, when: datetime | None) -> Record | None:
    values = content.split(",")
    while values and not values[-1]:
        values.pop()
    if not values:
        return None
    record = Record(fix_time=when)
    kind = type_.lower()
    if kind == "temp":
        record.attributes["temp1"] = str(finite_float(values[0]))
    elif kind == "btemp2":
        if _int(values[0]) > 0 and len(values) > 1:
            record.attributes["temp1"] = str(finite_float(values[1]))
    elif kind == "oxygen":
        if len(values) < 2:
            raise DecodeError("oxygen without a value")
        record.attributes["bloodOxygen"] = str(_int(values[1]))
    else:
        i = 0
        if kind in ("bphrt", "blood"):
            if len(values) < 2:
                raise DecodeError("blood pressure without two values")
            record.attributes["pressureHigh"] = values[0]
            record.attributes["pressureLow"] = values[1]
            i = 2
        if i < len(values):
            record.attributes["heartRate"] = str(_int(values[i]))
    return record


class WatchCodec(Codec):
    name = "watch"
    first_bytes = b"["
    priority = 30
    replies = True
    transports = frozenset({"tcp"})
    max_frame = 32 * 1024  # Traccar's large-frame limit (audio and image chunks)

    def detect(self, head: bytes, transport: str) -> Detection:
        return _detect(head)

    def new_framer(self) -> Framer:
        return WatchFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        header = parse(frame)
        content = reply_content(header.type)
        reply = build(header.vendor, header.device_id, content, header.index) if content is not None else None
        return FrameInfo(_kind(header.type), header.device_id, reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        header = parse(frame)
        type_ = header.type
        kind = _kind(type_)
        decoded = Decoded(kind, header.device_id, [])
        upper = type_.upper()
        if type_ == "LK":
            values = header.content.decode("latin-1").split(",") if header.content else []
            if len(values) >= 3:
                record = Record(fix_time=ctx.received_at)
                record.battery_level = _int(values[2])
                record.attributes["steps"] = str(_int(values[0]))
                decoded.records.append(record)
        elif upper.startswith("UD") or upper.startswith("AL") or upper.startswith("WT"):
            record = decode_position(header.content.decode("latin-1"))
            record.archive = upper == "UD2"
            if upper.startswith("AL") and not record.alarms:
                record.alarms.append(A.GENERAL)
            decoded.records.append(record)
        elif type_.lower() in HEALTH:
            record = _health(type_, header.content.decode("latin-1"), ctx.received_at)
            if record is not None:
                decoded.records.append(record)
        return decoded


CODEC = WatchCodec()
