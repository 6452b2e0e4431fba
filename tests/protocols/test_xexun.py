"""Xexun TK102/TK103: hand-built lines (basic and full form), framing, detection and the
device round trip.  Corpus records are covered by tests/test_corpus.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import xexun
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.xexun import ALARM_TEXTS, Device

from tests.protocols import common

CODEC = xexun.CODEC
IMEI = "351525018007873"
WHEN = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SENTENCE = "GPRMC,150120.000,A,3346.4463,S,15057.3083,E,10.0,117.4,010911,,,A*76"
BASIC = f"{SENTENCE},F,,imei:{IMEI},".encode()
FULL = (
    f"110901150120,+61400000000,{SENTENCE},F,help me!, imei:{IMEI},07,35.1,F:4.10V/ADC1=0.76V/ADC2=0.00V,"
    "0,142,21744,505,01,0702,9C8C,3.70km"
).encode()


def decode(frame: bytes, **options: str) -> xexun.Decoded:
    return CODEC.decode(frame, Context(received_at=WHEN, options=options))


# --- decoding ----------------------------------------------------------------------------
def test_basic_line() -> None:
    decoded = decode(BASIC)
    assert (decoded.kind, decoded.device_id) == ("position", IMEI)
    (r,) = decoded.records
    assert r.fix_time == datetime(2011, 9, 1, 15, 1, 20, tzinfo=UTC) and r.valid
    assert (r.latitude, r.longitude) == pytest.approx((-33.774105, 150.955138))
    assert r.speed == pytest.approx(18.52) and r.course == 117.4
    assert r.attributes["signal"] == "F" and not r.alarms


def test_full_line() -> None:
    decoded = decode(FULL, full="true")
    (r,) = decoded.records
    assert decoded.kind == "alarm" and r.alarms == ["sos"]
    assert (r.attributes["serial"], r.attributes["number"]) == ("110901150120", "+61400000000")
    assert (r.satellites, r.altitude, r.power) == (7, 35.1, 4.10)
    assert (r.attributes["adc1"], r.attributes["adc2"]) == ("0.76", "0.00")
    assert (r.attributes["mcc"], r.attributes["mnc"], r.attributes["lac"], r.attributes["cid"]) == (
        "505", "01", str(0x0702), str(0x9C8C),
    )  # fmt: skip
    assert r.odometer == pytest.approx(3700)


@pytest.mark.parametrize(
    ("status", "alarm", "ignition"),
    [
        ("ACC On", None, True),
        ("accstop", None, False),
        ("low battery", "lowBattery", None),
        ("move!", "movement", None),
    ],
)
def test_status_words(status: str, alarm: str | None, ignition: bool | None) -> None:
    (r,) = decode(f"{SENTENCE},L,{status},imei:{IMEI},".encode()).records
    assert r.alarms == ([alarm] if alarm else []) and r.ignition is ignition


def test_coordinate_variants_and_missing_fields() -> None:
    (r,) = decode(f"GPRMC,215853.000,A,811.299200,S,6.7907,,1.43,,250216,,,A*47,F,,imei:{IMEI},".encode()).records
    assert r.latitude == pytest.approx(-(8 + 11.2992 / 60)) and r.longitude == pytest.approx(6.7907 / 60)
    assert r.course == 0.0
    (r,) = decode(f"GPRMC,.000,V,0.000000,S,0.0000,W,0.00,0.00,,00,0000.0,A*55,L,,imei:{IMEI},".encode()).records
    assert r.fix_time == WHEN and not r.valid and r.latitude == 0
    (r,) = decode(
        f"GNRMC,120009.590,A,4639.6774,N,01418.5737,E,0.00,0.00,111111,,,A*68\r\n,F,imei:{IMEI},".encode()
    ).records
    assert r.fix_time == datetime(2011, 11, 11, 12, 0, 9, 590000, tzinfo=UTC)


def test_line_without_gps_is_status() -> None:
    decoded = decode(b",+48606717068,,L,, imei:012207005047292,,,F:4.28V,1,52,11565,247,01,000E,1FC5")
    assert decoded.kind == "status" and decoded.device_id == "012207005047292"
    assert not decoded.records[0].has_position and decoded.records[0].power == 4.28


@pytest.mark.parametrize(
    "frame",
    [b"GPRMC,1,A,1,N,1,E*00,F,imei:1,", b"GPRMC,150120.000,A,3346.4463,S,15057.3083,E,1,1,010911,,,A*76,X,,imei:1,",
     b"GPRMC,150120.000,A,3346.4463,S,15057.3083,E,1,1,010911,,,A*76,F,,", SENTENCE.encode() + b",F,,imei:abc,"],
)  # fmt: skip
def test_malformed_lines_are_decode_errors(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, Context())


def test_no_replies() -> None:
    assert CODEC.inspect(BASIC, "tcp").reply is None and not CODEC.replies


# --- framing -----------------------------------------------------------------------------
def test_framer_cuts_sentence_to_imei_comma() -> None:
    line = FULL + b"\n\r"
    want = BASIC.replace(b",F,,", b",F,help me!, ")
    assert common.frames(CODEC, line) == [want]
    stream = line + BASIC + b"\r\n" + line
    assert common.frames(CODEC, stream) == [want, BASIC, want]
    assert common.frames(CODEC, stream, chunk=1) == [want, BASIC, want]


def test_framer_garbage_then_frame() -> None:
    common.garbage_is_skipped(CODEC, b"\x00\xff\x01junk", BASIC)


def test_framer_long_text_without_sentence_is_garbage() -> None:
    framer = CODEC.new_framer()
    framer.feed(b"x" * (xexun.MAX_LINE_TEXT + 20))
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert not err.value.fatal and framer.buffered < 8


def test_framer_oversized_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"GPRMC," + b"1" * (CODEC.max_frame + 10))


# --- detection ---------------------------------------------------------------------------
@pytest.mark.parametrize("frame", [BASIC, FULL], ids=["basic", "full"])
def test_detection_prefixes(frame: bytes) -> None:
    assert CODEC.detect(frame, "tcp") is Detection.YES
    cut = frame.index(b"RMC,") + 4
    for n in range(1, cut):
        assert CODEC.detect(frame[:n], "tcp") is Detection.MORE, frame[:n]


@pytest.mark.parametrize(
    "head",
    [b"$GPRMC,150120.000,A", b"359586015829802;", b"GPGGA,1", b"4711/022789000688081/$GPRMC,1",
     b"123456789012,+1,GPGGA,", b"170505103845,TELKOMSEL\n"],
)  # fmt: skip
def test_detection_neighbours(head: bytes) -> None:
    assert CODEC.detect(head, "tcp") is Detection.NO


# --- device round trip ---------------------------------------------------------------------
def test_device_round_trip() -> None:
    device = Device(IMEI)
    fix = Fix(datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC), -33.77411, 150.95514, speed=42.5, course=181)
    with pytest.raises(ValueError):
        device.heartbeat()
    frames = [device.position(fix), device.heartbeat(), *device.batch([fix]), device.alarm(fix, "sos")]
    ctx = Context(received_at=WHEN)
    decoded = common.device_round_trip(CODEC, device, frames, ctx=ctx, device_id=IMEI, joined=True, chunk=4)
    assert not any(device.expects_reply(frame) for frame in frames)
    for d in decoded:
        (r,) = d.records
        assert common.at_fix(r, fix) and r.valid
        assert r.speed == pytest.approx(42.5, abs=0.01) and r.course == 181
    assert decode(frames[-1]).records[0].alarms == ["sos"]
    assert set(ALARM_TEXTS) >= {"sos", "lowBattery"}
    with pytest.raises(ValueError):
        device.alarm(fix, "powerCut")
