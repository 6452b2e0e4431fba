"""Carscop CCTR-8xx: corpus samples, hand-assembled frames (PROTOCOLS.md section 1), device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import carscop
from trackpipe.protocols.base import DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.carscop import ALARM_TEXTS
from trackpipe.protocols.devices.carscop import Device as CarscopDevice

from tests import vectors
from tests.protocols import common

CODEC = carscop.CODEC
SAMPLES = vectors.samples("carscop")

# Issue #2505 capture, as on the wire (PROTOCOLS.md 1.6).
LIVE = b"*161101144927UD00144927A1203.5394S07657.7255W000.4161101255.0011111111L022043^"
BUFFERED_1 = b"*160728045706UD04045706A1202.7738S07658.6489W015.5160728247.8911111111L002626^"
BUFFERED_2 = b"*160728051722UD04051722A1202.9710S07658.4677W009.0160728066.1611111111L003732^"
HEARTBEAT = b"*161101144927UB00HSO^"
CAPTURE = HEARTBEAT + LIVE + BUFFERED_1 + BUFFERED_2
POSITION_BLOCK = b"061825A2934.0133N10627.2544E000.0040331309.6200000000L000000"


@pytest.mark.parametrize("record", SAMPLES, ids=[vectors.sample_id(r) for r in SAMPLES])
def test_corpus_sample_framed(record: dict) -> None:
    """Traccar strips the `^` before its decoder; on the wire every frame ends with it."""
    vectors.require()
    wire = vectors.payload(record) + b"^"
    assert common.frames(CODEC, b"\r\n" + wire + wire) == [wire, wire]
    assert CODEC.split_datagram(wire) == [wire]


# --- detection -----------------------------------------------------------------------
def test_detect_prefixes_and_neighbours() -> None:
    for end in range(1, 17):
        assert CODEC.detect(LIVE[:end], "tcp") is Detection.MORE
    assert CODEC.detect(LIVE[:17], "tcp") is Detection.YES
    neighbours = (b"*HQ,4106011660,V1,", b"*HQ2000905300036,", b"*GS16,351535", b"*T57#F1#", b"*12345678910101000,0")
    for foreign in neighbours:
        assert CODEC.detect(foreign, "tcp") is Detection.NO
    assert CODEC.detect(b"*161101144927Ud00", "tcp") is Detection.NO  # the letter is a capital


# --- framing -------------------------------------------------------------------------
def test_capture_frames_byte_by_byte_as_at_once() -> None:
    assert common.frames(CODEC, CAPTURE) == [HEARTBEAT, LIVE, BUFFERED_1, BUFFERED_2]
    assert common.frames(CODEC, CAPTURE, chunk=1) == common.frames(CODEC, CAPTURE)
    assert common.frames(CODEC, CAPTURE, chunk=7) == common.frames(CODEC, CAPTURE)


def test_garbage_before_a_frame_is_reported_and_skipped() -> None:
    common.garbage_is_skipped(CODEC, b"GET / HTTP/1.1", LIVE)


def test_frame_without_terminator_is_fatal_past_max_frame() -> None:
    common.oversized_is_fatal(CODEC, b"*161101144927UD00" + b"0" * CODEC.max_frame)


def test_datagrams() -> None:
    assert CODEC.split_datagram(LIVE) == [LIVE]
    assert CODEC.split_datagram(LIVE[:-1]) == [LIVE]  # the `^` is optional over UDP
    assert CODEC.split_datagram(CAPTURE) == [HEARTBEAT, LIVE, BUFFERED_1, BUFFERED_2]
    assert CODEC.split_datagram(HEARTBEAT + LIVE[:-1] + b"\r\n") == [HEARTBEAT, LIVE]
    for bad in (b"", b"^\r\n", b"junk^" + LIVE):
        with pytest.raises(FramingError):
            CODEC.split_datagram(bad)


# --- inspect / decode ----------------------------------------------------------------
def test_inspect_kinds_ids_and_no_replies() -> None:
    login = b"*040331141830UB05123456789012345" + POSITION_BLOCK + b"^"
    expected = {
        HEARTBEAT: ("heartbeat", None),
        login: ("login", "123456789012345"),
        LIVE: ("position", None),
        BUFFERED_1: ("batch", None),
        b"*040331141830UA012Hi-jack" + POSITION_BLOCK: ("alarm", None),
        b"*040331141830UC07" + POSITION_BLOCK: ("other", None),
    }
    for frame, (kind, device_id) in expected.items():
        info = CODEC.inspect(frame, "tcp")
        assert (info.kind, info.device_id, info.reply) == (kind, device_id, None)
    for bad in (b"*04033114183UB05", b"*040331141830UB05ABC^", b"(087073005534BP00HSO)"):
        with pytest.raises(DecodeError):
            CODEC.inspect(bad, "tcp")


def test_live_and_buffered_points() -> None:
    live = CODEC.decode(LIVE, common.ctx())
    assert live.kind == "position" and not live.records[0].archive
    (point,) = CODEC.decode(BUFFERED_1, common.ctx()).records
    assert point.archive
    assert point.fix_time == datetime(2016, 7, 28, 4, 57, 6, tzinfo=UTC)
    assert point.latitude == pytest.approx(-(12 + 2.7738 / 60))
    assert point.longitude == pytest.approx(-(76 + 58.6489 / 60))
    assert point.speed == pytest.approx(15.5 * 1.852)  # knots by default
    assert point.course == 247.89
    assert point.attributes["state"] == "11111111"
    assert point.attributes["odometerRaw"] == "002626"
    assert point.odometer == 2626
    assert point.attributes["deviceTime"] == "2016-07-28T04:57:06"


def test_unit_overrides() -> None:
    (point,) = CODEC.decode(
        BUFFERED_1, common.ctx(**{"carscop.speed_unit": "kmh", "carscop.odometer_scale": "10"})
    ).records
    assert point.speed == 15.5
    assert point.odometer == 26260
    for options in ({"carscop.speed_unit": "mph"}, {"carscop.odometer_scale": "ten"}, {"carscop.odometer_scale": "0"}):
        with pytest.raises(DecodeError):
            CODEC.decode(LIVE, common.ctx(**options))


def test_heartbeat_has_no_record() -> None:
    decoded = CODEC.decode(HEARTBEAT, common.ctx())
    assert (decoded.kind, decoded.device_id, decoded.records) == ("heartbeat", None, [])


def test_login_carries_the_device_id() -> None:
    decoded = CODEC.decode(b"*150817160254UB05CC8011400042499" + POSITION_BLOCK, common.ctx())
    assert decoded.kind == "login" and decoded.device_id == "CC8011400042499"
    assert decoded.records[0].has_position


@pytest.mark.parametrize(
    ("text", "alarms"),
    [
        ("2Hi-jack", ["sos"]),
        ("SOS", ["sos"]),
        ("Shock Alarm", ["vibration"]),
        ("Vibration", ["vibration"]),
        ("Overspeed Alarm 120km/h", ["overspeed"]),
        ("Speed", ["overspeed"]),
        ("Geofence(A) Alarm", ["geofenceExit"]),
        ("Fence", ["geofenceExit"]),
        ("Move Alarm", ["movement"]),
        ("Low Battery", ["lowBattery"]),
        ("Power Cut", ["powerCut"]),
        ("Removed", ["general"]),
        ("", ["general"]),
    ],
)
def test_alarm_texts(text: str, alarms: list[str]) -> None:
    frame = f"*040331141830UA01{text}".encode() + POSITION_BLOCK + b"^"
    decoded = CODEC.decode(frame, common.ctx())
    assert decoded.kind == "alarm"
    (record,) = decoded.records
    assert record.alarms == alarms
    assert record.attributes["alarmText"] == text
    assert record.has_position


def test_alarm_without_position_keeps_the_alarm() -> None:
    (record,) = CODEC.decode(b"*040331141830UA02SOS^", common.ctx()).records
    assert record.alarms == ["sos"] and not record.has_position
    assert record.fix_time == datetime(2004, 3, 31, 14, 18, 30, tzinfo=UTC)  # header clock as fallback


def test_unknown_command_is_decoded_as_far_as_possible() -> None:
    decoded = CODEC.decode(b"*040331141830UC07" + POSITION_BLOCK, common.ctx())
    assert decoded.kind == "position" and decoded.records[0].attributes["command"] == "UC07"
    decoded = CODEC.decode(b"*040331141830UB02XYZ", common.ctx())
    assert decoded.kind == "other" and decoded.records[0].attributes["data"] == "XYZ"


def test_gps_time_is_the_fix_time_and_header_the_fallback() -> None:
    frame = b"*160728045706UD04045706A1202.7738S07658.6489W015.5000000247.89^"  # date 000000
    (record,) = CODEC.decode(frame, common.ctx()).records
    assert record.fix_time == datetime(2016, 7, 28, 4, 57, 6, tzinfo=UTC)
    assert "state" not in record.attributes and record.odometer is None


@pytest.mark.parametrize(
    "frame",
    [
        b"*161101144927UD00HSO^",  # a UD report must hold a position
        b"*161101144927UD00144927A1203.5394S07657.7255W000.4161101255.0",  # course cut short
        b"*161101144927UD00144927A9903.5394S07657.7255W000.4161101255.00^",  # latitude past 90
        b"*161101144927UD00144927A1203.5394S07699.7255W000.4161101255.00^",  # 99 minutes
        b"*161101144927UD00144927A1203.5394S07657.7255W0000.4161101255.00^",  # 4-digit speed
        b"*161101144927UB05SHORT^",
        b"#161101144927UB00HSO^",
    ],
)
def test_malformed_frames(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx())


# --- device --------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=123.45)


def test_device_round_trip() -> None:
    device = CarscopDevice("CC8011400042499")
    frame = device.position(FIX)
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert common.frames(CODEC, frame) == [frame]
    decoded = CODEC.decode(frame, common.ctx())
    (record,) = decoded.records
    assert decoded.kind == "position" and not record.archive
    assert record.fix_time == FIX.time and record.valid
    assert record.latitude == pytest.approx(FIX.latitude, abs=1e-5)
    assert record.longitude == pytest.approx(FIX.longitude, abs=1e-5)
    assert record.speed == pytest.approx(FIX.speed, abs=0.05 * 1.852)  # 0.1 knot resolution
    assert record.course == pytest.approx(FIX.course, abs=0.005)


def test_device_in_kmh_matches_the_kmh_option() -> None:
    frame = CarscopDevice("CC8011400042499", speed_unit="kmh").position(FIX)
    (record,) = CODEC.decode(frame, common.ctx(**{"carscop.speed_unit": "kmh"})).records
    assert record.speed == pytest.approx(FIX.speed, abs=0.05)


def test_device_session_frames() -> None:
    clock = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
    device = CarscopDevice("ORANGE000731512", clock=lambda: clock)
    (login,) = device.login()
    info = CODEC.inspect(login, "tcp")
    assert (info.kind, info.device_id) == ("login", "ORANGE000731512")
    assert CODEC.decode(login, common.ctx()).records == []  # a bare login: no made-up position
    assert CODEC.decode(device.heartbeat(), common.ctx()).kind == "heartbeat"
    assert device.heartbeat() == b"*240506070000UB00HSO^"
    device.position(FIX)
    (relogin,) = CODEC.decode(device.login()[0], common.ctx()).records
    assert relogin.latitude == pytest.approx(FIX.latitude, abs=1e-5)
    batch = device.batch([FIX, FIX])
    assert [CODEC.inspect(f, "tcp").kind for f in batch] == ["batch", "batch"]
    assert all(CODEC.decode(f, common.ctx()).records[0].archive for f in batch)
    assert not device.expects_reply(login)


@pytest.mark.parametrize("alarm", sorted(ALARM_TEXTS))
def test_device_alarms(alarm: str) -> None:
    decoded = CODEC.decode(CarscopDevice("123456789012345").alarm(FIX, alarm), common.ctx())
    assert decoded.kind == "alarm" and decoded.records[0].alarms == [alarm]


def test_device_rejects_what_it_cannot_express() -> None:
    with pytest.raises(ValueError):
        CarscopDevice("12345")
    with pytest.raises(ValueError):
        CarscopDevice("123456789012345").alarm(FIX, "jamming")
