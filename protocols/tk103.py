"""TK103 family ("(...BP05...)" units of many OEMs; Traccar `tk103`, port 5002).

ASCII frames ``(`` ... ``)``; a ``)`` inside ``$``-quoted free text does not end a frame.
Two shapes share the port::

    ( id(12) CMD(4) data  YYMMDD A|V ddmm.mmmmN|S dddmm.mmmmE|W speed(5) hhmmss course(6)
      charge ign io io io fuel(3 hex) L odometer(hex metres) [+ddd.d temperature] )
    ( id , CMD , DDMMYY , A|V , ddmm.mmmmN , dddmm.mmmmE , speed , hhmmss , course
      [, altitude , satellites] )

    (087073005534BP00HSO)                    handshake        -> (087073005534AP01HSO)
    (088046338039BP05000088046338039160727A3354.7768N03540.7258E000.0140309065.10...)  login -> (088046338039AP05)

The id is 12 characters (11 digits on some units); commands are two capitals + two
digits/capitals: ``BP00`` handshake, ``BP05`` login (with a position), ``BR00`` periodic,
``BO01``+digit alarm (1 accident, 2 SOS, 3 vibration, 4 low speed, 5 overspeed, 6
geofence exit), ``BQ81,ALARM,<n>,`` driving events (0 low battery, 1 overspeed, 2 idle,
3 acceleration, 4 braking, 5 temperature), ``ZC``/``DW`` codes (movement, low battery,
power cut, ACC on/off, removing, SOS, tampering, low power).  Status-only messages:
``ZC20`` battery (``id,ZC20,ddmmyy,hhmmss,level 2..6,battery cV,power dV,installed``),
``BZ00`` serving cell (``mcc,mnc,lac hex,cid hex``) or ``{mcc,mnc,lac,cid}`` cell lists,
``DW5x`` cells + Wi-Fi (``mac*rssi*channel``), ``ZC03`` command answer (``$text$``),
``BV00`` VIN, ``BS50``/``BS51`` battery management (hex).

Units: speed km/h, coordinates ``ddmm.mmmm``, times UTC, odometer hex metres.  In the
comma shape the two fields after the course are read as altitude (m) and satellites
(inferred from captures; Traccar ignores them).
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
    FramingError,
    Record,
)
from .kit import alarms, keys
from .kit.framing import drain, drop_leading, garbage, no_end_marker
from .kit.readers import checked_coordinates, ddmm, ddmmyy_hhmmss, integer, yymmdd_hhmmss

OPEN, CLOSE, QUOTE = ord("("), ord(")"), ord("$")
LINE_BREAKS = b"\r\n"
DECODE_LOW_OPTION = "decodeLow"  # Traccar's tk103.decodeLow: report the cleared status bits too
ID_LEN = 12
SHORT_ID_LEN = 11
COMMAND_LEN = 4
MIN_COMMA_ID = 11  # "(" + 10 digits + "," is JT600 text: never ours
MAX_COMMA_ID = 20

HANDSHAKE = "BP00"
STATUS_COMMANDS = frozenset({"ZC20", "BZ00", "ZC03", "BV00", "BS50", "BS51"})
LOGIN = "BP05"

_COMMAND = re.compile(r"[A-Z]{2}[0-9A-Z]{2}")
_CELL = re.compile(r"\{(\d+),(\d+),(\d+),(\d+)\}")

# The position block after the command, both shapes (the comma shape has every comma).
_BLOCK = re.compile(
    r"""
    (?: ,ALARM,(?P<event>\d),\d+, | (?P<data>\d*) )
    (?P<date>\d{6}) ,? (?P<valid>[AV]) ,?
    \ *(?P<lat>\d*\d\d\.\d+)(?P<ns>[NS]) ,?
    \ *(?P<lon>\d*\d\d\.\d+)(?P<ew>[EW]) ,?
    (?P<speed>[\ \d.]{1,5}) (?:\d*,)?
    (?P<time>\d{6}) ,?
    (?:
        (?P<course>[\ \d.]{6}|\d\d) ,?
        (?P<charge>[01])(?P<ign>[01])(?P<io1>[0-9A-Fa-f])(?P<io2>[0-9A-Fa-f])(?P<io3>[0-9A-Fa-f])
        (?P<fuel>[0-9A-Fa-f]{3}) L(?P<odometer>[0-9A-Fa-f]+)
      | (?P<course2>\d+\.\d+)
    )
    (?P<rest>.*)
    """,
    re.VERBOSE | re.DOTALL,
)
_TEMPERATURE = re.compile(r"([+-]\d{3}\.\d)$")
_COMMA_TAIL = re.compile(r",(-?\d+(?:\.\d+)?),(\d+)$")
_STATUS_TAIL = re.compile(r",([01])([01])([0-9A-Fa-f])([0-9A-Fa-f])([0-9A-Fa-f])([0-9A-Fa-f]{3}),L([0-9A-Fa-f]+)")

BO01_ALARMS = {
    1: alarms.ACCIDENT,
    2: alarms.SOS,
    3: alarms.VIBRATION,
    4: alarms.LOW_SPEED,
    5: alarms.OVERSPEED,
    6: alarms.GEOFENCE_EXIT,
}
BQ81_ALARMS = {
    0: alarms.LOW_BATTERY,
    1: alarms.OVERSPEED,
    2: alarms.IDLE,
    3: alarms.ACCELERATION,
    4: alarms.BRAKING,
    5: alarms.TEMPERATURE,
}
# ZC (GSM units) and DW3x/DW5x (their Wi-Fi cousins) event codes.
CODE_ALARMS: dict[str, str] = {}
CODE_IGNITION: dict[str, bool] = {}
for _zc, _dw3, _dw5, _effect in (
    ("ZC11", "DW31", "DW51", alarms.MOVEMENT),
    ("ZC12", "DW32", "DW52", alarms.LOW_BATTERY),
    ("ZC13", "DW33", "DW53", alarms.POWER_CUT),
    ("ZC17", "DW37", "DW57", alarms.REMOVING),
    ("ZC25", "DW3E", "DW5E", alarms.SOS),
    ("ZC26", "DW3F", "DW5F", alarms.TAMPERING),
    ("ZC27", "DW40", "DW60", alarms.LOW_POWER),
):
    CODE_ALARMS.update(dict.fromkeys((_zc, _dw3, _dw5), _effect))
for _codes, _on in ((("ZC15", "DW35", "DW55", "ZC29", "DW42", "DW62"), True), (("ZC16", "DW36", "DW56"), False)):
    CODE_IGNITION.update(dict.fromkeys(_codes, _on))
BATTERY_LEVELS = {6: 100.0, 5: 80.0, 4: 50.0, 3: 20.0, 2: 10.0}
NO_VALUE_16 = 65535
NO_LEVEL = 255


def _printable_id(raw: bytes) -> bool:
    return all(0x21 <= b <= 0x7E and b not in b",()$" for b in raw)


def _is_command(raw: bytes) -> bool:
    return len(raw) == COMMAND_LEN and _COMMAND.fullmatch(raw.decode("latin-1")) is not None


def _command_prefix(raw: bytes) -> bool:
    """`raw` (at most 4 bytes) can start a command."""
    for i, b in enumerate(raw):
        ok = 0x41 <= b <= 0x5A if i < 2 else (0x41 <= b <= 0x5A or 0x30 <= b <= 0x39)
        if not ok:
            return False
    return True


def _detect_fixed(head: bytes, id_len: int) -> Detection:
    """`(` + id_len id chars + command."""
    body = head[1 : 1 + id_len]
    if not _printable_id(body):
        return Detection.NO
    if id_len == SHORT_ID_LEN and not body.isdigit():
        return Detection.NO
    command = head[1 + id_len : 1 + id_len + COMMAND_LEN]
    if not _command_prefix(command):
        return Detection.NO
    return Detection.YES if len(command) == COMMAND_LEN else Detection.MORE


def _detect_comma(head: bytes) -> Detection:
    """`(` + 11..20 id chars (not JT600's 10 digits) + `,` + command + `,`."""
    comma = head.find(b",", 1)
    if comma < 0:
        return Detection.MORE if len(head) <= 1 + MAX_COMMA_ID and _printable_id(head[1:]) else Detection.NO
    ident = head[1:comma]
    if not (MIN_COMMA_ID <= len(ident) <= MAX_COMMA_ID and _printable_id(ident)):
        return Detection.NO
    command = head[comma + 1 : comma + 1 + COMMAND_LEN]
    if not _command_prefix(command):
        return Detection.NO
    after = head[comma + 1 + COMMAND_LEN : comma + 2 + COMMAND_LEN]
    if len(command) < COMMAND_LEN or not after:
        return Detection.MORE
    return Detection.YES if after in b",)" else Detection.NO


def signature(head: bytes) -> Detection:
    if not head:
        return Detection.MORE
    if head[0] != OPEN:
        return Detection.NO
    verdicts = (_detect_fixed(head, ID_LEN), _detect_fixed(head, SHORT_ID_LEN), _detect_comma(head))
    if Detection.YES in verdicts:
        return Detection.YES
    return Detection.MORE if Detection.MORE in verdicts else Detection.NO


class _Head:
    """Id, command and what follows the command in one frame's text."""

    __slots__ = ("comma", "command", "ident", "rest", "text")

    def __init__(self, frame: bytes) -> None:
        text = frame.decode("latin-1").strip("\r\n")
        if text.startswith("("):
            text = text[1:]
        if text.endswith(")"):
            text = text[:-1]
        self.text = text
        raw = text.encode("latin-1")
        for id_len in (ID_LEN, SHORT_ID_LEN):
            if (
                _printable_id(raw[:id_len])
                and len(raw) >= id_len + COMMAND_LEN
                and _is_command(raw[id_len : id_len + COMMAND_LEN])
                and (id_len == ID_LEN or raw[:id_len].isdigit())
            ):
                self.ident, self.command = text[:id_len], text[id_len : id_len + COMMAND_LEN]
                self.rest, self.comma = text[id_len + COMMAND_LEN :], False
                return
        ident, sep, after = text.partition(",")
        command = after[:COMMAND_LEN]
        if sep and ident and _printable_id(ident.encode("latin-1")) and _is_command(command.encode("latin-1")):
            self.ident, self.command, self.comma = ident, command, True
            self.rest = after[COMMAND_LEN:]
            return
        raise DecodeError("not a TK103 frame ((id CMD ...))")


def _kind(command: str) -> str:
    if command == HANDSHAKE:
        return "heartbeat"
    if command == LOGIN:
        return "login"
    if command in ("BO01", "BQ81") or command in CODE_ALARMS:
        return "alarm"
    if command in STATUS_COMMANDS or command.startswith("DW5"):
        return "status"
    return "position"


class Tk103Framer(Framer):
    """`(` ... `)`, a `)` inside `$`...`$` free text skipped; CR/LF between frames dropped
    silently, other bytes before `(` reported as garbage."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 1
        self._quoted = False

    def next_frame(self) -> bytes | None:
        buf = self._buf
        if drop_leading(buf, LINE_BREAKS):
            self._scan, self._quoted = 1, False
        if not buf:
            return None
        if buf[0] != OPEN:
            start = buf.find(b"(")
            self._scan, self._quoted = 1, False
            raise garbage(buf, start if start >= 0 else len(buf))
        i, quoted = self._scan, self._quoted
        end = len(buf)
        while i < end:
            b = buf[i]
            if b == QUOTE:
                quoted = not quoted
            elif b == CLOSE and not quoted:
                frame = bytes(buf[: i + 1])
                del buf[: i + 1]
                self._scan, self._quoted = 1, False
                if len(frame) > self.max_frame:
                    raise FramingError(
                        f"frame of {len(frame)} bytes", discarded=frame, fatal=True, reason="frame too large"
                    )
                return frame
            i += 1
        self._scan, self._quoted = i, quoted
        if len(buf) > self.max_frame:
            self._scan, self._quoted = 1, False
            raise no_end_marker(buf, self.max_frame)
        return None


class Tk103Codec(Codec):
    name = "tk103"
    first_bytes = b"("
    priority = 30
    replies = True
    transports = frozenset({"tcp", "udp"})
    max_frame = 1024  # Traccar's frame decoder resyncs past 1024 bytes without a `)`

    def detect(self, head: bytes, transport: str) -> Detection:
        return signature(head)

    def new_framer(self) -> Framer:
        return Tk103Framer(self.max_frame)

    def split_datagram(self, datagram: bytes) -> list[bytes]:
        """`(...)` frames; a lone frame may lack its `)` (Traccar reads a datagram whole)."""
        framer = self.new_framer()
        frames = drain(framer, datagram.strip(b"\r\n"), datagram)
        rest = framer.take_rest()
        if rest:
            frames.append(rest)
        return frames

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        head = _Head(frame)
        reply = None
        if head.command == HANDSHAKE:
            reply = f"({head.ident}AP01HSO)".encode("latin-1")
        elif head.command == LOGIN:
            reply = f"({head.ident}AP05)".encode("latin-1")
        return FrameInfo(_kind(head.command), head.ident, reply)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"frame of {len(frame)} bytes (max {self.max_frame})")
        head = _Head(frame)
        kind = _kind(head.command)
        if head.command == HANDSHAKE:
            return Decoded(kind, head.ident, [])
        record = _decode_special(head)
        if record is None:
            record = _decode_block(head, ctx.options.get(DECODE_LOW_OPTION, "false").lower() == "true")
        if record is None:
            return Decoded("other", head.ident, [])
        if kind == "position" and not record.has_position:
            kind = "status"
        return Decoded(kind, head.ident, [record])


# ------------------------------------------------------------------ position block


def _apply_event(record: Record, command: str, data: str | None) -> None:
    alarm: str | None = None
    if command == "BQ81" and data and data.isdigit():
        alarm = BQ81_ALARMS.get(int(data))
    elif command == "BO01" and data:
        alarm = BO01_ALARMS.get(ord(data[0]) - 0x30)
    elif command in CODE_ALARMS:
        alarm = CODE_ALARMS[command]
    elif command in CODE_IGNITION:
        record.ignition = CODE_IGNITION[command]
    if alarm:
        record.alarms.append(alarm)


def _decode_block(head: _Head, low: bool = False) -> Record | None:
    rest = head.rest[1:] if head.rest.startswith(",") and not head.rest.startswith(",ALARM,") else head.rest
    match = _BLOCK.match(rest)
    if match is None:
        return None
    g = match.groupdict()
    record = Record()
    attrs = record.attributes
    _apply_event(record, head.command, g["event"] if g["event"] is not None else g["data"])
    read_date = ddmmyy_hhmmss if head.comma else yymmdd_hhmmss
    record.fix_time = read_date(g["date"], g["time"])
    record.valid = g["valid"] == "A"
    latitude = ddmm(g["lat"], g["ns"])
    longitude = ddmm(g["lon"], g["ew"])
    if record.fix_time is not None or record.valid:
        record.latitude, record.longitude = checked_coordinates(latitude, longitude)
    # else: a unit without a fix yet (all-zero date, `V`): a status record, not a position at 0,0
    speed = g["speed"].strip()
    try:
        record.speed = float(speed) if speed else 0.0
        course = (g["course"] or g["course2"] or "").strip()
        record.course = float(course) if course else 0.0
    except ValueError as exc:
        raise DecodeError(f"bad speed/course in {head.text!r}") from exc
    tail = g["rest"]
    status = None
    if g["charge"] is not None:
        status = (g["charge"], g["ign"], g["io1"], g["io2"], g["io3"], g["fuel"], g["odometer"])
    elif (found := _STATUS_TAIL.match(tail)) is not None:
        status = found.groups()
    elif head.comma and (found := _COMMA_TAIL.search(tail)) is not None:
        record.altitude = float(found.group(1))
        record.satellites = int(found.group(2))
    if status is not None:
        charge, ignition, io1, io2, io3, fuel, odometer = status
        attrs[keys.CHARGE] = "true" if charge == "0" else "false"
        record.ignition = ignition == "1"
        mask1, mask2, mask3 = int(io1, 16), int(io2, 16), int(io3, 16)
        attrs["in2"] = str(mask1 & 1)
        attrs["panic"] = str(mask1 >> 1 & 1)
        attrs["out2"] = str(mask1 >> 2 & 1)
        flags: list[tuple[str, bool]] = [(keys.BLOCKED, bool(mask1 & 8))]
        flags += [(f"hs{3 - bit}", bool(mask2 >> bit & 1)) for bit in range(3)]
        flags.append((keys.DOOR, bool(mask2 & 8)))
        flags += [(f"ls{4 - bit}", bool(mask3 >> bit & 1)) for bit in range(1, 4)]
        for key, value in flags:
            if value or low:
                attrs[key] = "1" if value else "0"
        attrs[keys.FUEL] = str(int(fuel, 16))
        record.odometer = float(int(odometer, 16))
    temperature = _TEMPERATURE.search(tail)
    if temperature is not None:
        attrs["temp1"] = str(float(temperature.group(1)))
    return record


# ------------------------------------------------------------------ status messages


def _fields(head: _Head) -> list[str]:
    return head.rest.removeprefix(",").split(",")


def _decode_special(head: _Head) -> Record | None:
    text, command = head.text, head.command
    if "{" in text and "}" in text:
        return _cells(head)
    if command == "ZC20":
        return _battery(head)
    if command == "BZ00":
        return _network(head)
    if command == "ZC03":
        return _command_result(head)
    if command.startswith("DW5") and not _BLOCK.match(head.rest.removeprefix(",")):
        return _lbs_wifi(head)
    if command == "BV00":
        record = Record()
        record.attributes[keys.VIN] = head.rest.removeprefix(",")[:17]
        return record
    if command in ("BS50", "BS51"):
        return _bms(head)
    return None


def _cells(head: _Head) -> Record:
    record = Record()
    cells = _CELL.findall(head.rest)
    for n, (mcc, mnc, lac, cid) in enumerate(cells, 1):
        suffix = "" if n == 1 else str(n)
        record.attributes[keys.MCC + suffix] = mcc
        record.attributes[keys.MNC + suffix] = mnc
        record.attributes[keys.LAC + suffix] = lac
        record.attributes[keys.CELL_ID + suffix] = cid
    tail = head.rest.rsplit(",", 1)[-1]
    if len(tail) == 8 and all(c in "0123456789abcdefABCDEF" for c in tail):
        record.odometer = float(int(tail, 16))
    return record


def _battery(head: _Head) -> Record:
    f = _fields(head)
    if len(f) < 5 or not all(v.isdigit() for v in f[:5]):
        raise DecodeError("malformed TK103 ZC20 battery report")
    record = Record(fix_time=ddmmyy_hhmmss(f[0], f[1]))
    level, battery = integer(f[2]), integer(f[3])
    if level != NO_LEVEL and level in BATTERY_LEVELS:
        record.battery_level = BATTERY_LEVELS[level]
    if battery != NO_VALUE_16:
        record.battery = battery / 100
    if len(f) > 4 and f[4].isascii() and f[4].isdigit() and int(f[4]) != NO_VALUE_16:
        record.power = int(f[4]) / 10
    return record


def _network(head: _Head) -> Record:
    f = _fields(head)
    record = Record()
    try:
        record.attributes[keys.MCC] = str(int(f[0]))
        record.attributes[keys.MNC] = str(int(f[1]))
        record.attributes[keys.LAC] = str(int(f[2], 16))
        record.attributes[keys.CELL_ID] = str(int(f[3], 16))
    except (ValueError, IndexError) as exc:
        raise DecodeError("malformed TK103 BZ00 cell report") from exc
    return record


def _command_result(head: _Head) -> Record:
    f = head.rest.removeprefix(",").split(",", 2)
    if len(f) < 3:
        raise DecodeError("malformed TK103 ZC03 answer")
    record = Record(fix_time=ddmmyy_hhmmss(f[0], f[1]))
    message = f[2]
    if message.startswith("$"):
        message = message[1:]
        end = message.find("$")
        if end >= 0:
            message = message[:end]
    record.attributes[keys.RESULT] = message
    return record


def _lbs_wifi(head: _Head) -> Record:
    f = _fields(head)
    if len(f) < 7 or not all(v.isdigit() for v in f[:5]):
        raise DecodeError("malformed TK103 DW5x cell/Wi-Fi report")
    record = Record()
    _apply_event(record, head.command, "0")
    attrs = record.attributes
    attrs[keys.MCC], attrs[keys.MNC], attrs[keys.LAC], attrs[keys.CELL_ID] = (str(integer(v)) for v in f[:4])
    count = integer(f[4])
    macs = f[5 : 5 + count]
    if len(macs) == count and all(m.count("*") == 2 for m in macs):
        for n, mac in enumerate(macs, 1):
            attrs[f"wifi{n}"] = mac
    record.fix_time = ddmmyy_hhmmss(f[-2], f[-1])
    return record


def _bms(head: _Head) -> Record:
    record = Record()
    payload = head.rest
    attrs = record.attributes
    if head.command == "BS50":
        try:
            data = bytes.fromhex(payload)
        except ValueError as exc:
            raise DecodeError("BS50 payload is not hex") from exc
        if len(data) < 88:  # header 3, count, 24 cells, 20 status, 10 temperatures, 6 capacity
            raise DecodeError("short BS50 payload")
        count = data[3]
        pos = 4
        for i in range(1, 25):
            volts = int.from_bytes(data[pos : pos + 2], "little") / 1000
            pos += 2
            if i <= count:
                attrs[f"battery{i}"] = str(volts)
        attrs[keys.CHARGE] = "true" if data[pos] == 0 else "false"
        attrs["current"] = str(int.from_bytes(data[pos + 1 : pos + 3], "little") / 10)
        record.battery = int.from_bytes(data[pos + 3 : pos + 5], "little") / 100
        record.battery_level = float(data[pos + 5])
        attrs["batteryOverheat"] = str(data[pos + 6] > 0).lower()
        attrs["chargeProtection"] = str(data[pos + 7] > 0).lower()
        attrs["dischargeProtection"] = str(data[pos + 8] > 0).lower()
        attrs["cycles"] = str(int.from_bytes(data[pos + 11 : pos + 13], "little"))
        attrs["faultAlarm"] = str(data[pos + 13])
        pos += 14 + 6
        temps = data[pos]
        attrs["powerTemp"] = str(data[pos + 1] - 40)
        attrs["equilibriumTemp"] = str(data[pos + 2] - 40)
        for i in range(1, 8):
            if i <= temps:
                attrs[f"batteryTemp{i}"] = str(data[pos + 2 + i] - 40)
        pos += 10
        attrs["calibrationCapacity"] = str(int.from_bytes(data[pos : pos + 2], "little") / 100)
        attrs["dischargeCapacity"] = str(int.from_bytes(data[pos + 2 : pos + 6], "little"))
        return record
    for item in payload.split(","):
        key, _, value = item.partition(":")
        try:
            code, data = int(key, 16), bytes.fromhex(value)
        except ValueError:
            continue
        if code == 0x90 and len(data) >= 8:
            attrs["cumulativeVoltage"] = str(int.from_bytes(data[0:2], "little") / 10)
            attrs["gatherVoltage"] = str(int.from_bytes(data[2:4], "little") / 10)
            attrs["current"] = str((int.from_bytes(data[4:6], "little") - 30000) / 10)
            attrs["soc"] = str(int.from_bytes(data[6:8], "little") / 10)
        elif code == 0x91 and len(data) >= 6:
            attrs["maxCellVoltage"] = str(int.from_bytes(data[0:2], "little") / 1000)
            attrs["maxCellVoltageCount"] = str(data[2])
            attrs["minCellVoltage"] = str(int.from_bytes(data[3:5], "little") / 1000)
            attrs["minCellVoltageCount"] = str(data[5])
        elif code == 0x92 and len(data) >= 4:
            attrs["maxTemp"] = str(data[0] - 40)
            attrs["maxTempCount"] = str(data[1])
            attrs["minTemp"] = str(data[2] - 40)
            attrs["minTempCount"] = str(data[3])
        elif code == 0x96 and data:
            for i in range(1, len(data)):
                attrs[f"cellTemp{i}"] = str(data[i] - 40)
    return record


CODEC = Tk103Codec()
