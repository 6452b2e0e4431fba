"""OsmAnd / Traccar Client (phone apps and many DIY units; Traccar `osmand`).

HTTP/1.1 requests, usually several on one keep-alive connection::

    GET /?id=123456&lat=52.1&lon=21.0&timestamp=1377177267&speed=12.5&bearing=90 HTTP/1.1\\r\\n
    Host: ...\\r\\n
    \\r\\n

    POST /?id=123456&lat=...  HTTP/1.1          (same parameters in the query)
    POST / HTTP/1.1 + Content-Type: application/x-www-form-urlencoded + `id=...&lat=...` body
    POST / HTTP/1.1 + Content-Type: application/json +
        {"location": {"timestamp": "2025-06-15T13:45:12.862Z",
                      "coords": {"latitude", "longitude", "speed" (m/s), "heading", "accuracy", "altitude"},
                      "is_moving", "odometer", "event", "battery": {"level" 0..1, "is_charging"},
                      "activity": {"type"}, "mock", "alarm", "extras": {...}},
         "device_id": "48241179"}                 (Traccar Client 9+)

Query / form parameters (as the Traccar decoder reads them): ``id`` or ``deviceid`` (the
device), ``timestamp`` (Unix seconds, milliseconds, ISO-8601 or ``yyyy-MM-dd HH:mm:ss``
UTC), ``lat``/``lon`` or ``location=lat,lon``, ``valid``, ``speed`` (**knots**),
``bearing``/``heading``, ``altitude`` (m), ``accuracy`` (m), ``hdop``, ``batt`` (%),
``charge``, ``driverUniqueId``, ``cell=mcc,mnc,lac,cid[,rssi]`` and ``wifi=mac,rssi``
(repeatable), ``alarm`` (an alarm name such as ``sos``); anything else is kept under its
own name (numbers, ``true``/``false`` or text).

The framer cuts whole requests: headers up to the blank line, then ``Content-Length``
bytes of body (chunked bodies are refused).  Every request is answered
``HTTP/1.1 200 OK`` with an empty body, or ``400 Bad Request`` when it names no device.
Only requests that carry OsmAnd's parameters are detected (other HTTP trackers such as
OpenGTS, OwnTracks or webhooks post different keys).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

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
from .kit import alarms as alarm_names
from .kit import keys
from .kit.framing import garbage, no_end_marker
from .kit.readers import KNOTS, unix

METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ")
HEADER_END = b"\r\n\r\n"
MAX_HEADERS = 8192
MAX_BODY = 65536  # Traccar's HttpObjectAggregator limit
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
MPS_KMH = 3.6
SECONDS_LIMIT = 2**31 - 1  # larger Unix times are milliseconds

ID_KEYS = ("id", "deviceid")
#: parameters naming a normalized Record field (Traccar keys in the default branch)
FIELD_PARAMS = {"sat": "satellites", "battery": "battery", "power": "power", "odometer": "odometer"}
FOREIGN_KEYS = ("gprmc",)  # OpenGTS shares `id=`
_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*(\d{1,9})[ \t]*\r?$")
_CHUNKED = re.compile(rb"(?im)^transfer-encoding[ \t]*:.*chunked")
_ALARMS = {a.lower(): a for a in alarm_names.ALL}


class _Request:
    __slots__ = ("body", "headers", "method", "target")

    def __init__(self, frame: bytes) -> None:
        head, sep, body = frame.partition(HEADER_END)
        if not sep:
            head, body = frame.rstrip(b"\r\n"), b""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) < 2 or parts[0] + b" " not in METHODS:
            raise DecodeError("not an HTTP request")
        self.method = parts[0].decode("ascii")
        self.target = parts[1].decode("latin-1")
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if colon:
                self.headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length = self.headers.get("content-length")
        if length is not None and length.isdecimal():
            body = body[: int(length)]
        self.body = body

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").lower().startswith("application/json")

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, or the form body's when the query has none (as Traccar)."""
        query = urlsplit(self.target).query if "?" in self.target else ""
        pairs = parse_qsl(query, keep_blank_values=True)
        if not pairs and self.body:
            pairs = parse_qsl(self.body.decode("ascii", errors="replace"), keep_blank_values=True)
        return pairs

    def json(self) -> dict:
        try:
            root = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise DecodeError(f"bad JSON body: {exc}") from exc
        if not isinstance(root, dict):
            raise DecodeError("JSON body is not an object")
        return root


def _request_size(buf: bytes | bytearray, scan: int = 0) -> tuple[int | None, int]:
    """(whole request size or None if incomplete, where the header search may resume)."""
    end = buf.find(HEADER_END, scan)
    if end < 0:
        return None, max(0, len(buf) - 3)
    head = bytes(buf[: end + 2])
    if _CHUNKED.search(head):
        raise FramingError("chunked request bodies are not supported", reason="chunked")
    match = _LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    return end + 4 + length, end


def _is_osmand_json(root: dict) -> bool:
    return isinstance(root.get("location"), dict) and "device_id" in root


def _is_osmand_params(pairs: list[tuple[str, str]]) -> bool:
    names = {k for k, _ in pairs}
    if names & set(FOREIGN_KEYS):
        return False
    if {"lat", "lon"} <= names or "location" in names:
        return True
    return bool(names & set(ID_KEYS)) and bool(names & {"timestamp", "cell", "wifi"})


def _classify(request: _Request) -> bool:
    if request.is_json:
        try:
            return _is_osmand_json(request.json())
        except DecodeError:
            return False
    return _is_osmand_params(request.params())


class HttpFramer(Framer):
    """Whole HTTP requests: headers to the blank line, then Content-Length bytes."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self._scan = 0

    def next_frame(self) -> bytes | None:
        buf = self._buf
        while buf[:2] == b"\r\n":
            del buf[:2]
            self._scan = 0
        if not buf:
            return None
        if not any(buf.startswith(m) or m.startswith(bytes(buf)) for m in METHODS):
            self._scan = 0
            raise garbage(buf, min((j for m in METHODS if (j := buf.find(m, 1)) >= 0), default=len(buf)))
        if not any(buf.startswith(m) for m in METHODS):
            return None
        try:
            size, self._scan = _request_size(buf, self._scan)
        except FramingError as exc:
            junk = bytes(buf)
            buf.clear()
            self._scan = 0
            raise FramingError(exc.detail, discarded=junk, fatal=True, reason=exc.reason) from None
        if size is None:
            if len(buf) > MAX_HEADERS:
                self._scan = 0
                raise no_end_marker(buf, MAX_HEADERS)
            return None
        if size > self.max_frame:
            junk = bytes(buf)
            buf.clear()
            self._scan = 0
            raise FramingError(f"request of {size} bytes", discarded=junk, fatal=True, reason="frame too large")
        if len(buf) < size:
            return None
        frame = bytes(buf[:size])
        del buf[:size]
        self._scan = 0
        return frame


def _number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise DecodeError(f"{key}: not a number: {value!r}") from exc
    if not math.isfinite(number):
        raise DecodeError(f"{key}: not a finite number: {value!r}")
    return number


def _time(value: str) -> datetime:
    if value.lstrip("-").isdecimal():
        stamp = int(value)
        return unix(stamp if stamp < SECONDS_LIMIT else stamp / 1000)
    try:
        if "T" in value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return unix(_number("timestamp", value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text_value(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return str(number) if math.isfinite(number) else value


def _apply_param(record: Record, key: str, value: str, cells: list[str], wifis: list[str]) -> None:
    attrs = record.attributes
    if key == "valid":
        record.valid = value.lower() == "true" or value == "1"
    elif key == "timestamp":
        record.fix_time = _time(value)
    elif key == "lat":
        record.latitude = _number(key, value)
    elif key == "lon":
        record.longitude = _number(key, value)
    elif key == "location":
        lat, _, lon = value.partition(",")
        record.latitude, record.longitude = _number(key, lat), _number(key, lon)
    elif key == "cell":
        parts = value.split(",")
        if len(parts) < 4 or not all(p.lstrip("-").isdecimal() for p in parts[:5]):
            raise DecodeError(f"bad cell {value!r}")
        cells.append(",".join(parts[:5]))
    elif key == "wifi":
        mac, _, rssi = value.partition(",")
        wifis.append(f"{mac.replace('-', ':')},{rssi}")
    elif key == "speed":
        record.speed = _number(key, value) * KNOTS
    elif key in ("bearing", "heading"):
        record.course = _number(key, value)
    elif key == "altitude":
        record.altitude = _number(key, value)
    elif key == "accuracy":
        attrs["accuracy"] = str(_number(key, value))
    elif key == "hdop":
        attrs[keys.HDOP] = str(_number(key, value))
    elif key == "batt":
        record.battery_level = _number(key, value)
    elif key == "driverUniqueId":
        attrs[keys.DRIVER_UNIQUE_ID] = value
    elif key == "charge":
        attrs[keys.CHARGE] = "true" if value.lower() == "true" else "false"
    elif key == "alarm":
        record.alarms.append(_ALARMS.get(value.lower(), value))
    elif key == "ignition":
        record.ignition = value.lower() == "true" or value == "1"
    elif key == "archive":
        record.archive = value.lower() == "true" or value == "1"
    elif key in FIELD_PARAMS:
        setattr(record, FIELD_PARAMS[key], int(_number(key, value)) if key == "sat" else _number(key, value))
    elif key:
        lower = value.lower()
        attrs[key] = lower if lower in ("true", "false") else _text_value(value)


def _decode_params(request: _Request, ctx: Context) -> Decoded:
    record = Record(valid=True)
    device_id = None
    cells: list[str] = []
    wifis: list[str] = []
    for key, value in request.params():
        if key in ID_KEYS:
            device_id = value or None
        elif key != "notificationToken":
            _apply_param(record, key, value, cells, wifis)
    if cells:
        record.attributes["cellTowers"] = ";".join(cells)
    if wifis:
        record.attributes["wifiAccessPoints"] = ";".join(wifis)
    if (record.latitude is None) != (record.longitude is None):
        record.latitude = record.longitude = None
    if (
        record.latitude is not None
        and record.longitude is not None
        and not (-90 <= record.latitude <= 90 and -180 <= record.longitude <= 180)
    ):
        raise DecodeError("coordinates out of range")
    if device_id is None:
        return Decoded("other", None, [])
    if record.fix_time is None:
        record.fix_time = ctx.received_at
    if not record.has_position:
        record.valid = False
    kind = "alarm" if record.alarms else "position" if record.has_position else "status"
    return Decoded(kind, device_id, [record])


def _json_number(obj: dict, key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _decode_json(request: _Request) -> Decoded:
    root = request.json()
    if not _is_osmand_json(root):
        raise DecodeError("JSON body without location/device_id")
    device_id = str(root["device_id"])
    location = root["location"]
    record = Record()
    stamp = location.get("timestamp")
    if not isinstance(stamp, str):
        raise DecodeError("location without a timestamp")
    record.fix_time = _time(stamp)
    coords = location.get("coords")
    if isinstance(coords, dict):
        lat, lon = _json_number(coords, "latitude"), _json_number(coords, "longitude")
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError("coords without a usable latitude/longitude")
        record.valid, record.latitude, record.longitude = True, lat, lon
        speed = _json_number(coords, "speed")
        if speed is not None and speed >= 0:
            record.speed = speed * MPS_KMH
        heading = _json_number(coords, "heading")
        if heading is not None and heading >= 0:
            record.course = heading
        accuracy = _json_number(coords, "accuracy")
        if accuracy is not None and accuracy >= 0:
            record.attributes["accuracy"] = str(accuracy)
        record.altitude = _json_number(coords, "altitude")
    attrs = record.attributes
    if isinstance(location.get("event"), str):
        attrs[keys.EVENT] = location["event"]
    if isinstance(location.get("is_moving"), bool):
        attrs[keys.MOTION] = "true" if location["is_moving"] else "false"
    odometer = _json_number(location, "odometer")
    if odometer is not None:
        record.odometer = float(int(odometer))
    if isinstance(location.get("mock"), bool):
        attrs["mock"] = "true" if location["mock"] else "false"
    activity = location.get("activity")
    if isinstance(activity, dict) and isinstance(activity.get("type"), str):
        attrs["activity"] = activity["type"]
    battery = location.get("battery")
    if isinstance(battery, dict):
        level = _json_number(battery, "level")
        if level is not None and level >= 0:
            record.battery_level = float(int(level * 100))
        if battery.get("is_charging") is True:
            attrs[keys.CHARGE] = "true"
    alarm = location.get("alarm")
    if isinstance(alarm, str):
        record.alarms.append(_ALARMS.get(alarm.lower(), alarm))
    extras = location.get("extras")
    if isinstance(extras, dict):
        for key, value in extras.items():
            if key == "alarm" and isinstance(alarm, str):
                continue
            if isinstance(value, bool):
                attrs[key] = "true" if value else "false"
            elif isinstance(value, (int, float, str)):
                attrs[key] = str(value)
    kind = "alarm" if record.alarms else "position" if record.has_position else "status"
    return Decoded(kind, device_id, [record])


class OsmAndCodec(Codec):
    name = "osmand"
    first_bytes = b"GPH"
    priority = 30
    replies = True
    transports = frozenset({"tcp"})
    max_frame = MAX_HEADERS + MAX_BODY

    def detect(self, head: bytes, transport: str) -> Detection:
        if not any(head.startswith(m) for m in METHODS):
            return Detection.MORE if any(m.startswith(head) for m in METHODS) else Detection.NO
        line_end = head.find(b"\r\n")
        line = head if line_end < 0 else head[:line_end]
        parts = line.split(b" ")
        if len(parts) > 1 and parts[1] and parts[1][:1] not in (b"/", b"?", b"h"):
            return Detection.NO
        if len(parts) > 2 and not b"HTTP/1.1".startswith(parts[2][:8]) and not parts[2].startswith(b"HTTP/1."):
            return Detection.NO
        try:
            size, _ = _request_size(head)
        except FramingError:
            return Detection.NO
        if size is None or len(head) < size:
            return Detection.MORE if len(head) <= self.max_frame else Detection.NO
        try:
            request = _Request(head[:size])
        except DecodeError:
            return Detection.NO
        return Detection.YES if _classify(request) else Detection.NO

    def new_framer(self) -> Framer:
        return HttpFramer(self.max_frame)

    def inspect(self, frame: bytes, transport: str) -> FrameInfo:
        request = _Request(frame)
        if request.is_json:
            root = request.json()
            if not _is_osmand_json(root):
                return FrameInfo("other", None, BAD_REQUEST)
            return FrameInfo("position", str(root["device_id"]), OK)
        pairs = request.params()
        device_id = next((v for k, v in pairs if k in ID_KEYS and v), None)
        if device_id is None:
            return FrameInfo("other", None, BAD_REQUEST)
        names = {k for k, _ in pairs}
        kind = "alarm" if "alarm" in names else "position" if names & {"lat", "location"} else "status"
        return FrameInfo(kind, device_id, OK)

    def decode(self, frame: bytes, ctx: Context) -> Decoded:
        if len(frame) > self.max_frame:
            raise DecodeError(f"request of {len(frame)} bytes")
        request = _Request(frame)
        if request.is_json:
            return _decode_json(request)
        return _decode_params(request, ctx)


CODEC = OsmAndCodec()
