"""GPS103 (Coban): hand-built frames from the protocol facts, replies, framing, detection, device."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import gps103
from trackpipe.protocols.base import DecodeError, Detection, Fix, FramingError, Record
from trackpipe.protocols.devices.gps103 import ALARM_KEYWORDS
from trackpipe.protocols.devices.gps103 import Device as Gps103Device

from tests.protocols import common

CODEC = gps103.CODEC
IMEI = "359586015829802"
LOGIN = b"##,imei:359586015829802,A;"
HEARTBEAT = b"359586015829802;"
REPORT = b"imei:359710049092324,tracker,151027025958,,F,235957.000,A,2429.5156,N,04424.5828,E,0.01,27.91,,0,0,,,;"
SOS = b"imei:359586015829802,help me,0809231429,13554900601,F,062947.294,A,2234.4026,N,11354.3277,E,0.00,"
NO_FIX = b"imei:864895030279986,ac alarm,180404174252,,L,,,296a,,51f7,,,;"
OBD = b"imei:359710048977327,OBD,180301094003,5000000,0.00,0.00,98,18,68.63%,55,25.10%,1368,14.24,P0137,P0430,,;"
ALTERNATIVE = (
    b"imei:861359038609986,Equipo 1,---,------,----,214734,241018,26,1,"
    b"-33.42317,-70.61930,067,229,0674,1.00,08,0,1,---,*"
)
RECEIVED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _one(frame: bytes) -> Record:
    return common.one_record(CODEC, frame, common.ctx(RECEIVED))


# --- detection -----------------------------------------------------------------------
def test_detect_prefixes_and_neighbours() -> None:
    for sample in (LOGIN, REPORT, HEARTBEAT):
        signature = {LOGIN: 24, REPORT: 21, HEARTBEAT: 16}[sample]
        for end in range(1, signature):
            assert CODEC.detect(sample[:end], "tcp") is Detection.MORE, sample[:end]
        assert CODEC.detect(sample[:signature], "tcp") is Detection.YES
    assert CODEC.detect(b"359769031878322imei:359769031878322,", "tcp") is Detection.YES
    neighbours = (
        b"imei=353197040023431&rmc=$GPRMC",  # sanav
        b"imei:352024028980000rmc:$GPRMC",  # sanav
        b"##S,eSeal,1000821",  # eseal
        b"##\x03\x00\x0f\x00",  # t800x
        b"#L#123",  # wialon
        b"IMEI,353358011714362",  # freedom
        b"359586015829802D\x81",  # aplicom
        b"1234567890123456;",  # 16 digits
        b"120305123456,+8613800138000,GPRMC",  # xexun
    )
    for foreign in neighbours:
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign
    assert CODEC.detect(b"123456789012345", "tcp") is Detection.MORE  # bare digits: t55/pui/iotm too


# --- framing -------------------------------------------------------------------------
def test_framing_at_once_and_byte_by_byte() -> None:
    stream = LOGIN + b"\r\n" + HEARTBEAT + REPORT + b"\r\n" + SOS + b"\r\n" + ALTERNATIVE
    expected = [LOGIN, HEARTBEAT, REPORT, SOS + b"\r\n", ALTERNATIVE]
    assert common.frames(CODEC, stream) == expected
    assert common.frames(CODEC, stream, chunk=1) == expected
    assert common.frames(CODEC, stream, chunk=13) == expected


def test_oversized_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"imei:" + b"0" * (CODEC.max_frame + 1))


def test_datagrams() -> None:
    assert CODEC.split_datagram(REPORT) == [REPORT]
    assert CODEC.split_datagram(SOS) == [SOS]  # the terminator is optional over UDP
    assert CODEC.split_datagram(HEARTBEAT + REPORT + b"\r\n") == [HEARTBEAT, REPORT]
    with pytest.raises(FramingError):
        CODEC.split_datagram(b"\r\n")


# --- inspect: kinds, ids, replies --------------------------------------------------------
def test_inspect_replies() -> None:
    cases = {
        LOGIN: ("login", IMEI, b"LOAD"),
        HEARTBEAT: ("heartbeat", IMEI, b"ON"),
        REPORT: ("position", "359710049092324", None),
        SOS: ("alarm", IMEI, b"**,imei:359586015829802,E;"),
        NO_FIX: ("alarm", "864895030279986", None),
        OBD: ("status", "359710048977327", None),
        b"imei:123451234512345,L,*": ("login", "123451234512345", b"LOAD"),
        b"359769031878322imei:359769031878322,tracker,1602160718,2,F,221811.000,A,1655.2193,S,14546.6722,E,0.00,,": (
            "position",
            "359769031878322",
            b"ON",
        ),
    }
    for frame, (kind, device, reply) in cases.items():
        info = CODEC.inspect(frame, "tcp")
        assert (info.kind, info.device_id, info.reply) == (kind, device, reply), frame


# --- decode ----------------------------------------------------------------------------
def test_local_time_is_corrected_by_the_gprmc_time() -> None:
    record = _one(REPORT)
    assert record.fix_time == datetime(2015, 10, 26, 23, 59, 57, tzinfo=UTC)
    assert record.valid
    assert record.latitude == pytest.approx(24.49193, abs=1e-5)
    assert record.longitude == pytest.approx(44.40971, abs=1e-5)
    assert record.speed == pytest.approx(0.01 * 1.852)
    assert record.course == 27.91
    assert record.ignition is False


def test_full_tail_fields() -> None:
    frame = (
        b"imei:353451044508750,001,0809231929,13554900601,F,055403.000,A,2233.1870,N,11354.3067,E,"
        b"10.00,30.1,65.43,1,0,10.5%,0.0%,28;"
    )
    record = _one(frame)
    assert record.speed == pytest.approx(18.52)
    assert record.altitude == 65.43 and record.ignition is True
    assert record.attributes == {"event": "001", "door": "false", "fuel1": "10.5", "fuel2": "0.0", "temp1": "28"}


def test_hemisphere_before_the_value_and_missing_longitude_letter() -> None:
    record = _one(b"imei:353552045403597,tracker,150420050648,53.0,F,0.0,A,N,5306.64155,E,00700.77848,0.0,,1.0,;")
    assert (round(record.latitude, 5), round(record.longitude, 5)) == (53.11069, 7.01297)
    assert record.fix_time == datetime(2015, 4, 20, 5, 6, tzinfo=UTC)  # no GPRMC time: local read as UTC
    record = _one(b"imei:012497000208821,tracker,1301072224,,F,142411.077,A,2227.0739,S,06855.2912,,0,0,")
    assert record.latitude < 0 and record.longitude > 0


def test_slashed_local_time() -> None:
    record = _one(b"imei:359710040656622,tracker,13/02/27 23:40,,F,125952.000,A,3450.9430,S,13828.6753,E,0.00,0")
    assert record.fix_time == datetime(2013, 2, 27, 12, 59, 52, tzinfo=UTC)


@pytest.mark.parametrize(
    ("keyword", "alarm"),
    [
        ("help me", "sos"),
        ("low battery", "lowBattery"),
        ("stockade", "geofence"),
        ("move", "movement"),
        ("speed", "overspeed"),
        ("door alarm", "door"),
        ("ac alarm", "powerCut"),
        ("accident alarm", "accident"),
        ("sensor alarm", "vibration"),
        ("bonnet alarm", "bonnet"),
        ("footbrake alarm", "footBrake"),
        ("DTC", "fault"),
        ("T:+28.0", "temperature"),
        ("oil 51.67", "fuelLeak"),
    ],
)
def test_keyword_alarms(keyword: str, alarm: str) -> None:
    frame = f"imei:{IMEI},{keyword},0809231429,,F,062947.294,A,2234.4026,N,11354.3277,E,0.00,;".encode()
    decoded = CODEC.decode(frame, common.ctx(RECEIVED))
    assert decoded.kind == "alarm" and decoded.records[0].alarms == [alarm]


def test_keyword_values() -> None:
    base = "imei:{},{},0809231429,49121185,F,062947.294,A,2234.4026,N,11354.3277,E,0.00,;"
    assert _one(base.format(IMEI, "acc on").encode()).ignition is True
    assert _one(base.format(IMEI, "acc off").encode()).ignition is False
    assert _one(base.format(IMEI, "T:+28.0").encode()).attributes["temp1"] == "28"
    assert _one(base.format(IMEI, "oil 51.67").encode()).attributes["fuel"] == "51.67"
    assert _one(base.format(IMEI, "rfid").encode()).attributes["driverUniqueId"] == "49121185"
    assert "event" not in _one(base.format(IMEI, "tracker").encode()).attributes


def test_no_fix_report_keeps_the_cell() -> None:
    decoded = CODEC.decode(NO_FIX, common.ctx(RECEIVED))
    record = decoded.records[0]
    assert not record.has_position and record.alarms == ["powerCut"]
    assert record.attributes == {"lac": str(0x296A), "cid": str(0x51F7)}
    assert record.fix_time == datetime(2018, 4, 4, 17, 42, tzinfo=UTC)


def test_obd_report() -> None:
    decoded = CODEC.decode(OBD, common.ctx(RECEIVED))
    record = decoded.records[0]
    assert decoded.kind == "status" and not record.has_position
    assert record.fix_time == datetime(2018, 3, 1, 9, 40, 3, tzinfo=UTC)
    assert record.odometer == 5_000_000 and record.battery == 14.24
    assert record.attributes["rpm"] == "1368" and record.attributes["coolantTemp"] == "55"
    assert record.attributes["hours"] == str(98 * 3_600_000)
    assert record.attributes["dtcs"] == "P0137 P0430"


def test_alternative_report() -> None:
    record = _one(ALTERNATIVE)
    assert record.fix_time == datetime(2018, 10, 24, 21, 47, 34, tzinfo=UTC)
    assert (record.latitude, record.longitude, record.speed, record.course) == (-33.42317, -70.6193, 67.0, 229.0)
    assert record.satellites == 8 and record.altitude == 674.0 and record.attributes["hdop"] == "1"


def test_logins_heartbeats_and_photos_have_no_records() -> None:
    for frame in (LOGIN, HEARTBEAT, b"imei:864180034124375,vr,0c00fa011ea05a03d7;"):
        assert CODEC.decode(frame, common.ctx(RECEIVED)).records == []


@pytest.mark.parametrize(
    "frame",
    [
        b"imei:35958601582980x,tracker,0809231429,,F,;",
        b"imei:359586015829802,tracker,0809231429,,X,;",
        b"hello;",
        b"imei:359586015829802,tracker,0809231429,,F,062947,A,22x4.4026,N,11354.3277,E,0.00,;",
        b"imei:359586015829802,tracker,0809231429,,F,062947,A,9934.4026,N,11354.3277,E,0.00,;",
    ],
)
def test_malformed_frames(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx(RECEIVED))


# --- device ------------------------------------------------------------------------------
def test_device_round_trip() -> None:
    fix = Fix(datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC), -33.123456, 151.654321, 42.0, 123.0, 30.0)
    device = Gps103Device("861234567890123")
    sent = [*device.login(), device.heartbeat(), device.position(fix), *device.batch([fix]), device.alarm(fix, "sos")]
    common.device_round_trip(CODEC, device, sent, ctx=common.ctx(RECEIVED))
    record = _one(device.position(fix))
    assert common.at_fix(record, fix)
    assert record.speed == pytest.approx(42.0, abs=0.01) and record.course == 123.0 and record.altitude == 30.0
    for alarm in ALARM_KEYWORDS:
        assert _one(device.alarm(fix, alarm)).alarms == [alarm]
    with pytest.raises(ValueError):
        device.alarm(fix, "tampering")
    with pytest.raises(ValueError):
        Gps103Device("12345")
