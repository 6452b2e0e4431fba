"""Megastek: the $MGV format (with and without length), the STX/LOGSTX GPRMC formats, framing, detection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import megastek
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix
from trackpipe.protocols.devices.megastek import Device as MegastekDevice

from tests.protocols import common

CODEC = megastek.CODEC
CTX = Context()

MGV = (
    b"$MGV002,860719020193193,DeviceName,R,240214,104742,A,2238.20471,N,11401.97967,W,00,03,00,1.20,10.0,356.23,"
    b"137.9,1.5,460,07,262C,0F54,25,0000,0101,0,0,0,28.5,-3.5,12345,11,100,SOS,18339df945d0:53|108c0fb0a2f1:57;!"
)


def with_length(body: bytes) -> bytes:
    return f"{len(body):04d}".encode() + body


def test_new_format_fields() -> None:
    decoded = CODEC.decode(MGV, CTX)
    assert decoded.device_id == "860719020193193" and decoded.kind == "position"
    (r,) = decoded.records
    assert r.fix_time == datetime(2014, 2, 24, 10, 47, 42, tzinfo=UTC) and r.valid and not r.archive
    assert r.latitude == pytest.approx(22.63675, abs=1e-5) and r.longitude == pytest.approx(-114.03299, abs=1e-5)
    assert (r.satellites, r.speed, r.course, r.altitude, r.odometer) == (3, pytest.approx(18.52), 356.23, 137.9, 1500.0)
    at = r.attributes
    assert (at["hdop"], at["mcc"], at["mnc"], at["lac"], at["cid"], at["rssi"]) == (
        "1.2",
        "460",
        "7",
        str(0x262C),
        str(0x0F54),
        "25",
    )
    assert (at["input"], at["output"], at["adc1"]) == ("0", "5", "0")
    assert (at["temp1"], at["temp2"], at["driverUniqueId"]) == ("28.5", "-3.5", "12345")
    assert (at["charge"], at["belt"], r.battery_level, r.alarms) == ("true", "1", 100.0, ["sos"])
    assert at["wifi"] == "18:33:9d:f9:45:d0/53,10:8c:0f:b0:a2:f1/57"


def test_stored_points_are_archive_and_length_prefix() -> None:
    data = with_length(MGV.replace(b",R,", b",S,"))
    decoded = CODEC.decode(data, CTX)
    assert decoded.kind == "batch" and decoded.records[0].archive
    assert common.frames(CODEC, data + MGV + b"\r\n") == [data, MGV]


def test_watch_layout_and_heart_rate() -> None:
    watch = MGV.replace(b",0000,0101,0,0,0,", b",72,5000,600,300,120,")
    (r,) = CODEC.decode(watch, CTX).records
    assert (r.attributes["heartRate"], r.attributes["steps"], r.attributes["deepSleepTime"]) == ("72", "5000", "120")
    heart = MGV.replace(b",0000,0101,0,0,0,", b",072,0000,0101,1,2,3,")
    (r,) = CODEC.decode(heart, CTX).records
    assert r.attributes["heartRate"] == "72" and r.attributes["adc3"] == "3"


def test_missing_coordinates_give_no_position() -> None:
    data = b"0140$MGV002,354550056642321,GVT900-3,S,300917,071731,V,,,,,00,00,00,99.9,0.000,0.00,,0.0,457,01;!"
    assert CODEC.decode(data, CTX).records == []


@pytest.mark.parametrize(
    ("alert", "alarm"),
    [
        ("PW ON", "powerOn"),
        ("Help", "sos"),
        ("GeoA in", "geofenceEnter"),
        ("geo1out", "geofenceExit"),
        ("PSD", "powerCut"),
        ("Timer", None),
    ],
)
def test_alerts(alert: str, alarm: str | None) -> None:
    assert megastek.alarm_of(alert) == alarm


def test_stx_simple_format() -> None:
    data = (
        b"STX,GerAL22,$GPRMC,174752.000,A,3637.060059,S,6416.2354,W,10.00,90.00,030812,,,A*55,F,LowBattery,"
        b"imei:861785000249353,05/9,180.6,Battery=24%,,1,722,310,0FA6,39D0;8F"
    )
    decoded = CODEC.decode(data, CTX)
    assert decoded.device_id == "861785000249353"
    (r,) = decoded.records
    assert r.fix_time == datetime(2012, 8, 3, 17, 47, 52, tzinfo=UTC) and r.valid
    assert r.latitude == pytest.approx(-(36 + 37.060059 / 60)) and r.longitude == pytest.approx(-(64 + 16.2354 / 60))
    assert (r.speed, r.course, r.satellites, r.altitude, r.battery_level) == (
        pytest.approx(18.52),
        90.0,
        5,
        180.6,
        24.0,
    )
    assert r.alarms == ["lowBattery"] and r.attributes["satVisible"] == "9" and r.attributes["charge"] == "true"
    assert r.attributes["lac"] == str(0x0FA6)


def test_logstx_is_archive_and_id_fallback() -> None:
    data = b"LOGSTX,123456789012345,$GPRMC,225419.000,A,3841.82201,N,09494.73357,W,12.46,135.33,270914,,,A*47"
    decoded = CODEC.decode(data, CTX)
    (r,) = decoded.records
    assert decoded.device_id == "123456789012345" and r.archive and decoded.kind == "batch"
    assert r.longitude == pytest.approx(-(94 + 94.73357 / 60))  # minutes past 60, read as Traccar does


def test_stx_padded_format() -> None:
    data = (
        b"STX2010101801      \x02j$GPRMC,101053.000,A,2232.7607,N,11404.7669,E,0.00,,231110,,,A*7F,"
        b"460,00,2795,0E6A,14,94,1000,0000,91,Timer;1D"
    )
    decoded = CODEC.decode(data, CTX)
    assert decoded.device_id == "2010101801"
    (r,) = decoded.records
    assert r.fix_time == datetime(2010, 11, 23, 10, 10, 53, tzinfo=UTC)
    assert (r.battery_level, r.attributes["flags"], r.attributes["input"], r.attributes["adc1"]) == (
        94.0,
        "1000",
        "0000",
        "91",
    )
    assert CODEC.inspect(data, "tcp").reply is None


def test_agps_request() -> None:
    data = b"cmd=aid;user=***;pwd=***;lat=38.55295383;lon=21.05374500;pacc=1000\n"
    assert CODEC.detect(data, "tcp") is Detection.YES
    assert common.frames(CODEC, data) == [data]
    assert CODEC.decode(data, CTX).records == []


def test_detection() -> None:
    for data in (MGV, with_length(MGV), b"STX,1,", b"LOGSTX,1", b"STX260475            $GPRMC,1"):
        assert CODEC.detect(data, "tcp") is Detection.YES, data
    for prefix in (b"0", b"0137", b"0137$MG", b"$MGV00", b"STX", b"LOGS", b"cmd"):
        assert CODEC.detect(prefix, "tcp") is Detection.MORE, prefix
    for other in (b"ST300STT;205", b"STT;1", b"$GPRMC,1", b"359586015829802;", b"0137$GPRMC", b"STX2010$GPRMC,"):
        assert CODEC.detect(other, "tcp") is Detection.NO, other


def test_framing() -> None:
    line = (
        b"STX,1,$GPRMC,104032.001,A,4022.1119,N,01811.4081,E,000.0,000.0,060913,,,A*67,F,,imei:1,1,1,"
        b"Battery=1%,,1,1,1,0000,0000;24"
    )
    assert common.frames(CODEC, b"\r\n" + line + b"\r\n" + MGV, chunk=1) == [line + b"\r\n", MGV]
    common.oversized_is_fatal(CODEC, b"STX," + b"1" * 5000)
    common.oversized_is_fatal(CODEC, b"9999$MGV")
    common.garbage_is_skipped(CODEC, b"12x4", MGV)


@pytest.mark.parametrize(
    "data", [b"$MGV002,x,,R", b"STX,1,no gprmc", b"hello", b"$MGV002,1,,R,240214,104742,A,99x,N,1,E,0,0,0"]
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(data, CTX)


# --- device ------------------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.866423, 151.19006, speed=57.3, course=123.45, altitude=12)


def test_device_round_trip() -> None:
    device = MegastekDevice("354550056642321", clock=lambda: FIX.time)
    data = device.position(FIX)
    (decoded,) = common.device_round_trip(CODEC, device, [data], ctx=CTX)
    assert not device.expects_reply(data)
    (r,) = decoded.records
    assert decoded.device_id == "354550056642321" and not r.archive
    assert common.at_fix(r, FIX) and r.valid and r.course == 123.45 and r.altitude == 12
    assert r.speed == pytest.approx(FIX.speed, abs=0.01)
    beat = device.heartbeat()
    assert CODEC.detect(beat, "tcp") is Detection.YES and CODEC.decode(beat, CTX).records == []
    assert all(CODEC.decode(f, CTX).records[0].archive for f in device.batch([FIX, FIX]))
    for alarm in ("sos", "powerCut", "lowBattery", "overspeed", "vibration", "geofenceExit"):
        assert CODEC.decode(device.alarm(FIX, alarm), CTX).records[0].alarms == [alarm]
    with pytest.raises(ValueError):
        device.alarm(FIX, "jamming")
