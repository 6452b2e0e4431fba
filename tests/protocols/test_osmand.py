"""OsmAnd / Traccar Client HTTP: requests, replies, parameters, JSON, framing, detection, device."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import osmand
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.osmand import Device

from tests.protocols import common

CODEC = osmand.CODEC
CTX = Context(received_at=datetime(2026, 1, 1, tzinfo=UTC))
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

GET = (
    b"GET /?id=123456&lat=52.5&lon=13.25&timestamp=1377177267&speed=10&bearing=90&altitude=35 HTTP/1.1\r\n"
    b"Host: x\r\n\r\n"
)


def _post(body: bytes, content_type: str) -> bytes:
    head = f"POST / HTTP/1.1\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


FORM = _post(
    b"id=777&lat=-33.5&lon=151.2&timestamp=2016-01-27T18:55:47Z&alarm=sos&batt=55", "application/x-www-form-urlencoded"
)
JSON = _post(
    json.dumps(
        {
            "location": {
                "timestamp": "2025-06-15T13:45:12.862Z",
                "coords": {
                    "latitude": 37.42,
                    "longitude": -122.08,
                    "speed": 10,
                    "heading": 45,
                    "accuracy": 5,
                    "altitude": 7,
                },
                "is_moving": True,
                "odometer": 1234,
                "event": "motionchange",
                "battery": {"level": 0.79, "is_charging": True},
                "activity": {"type": "walking"},
                "extras": {"note": "x", "n": 3},
            },
            "device_id": "48241179",
        }
    ).encode(),
    "application/json",
)


def test_get_query() -> None:
    info = CODEC.inspect(GET, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("position", "123456", OK)
    decoded = CODEC.decode(GET, CTX)
    (r,) = decoded.records
    assert decoded.device_id == "123456"
    assert r.fix_time == datetime.fromtimestamp(1377177267, UTC)
    assert (r.latitude, r.longitude, r.course, r.altitude, r.valid) == (52.5, 13.25, 90.0, 35.0, True)
    assert r.speed == pytest.approx(18.52)  # knots


@pytest.mark.parametrize(
    ("stamp", "when"),
    [
        ("1442068686579", datetime(2015, 9, 12, 14, 38, 6, 579000, tzinfo=UTC)),
        ("2016-01-27T18%3A55%3A47Z", datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)),
        ("2016-01-27%2018:55:47", datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)),
    ],
)
def test_timestamps(stamp: str, when: datetime) -> None:
    frame = f"GET /?id=1&lat=1&lon=2&timestamp={stamp} HTTP/1.1\r\n\r\n".encode()
    assert CODEC.decode(frame, CTX).records[0].fix_time == when


def test_form_body_and_alarm() -> None:
    info = CODEC.inspect(FORM, "tcp")
    assert (info.kind, info.device_id) == ("alarm", "777")
    (r,) = CODEC.decode(FORM, CTX).records
    assert r.alarms == ["sos"] and r.battery_level == 55.0 and r.latitude == -33.5


def test_other_parameters() -> None:
    frame = (
        b"GET /?deviceid=9&location=60.0,30.0&hdop=1.5&accuracy=4&charge=true&driverUniqueId=D1&ignition=true"
        b"&rpm=933&valid=false&event=start&cell=257,02,16,2224,-90&wifi=00-14-22-01-23-45,-80 HTTP/1.1\r\n\r\n"
    )
    (r,) = CODEC.decode(frame, CTX).records
    a = r.attributes
    assert (r.latitude, r.longitude, r.valid, r.ignition) == (60.0, 30.0, False, True)
    assert (a["hdop"], a["accuracy"], a["charge"], a["driverUniqueId"], a["rpm"], a["event"]) == (
        "1.5",
        "4.0",
        "true",
        "D1",
        "933.0",
        "start",
    )
    assert a["cellTowers"] == "257,02,16,2224,-90" and a["wifiAccessPoints"] == "00:14:22:01:23:45,-80"
    assert r.fix_time == CTX.received_at


def test_no_id_is_bad_request_and_no_record() -> None:
    frame = b"GET /?timestamp=1377177267&lat=60.0&lon=30.0 HTTP/1.1\r\n\r\n"
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert CODEC.inspect(frame, "tcp").reply == b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    assert CODEC.decode(frame, CTX).records == []


def test_status_without_location() -> None:
    frame = b"GET /?id=5&timestamp=1377177267&batt=40 HTTP/1.1\r\n\r\n"
    assert CODEC.inspect(frame, "tcp").kind == "status"
    (r,) = CODEC.decode(frame, CTX).records
    assert not r.has_position and r.battery_level == 40.0


def test_json_location() -> None:
    assert CODEC.detect(JSON, "tcp") is Detection.YES
    info = CODEC.inspect(JSON, "tcp")
    assert (info.device_id, info.reply) == ("48241179", OK)
    (r,) = CODEC.decode(JSON, CTX).records
    a = r.attributes
    assert r.fix_time == datetime(2025, 6, 15, 13, 45, 12, 862000, tzinfo=UTC)
    assert (r.latitude, r.longitude, r.course, r.altitude, r.odometer) == (37.42, -122.08, 45.0, 7.0, 1234.0)
    assert r.speed == pytest.approx(36.0)  # m/s
    assert r.battery_level == 79.0 and a["charge"] == "true" and a["motion"] == "true"
    assert (a["event"], a["activity"], a["note"], a["n"], a["accuracy"]) == ("motionchange", "walking", "x", "3", "5.0")


def test_detection_claims_only_osmand_requests() -> None:
    for end in (1, 3, 10, len(GET) - 1):
        assert CODEC.detect(GET[:end], "tcp") is Detection.MORE
    foreign = (
        b"GET /?id=999000000000003&gprmc=$GPRMC,082202.0,A HTTP/1.1\r\n\r\n",  # OpenGTS
        b"GET /?Lat=60.0&Long=30.0 HTTP/1.1\r\n\r\n",  # LeafSpy
        _post(b'{"_type":"location","lat":46.0,"lon":11.1,"tst":1551874878}', "application/json"),  # OwnTracks
        _post(b'{"lat":46.0,"lon":11.1}', "text/plain"),
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"GX",
    )
    for data in foreign:
        assert CODEC.detect(data, "tcp") is Detection.NO, data


def test_framing() -> None:
    capture = GET + FORM + JSON
    assert common.frames(CODEC, capture) == [GET, FORM, JSON]
    assert common.frames(CODEC, capture, chunk=1) == [GET, FORM, JSON]
    common.garbage_is_skipped(CODEC, b"\x00junk", GET)
    common.oversized_is_fatal(CODEC, b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n")
    common.oversized_is_fatal(CODEC, b"GET /?" + b"a" * (osmand.MAX_HEADERS + 10))
    framer = CODEC.new_framer()
    framer.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    with pytest.raises(FramingError):
        framer.next_frame()


def test_malformed() -> None:
    for bad in (
        b"GET /?id=1&lat=x&lon=2 HTTP/1.1\r\n\r\n",
        b"GET /?id=1&lat=95&lon=2 HTTP/1.1\r\n\r\n",
        _post(b"{not json", "application/json"),
        _post(b'{"location": {"coords": {}}, "device_id": 1}', "application/json"),
        b"BREW / HTTP/1.1\r\n\r\n",
    ):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, CTX)


FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=123, altitude=80)


def test_device_round_trip() -> None:
    device = Device("40000007")
    frames = [*device.login(), device.heartbeat(), device.position(FIX), device.alarm(FIX, "sos"), *device.batch([FIX])]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=CTX)
    assert all(device.expects_reply(f) for f in frames)
    (r,) = decoded[-3].records
    assert common.at_fix(r, FIX) and r.valid
    assert r.speed == pytest.approx(57.3, abs=0.01)
    assert decoded[-2].records[0].alarms == ["sos"]
    assert decoded[-1].records[0].archive
    with pytest.raises(ValueError):
        device.alarm(FIX, "tow")
