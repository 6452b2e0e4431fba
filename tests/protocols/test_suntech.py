"""Suntech: hand-built reports from the protocol facts, framing, detection, options, device."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import suntech
from trackpipe.protocols.base import DecodeError, Detection, Fix, Record
from trackpipe.protocols.devices.suntech import ALERT_CODES
from trackpipe.protocols.devices.suntech import Device as SuntechDevice

from tests.protocols import common

CODEC = suntech.CODEC
ST300 = (
    b"ST300STT;007238270;40;313;20190220;12:05:04;c99e48;+04.644623;-074.076922;010.390;202.77;"
    b"20;1;997100;14.10;100000;2;8384;003634;4.1;1"
)
ST300_EMG = (
    b"SA200EMG;317652;042;20120718;15:35:41;16d41;-15.618740;-056.083252;000.034;000.00;8;1;41548;12.17;110000;1"
)
ST600 = (
    b"ST600STT;107850496;20;419;20180227;14:30:45;00462b08;736;3;4524;50;-16.479091;-068.119119;"
    b"000.346;000.00;4;1;0;13.89;000000;1;0223;000003;0.0;0;0.00"
)
ALIVE = b"ST600ALV;008728327"
UNIVERSAL = (
    b"STT;0560001616;BFFFFF;56;1.0.15;1;20200219;20:52:25;00008D6C;334;20;0925;24;+20.741764;"
    b"-103.430364;0.00;0.00;19;1;00000001;00000000;2;1;1765;00008003;0.0;12.14;136598"
)
UEX = (
    b"ST300UEX;109003241;08;1026;20190425;17:36:04;04402;+04.722553;-074.052583;000.020;000.00;"
    b'10;1;0;12.04;010000;51;CabAVL"CabMensaje,0,58.5,-1.0,,,FinMensaje"FinAVL\r\n;B1;'
    b"0000000000;4.1;1"
)
ST910 = b"ST910;Alert;123456;410;20141018;18:30:12;+37.478774;+126.889690;000.000;000.00;0;4.0;1;6002"
ZIP = bytes.fromhex(
    "02003210511340877028813f180c170016041051290c0635652d793653000038001a30e601665e560000000100750002712704000103"
)
BINARY = bytes.fromhex(
    "81004e05200013383fffff3401000300130b020b2a0500000000000000000000000047f9ec846a0650000000001201020000"
    "0123a1002904ba00010fb40000000000000000000000000000000000005989"
)


RECEIVED = datetime(2024, 1, 2, tzinfo=UTC)


def _one(frame: bytes, **options: str) -> Record:
    return common.one_record(CODEC, frame, common.ctx(RECEIVED, **options))


# --- detection -----------------------------------------------------------------------
def test_detect_prefixes_and_neighbours() -> None:
    for sample, signature in ((ST300, 9), (ALIVE, 9), (ST910, 6), (UNIVERSAL, 14)):
        for end in range(1, signature):
            assert CODEC.detect(sample[:end], "tcp") is Detection.MORE, sample[:end]
        assert CODEC.detect(sample[:signature], "tcp") is Detection.YES
    assert CODEC.detect(b"RES;4309999001;04", "tcp") is Detection.YES
    assert CODEC.detect(b"ALT;084003", "tcp") is Detection.MORE
    assert CODEC.detect(ZIP, "tcp") is Detection.YES
    assert CODEC.detect(ZIP[:20], "tcp") is Detection.MORE
    assert CODEC.detect(ZIP[:-1] + b"\x00", "tcp") is Detection.NO  # no footer
    assert CODEC.detect(BINARY, "tcp") is Detection.YES
    neighbours = (
        b"STX,013950007137061,$GPRMC",  # megastek
        b"STX260475          \x02O$GPRMC",
        b"SABCD;123",
        b"STT,123",
        b"ALTX;0840037569",
        b"ALT;12;",
        b"\x81\x01\x4e",
        b"\x02\x00\x32\x11",
        b"\x81\x00\x4e\x05\x2a",  # id not BCD
    )
    for foreign in neighbours:
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


# --- framing -------------------------------------------------------------------------
def test_framing_text_binary_mixed() -> None:
    stream = ST300 + b"\r" + ZIP + UEX + b"\r" + BINARY + ALIVE + b"\r"
    expected = [ST300, ZIP, UEX, BINARY, ALIVE]
    assert common.frames(CODEC, stream) == expected
    assert common.frames(CODEC, stream, chunk=17) == expected
    # byte by byte, the CR of the serial data's CR LF is the last byte once: Traccar splits there too
    assert common.frames(CODEC, ST300 + b"\r" + ZIP + BINARY + ALIVE + b"\r", chunk=1) == [ST300, ZIP, BINARY, ALIVE]


def test_crlf_inside_serial_data_does_not_end_a_frame() -> None:
    framer = CODEC.new_framer()
    framer.feed(UEX)
    assert framer.next_frame() is None
    framer.feed(b"\r")
    assert framer.next_frame() == UEX  # a final CR ends the report at once


def test_oversized_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"ST300STT;" + b"0" * CODEC.max_frame)
    common.oversized_is_fatal(CODEC, b"\x02\xff\xff\x10")
    framer = CODEC.new_framer()
    framer.feed(b"\x81\x00\x4e")
    assert framer.next_frame() is None  # waits for the announced 81 bytes


# --- inspect -------------------------------------------------------------------------
def test_inspect_kinds_ids_no_replies() -> None:
    cases = {
        ST300: ("position", "007238270"),
        ST300_EMG: ("alarm", "317652"),
        ALIVE: ("heartbeat", "008728327"),
        UNIVERSAL: ("position", "0560001616"),
        ST910: ("alarm", "123456"),
        b"ST300CMD;Res;511848119;319H;Disable1": ("status", "511848119"),
        ZIP: ("position", "511340877"),
        BINARY: ("position", "0520001338"),
    }
    for frame, expected in cases.items():
        info = CODEC.inspect(frame, "tcp")
        assert (info.kind, info.device_id, info.reply) == (*expected, None)


# --- decode ----------------------------------------------------------------------------
def test_st300_report() -> None:
    record = _one(ST300)
    assert record.fix_time == datetime(2019, 2, 20, 12, 5, 4, tzinfo=UTC)
    assert (record.latitude, record.longitude, record.speed, record.course) == (4.644623, -74.076922, 10.39, 202.77)
    assert (record.satellites, record.valid, record.odometer, record.power, record.ignition) == (
        20,
        True,
        997100,
        14.1,
        True,
    )
    assert record.attributes["status"] == "2" and record.attributes["index"] == "8384"
    assert record.attributes["cid"] == str(0xC99E48)


def test_hbm_options() -> None:
    record = _one(ST300, hbm="1")
    assert record.attributes["hours"] == str(3634 * 60_000) and record.battery == 4.1 and not record.archive
    live0 = ST300[:-1] + b"0"
    assert CODEC.decode(live0, common.ctx(RECEIVED, hbm="1")).kind == "batch"
    frame = (
        b"ST600STT;008594432;20;492;20200212;18:58:30;060bb0e1;334;20;36bb;45;+19.337897;-099.064489;000.398;000.00;"
        b"12;1;5049883;13.61;100100;2;1198;013762;4.2;1;4.68"
    )
    assert _one(frame, hbm="1", includeAdc="true").attributes["adc1"] == "4.68"
    record = _one(ST600)
    assert record.attributes["mcc"] == "736" and record.attributes["lac"] == str(0x4524)
    frame = (
        b"ST300STT;907131077;04;706;20190227;23:59:34;cc719;-12.963490;-038.499587;000.067;000.00;7;1;57095;12.50;"
        b"000000;1;0337;000207;0.0;1;0;012E717F010000;1"
    )
    record = _one(frame, hbm="1", includeRpm="true")
    assert record.attributes["rpm"] == "0" and record.attributes["driverUniqueId"] == "012E717F010000"
    with pytest.raises(DecodeError):
        CODEC.decode(ST300, common.ctx(RECEIVED, hbm="x"))


@pytest.mark.parametrize(("code", "alarm"), sorted(suntech.EMERGENCIES.items()))
def test_emergencies(code: int, alarm: str) -> None:
    assert _one(ST300_EMG[:-1] + str(code).encode()).alarms == [alarm]


@pytest.mark.parametrize(("code", "alarm"), sorted(suntech.ALERTS.items()))
def test_alerts(code: int, alarm: str) -> None:
    frame = (
        b"SA200ALT;317652;042;20120829;14:25:58;16d41;-15.618770;-056.083242;000.029;000.00;0;0;2404240;0.00;000000;"
    )
    decoded = CODEC.decode(frame + str(code).encode(), common.ctx(RECEIVED))
    assert decoded.kind == "alarm" and decoded.records[0].alarms == [alarm]


def test_serial_data() -> None:
    record = _one(UEX)
    assert record.attributes["fuel1"] == "58.5" and record.attributes["fuel"] == "58.5"
    frame = (
        b"ST600UEX;008728327;20;568;20200602;17:10:03;0bf1a893;334;20;2f19;23;+20.514492;-100.743221;000.033;000.00;"
        b"12;1;41564973;13.17;000000;44;t_0=1C;N_0=0419.0;t_1=22;N_1=0001.0;Q_D=09\n\r;76;113771;4.1;1"
    )
    record = _one(frame)
    assert record.attributes["fuel"] == "1050" and record.attributes["temp0"] == "28"
    assert record.attributes["drivingQuality"] == "9"


def test_universal_mask_fields() -> None:
    record = _one(UNIVERSAL)
    assert record.fix_time == datetime(2020, 2, 19, 20, 52, 25, tzinfo=UTC) and record.archive is False
    assert record.attributes["index"] == "1765" and record.attributes["input"] == "1" and record.ignition
    assert (record.attributes["io1"], record.attributes["io2"], record.attributes["io16"]) == ("0.0", "12.14", "136598")
    ble = _one(b"BLE;1140000053;114;1.0.1;20211001;17:27:09;+28.433465;-82.565891;1;-43;-46;-41;ACB89523EF68;247;0;0")
    assert ble.has_position and ble.attributes["tag1Id"] == "ACB89523EF68"
    assert _one(b"RES;4309999001;04;02;TEST").attributes["result"] == "04;02;TEST"


def test_st910_and_protocol_type() -> None:
    record = _one(ST910)
    assert record.alarms == ["general"] and record.valid is False and record.attributes["versionFw"] == "410"
    frame = (
        b"ST910;Location;907510186;552;20180504;23:15:45;3af54e5331;+19.301833;-099.190657;000.246;000.00;1;28462;"
        b"80;1;0;0423"
    )
    record = _one(frame, protocolType="1")
    assert record.valid and record.odometer == 28462


def test_binary_reports() -> None:
    record = _one(ZIP)
    assert record.fix_time == datetime(2024, 12, 23, 0, 22, 4, tzinfo=UTC)
    assert record.latitude < 0 and record.longitude < 0
    record = _one(BINARY)
    assert record.ignition is False and record.attributes["versionFw"] == "1.0.3"


def test_keepalive_and_unknown_have_no_records() -> None:
    assert CODEC.decode(ALIVE, common.ctx(RECEIVED)).records == []
    assert CODEC.decode(b"BSA;0820012345;001FFF;82", common.ctx(RECEIVED)).records == []


# --- device ------------------------------------------------------------------------------
def test_device_round_trip() -> None:
    fix = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.123456, 151.654321, 42.0, 123.0)
    device = SuntechDevice("9071310770")
    assert device.login() == []
    frames = [device.heartbeat(), device.position(fix), *device.batch([fix]), device.alarm(fix, "sos")]
    common.device_round_trip(CODEC, device, frames, ctx=common.ctx(RECEIVED), framed=lambda frame: frame[:-1])
    assert not any(device.expects_reply(frame) for frame in frames)
    assert CODEC.decode(device.heartbeat(), common.ctx(RECEIVED)).kind == "heartbeat"
    record = _one(device.position(fix))
    assert record.fix_time == fix.time and record.valid and not record.archive
    assert (record.latitude, record.longitude, record.speed, record.course) == (-33.123456, 151.654321, 42.0, 123.0)
    decoded = CODEC.decode(device.batch([fix])[0], common.ctx(RECEIVED))
    assert decoded.kind == "batch" and decoded.records[0].archive
    for alarm in ALERT_CODES:
        assert _one(device.alarm(fix, alarm)).alarms == [alarm]
    with pytest.raises(ValueError):
        device.alarm(fix, "tampering")
    with pytest.raises(ValueError):
        SuntechDevice("12")
