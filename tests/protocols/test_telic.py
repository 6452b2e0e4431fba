"""Telic / Picotrack: records, events, both framings, detection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import telic
from trackpipe.protocols.base import Context, DecodeError, Detection

from tests.protocols import common

CODEC = telic.CODEC
CTX = Context(received_at=datetime(2026, 1, 1, tzinfo=UTC))

SHORT = b"442045993198,290317131935,0,290317131935,269158,465748,3,26,183,,,,184,85316567,226,01,00,68,218"
PRECISE = (
    b"002135556507134749902,010817171138,0,010817171138,004560973,50667173,1,40,90,11,1,1,100,958071,20601,0,00,41,0"
)
STATUS = b"0026203393|226|10|002004010"


def test_short_coordinates() -> None:
    decoded = CODEC.decode(SHORT, CTX)
    assert (decoded.kind, decoded.device_id) == ("position", "459931")
    (r,) = decoded.records
    assert r.fix_time == datetime(2017, 3, 29, 13, 19, 35, tzinfo=UTC) and r.valid
    assert (r.latitude, r.longitude, r.speed, r.course, r.satellites) == (46.5748, 26.9158, 26.0, 183.0, None)
    assert r.battery == 68.0 and r.attributes["event"] == "98"


def test_precise_coordinates_and_alarm() -> None:
    decoded = CODEC.decode(PRECISE, CTX)
    assert (decoded.kind, decoded.device_id) == ("alarm", "355565071347499")
    (r,) = decoded.records
    assert (r.latitude, r.longitude, r.valid, r.satellites) == (50.667173, 4.560973, False, 11)
    assert r.alarms == ["sos"]


@pytest.mark.parametrize(
    ("event", "alarm", "ignition"),
    [
        (1, "powerOn", None),
        (5, "powerOff", None),
        (7, "geofenceEnter", None),
        (8, "geofenceExit", None),
        (22, "lowBattery", None),
        (25, "movement", None),
        (11, None, True),
        (12, None, False),
        (99, None, None),
    ],
)
def test_events(event: int, alarm: str | None, ignition: bool | None) -> None:
    frame = b"4420459931" + str(event).encode() + SHORT[12:]
    (r,) = CODEC.decode(frame, CTX).records
    assert r.alarms == ([alarm] if alarm else []) and r.ignition is ignition


def test_status_record() -> None:
    for frame, device_id in ((STATUS, "203393"), (b"0026355565071347499|206|01|001002008", "355565071347499")):
        decoded = CODEC.decode(frame, CTX)
        assert (decoded.kind, decoded.device_id, decoded.records) == ("status", device_id, [])
        assert CODEC.inspect(frame, "tcp").reply is None


def test_framing_both_shapes() -> None:
    prefixed = len(SHORT + b"\x00").to_bytes(4, "little") + SHORT + b"\x00"
    capture = STATUS + b"\x00" + prefixed + PRECISE + b"\x00"
    assert common.frames(CODEC, capture) == [STATUS + b"\x00", SHORT + b"\x00", PRECISE + b"\x00"]
    assert common.frames(CODEC, capture, chunk=1) == common.frames(CODEC, capture)
    assert common.frames(CODEC, b"\x00\x00\x00\x00" + STATUS + b"\x00") == [STATUS + b"\x00"]
    common.oversized_is_fatal(CODEC, b"0026" + b"1" * CODEC.max_frame)
    assert CODEC.decode(prefixed, CTX).device_id == "459931"


def test_detection() -> None:
    prefixed = len(SHORT + b"\x00").to_bytes(4, "little") + SHORT + b"\x00"
    for data in (SHORT, PRECISE, STATUS, prefixed, b"0044296218TLOC0267,00,011009000296218,190317083036,"):
        assert CODEC.detect(data, "tcp") is Detection.YES
    for end in (1, 3, 12, 20):
        assert CODEC.detect(SHORT[:end], "tcp") is Detection.MORE
    for foreign in (
        b"353451044508750;",
        b"imei:359586015829802,tracker",
        b"\x78\x78\x0d\x01",
        b"12345,A,B",
        b"\xff\x05",
    ):
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


def test_malformed() -> None:
    for bad in (b"hello", b"442045993198,290317131935,0,320317131935,269158,465748,3,26,183,,,,184,1,2,3,4,68,218"):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, CTX)
