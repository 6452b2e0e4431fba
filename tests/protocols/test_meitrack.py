"""Meitrack: hand-assembled AAA/CCC/CCE frames, replies, framing, detection, device round trip."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest
from trackpipe.protocols import meitrack
from trackpipe.protocols.base import ChecksumError, Context, DecodeError, Detection, Fix
from trackpipe.protocols.devices.meitrack import Device as MeitrackDevice

from tests.protocols import common

CODEC = meitrack.CODEC
IMEI = "861451040910625"
Y2000 = datetime(2000, 1, 1, tzinfo=UTC)


def frame(content: str | bytes, flag: str = "A", imei: str = IMEI) -> bytes:
    data = content.encode() if isinstance(content, str) else content
    return meitrack.build_frame(flag, imei, data)


AAA = frame(
    "AAA,35,-1.264865,36.800705,211001105240,A,9,20,41.0,323,1.2,1697,1234,567,639|2|0B5F|D9D3,0102,"
    "4.33|12.96|1.92|2.72|2.69,,,3,1A32,010A92|02FF38,1,,T1,,,,12|171227173100"
)


def ctx(**options: str) -> Context:
    return Context(options=options, received_at=datetime(2024, 1, 1, tzinfo=UTC))


# --- checksum and replies -------------------------------------------------------------
def test_checksum_includes_the_star() -> None:
    assert meitrack.checksum(b"$$D28,353358017784062,D03,OK*") == "F3"
    assert frame("AAC,1", "z").endswith(b"*D3\r\n")  # Traccar's AAC sample, as the unit sends it


def test_aac_reply_is_byte_exact() -> None:
    info = CODEC.inspect(frame("AAC,1", "z"), "tcp")
    assert info.reply == b"@@z27,861451040910625,AAC,1*0B\r\n"
    assert info.device_id == IMEI
    assert CODEC.decode(frame("AAC,1", "z"), ctx()).records == []


def test_ccc_reply_counts_the_points() -> None:
    device = MeitrackDevice(IMEI)
    fixes = [Fix(datetime(2024, 5, 6, 7, 8, i, tzinfo=UTC), 52.1, 21.0) for i in range(12)]
    (batch,) = device.batch(fixes)
    reply = CODEC.inspect(batch, "tcp").reply
    head = f"@@{chr(batch[2])}28,{IMEI},CCC,12*".encode()
    assert reply == head + f"{sum(head) % 256:02X}".encode() + b"\r\n"
    assert device.check_reply(batch, reply)


def test_photo_replies() -> None:
    assert CODEC.inspect(frame("D03,1,camera_picture.jpg"), "tcp").reply == meitrack.build_reply(
        "O", IMEI, "D00,camera_picture.jpg,0"
    )
    assert CODEC.inspect(frame(b"D00,pic.jpg,20,7,\xff\xd8\x00"), "tcp").reply == meitrack.build_reply(
        "O", IMEI, "D00,pic.jpg,8"
    )
    assert CODEC.inspect(frame(b"D00,pic.jpg,20,6,\xff\xd8"), "tcp").reply is None
    assert CODEC.inspect(frame(b"D00,pic.jpg,8,7,\xff\xd8"), "tcp").reply is None  # the last packet
    assert CODEC.decode(frame(b"D00,pic.jpg,20,6,\xff\xd8"), ctx()).records == []


def test_no_reply_to_text_reports() -> None:
    assert CODEC.inspect(AAA, "tcp").reply is None


def test_bad_checksum_is_not_acknowledged() -> None:
    bad = frame("AAC,1", "z").replace(b"*D3", b"*D4")
    with pytest.raises(ChecksumError):
        CODEC.inspect(bad, "tcp")
    with pytest.raises(ChecksumError):
        CODEC.decode(AAA[:-4] + b"00\r\n", ctx())


# --- AAA text reports ---------------------------------------------------------------------
def test_aaa_report_fields() -> None:
    decoded = CODEC.decode(AAA, ctx())
    assert (decoded.kind, decoded.device_id) == ("position", IMEI)
    (r,) = decoded.records
    assert r.fix_time == datetime(2021, 10, 1, 10, 52, 40, tzinfo=UTC) and r.valid
    assert (r.latitude, r.longitude) == (-1.264865, 36.800705)
    assert (r.satellites, r.speed, r.course, r.altitude, r.odometer) == (9, 41.0, 323.0, 1697.0, 1234.0)
    assert (r.battery, r.power) == (4.33, 12.96)
    at = r.attributes
    assert at["event"] == "35" and r.alarms == []
    assert (at["hdop"], at["runtime"], at["rssi"]) == ("1.2", "567", "20")
    assert (at["mcc"], at["mnc"], at["lac"], at["cid"]) == ("639", "2", str(0x0B5F), str(0xD9D3))
    assert (at["input"], at["output"]) == ("1", "2")
    assert at["protocol"] == "3"
    assert at["fuel"] == str(0x1A + 0x32 / 100)
    assert at["temp1"] == "27.06" and at["temp2"] == str(-2.00)  # protocol 3: signed 1/100 degrees
    assert at["tempData"] == "T1"
    assert at["taximeterOn"] == "false" and at["taximeterStart"] == "171227173100"


def test_old_temperature_format_and_driver_card() -> None:
    text = "AAA,37,1.0,2.0,150730184834,V,0,0,0,0,0,0,0,0,0|0|0|0,0000,0.00|0.00|0|0|0,5566778,,1,,01FA05"
    (r,) = CODEC.decode(frame(text), ctx()).records
    assert r.attributes["driverUniqueId"] == "5566778"
    assert r.attributes["temp1"] == str(-6 - 0.05)  # protocol < 3: signed whole degrees, hundredths
    assert "mcc" not in r.attributes and not r.valid


@pytest.mark.parametrize(
    ("model", "battery", "power"),
    [
        ("", 0x0A2D / 100, 0x0573 / 100),
        ("MVT380", 0x0A2D * 6 / 1024, 0x0573 * 48 / 1024),
        ("T1", 0x0A2D * 6.6 / 4096, 0x0573 * 52.8 / 4096),
        ("MT90", 0x0A2D * 6.6 / 4096, float(0x0573)),
    ],
)
def test_hex_analog_scales_per_model(model: str, battery: float, power: float) -> None:
    text = "AAA,35,1.0,2.0,150730184834,A,8,24,0,1,1.3,173,3,3,268|3|2BC0|250B,2000,|||0A2D|0573,,,50"
    options = {"model": model} if model else {}
    (r,) = CODEC.decode(frame(text), ctx(**options)).records
    assert r.battery == pytest.approx(battery) and r.power == pytest.approx(power)
    assert "adc1" not in r.attributes


def test_extra_field_before_the_event() -> None:
    text = (
        "AFF,0004,1,58.588926,16.180473,140928192856,A,10,27,0,161,1.2,19,1648894,435695,"
        "240|24|88B9|E435,0000,|||0A22|0000"
    )
    (r,) = CODEC.decode(frame(text), ctx()).records
    assert r.alarms == ["sos"] and r.latitude == 58.588926


@pytest.mark.parametrize(("event", "alarm"), sorted(meitrack.EVENT_ALARMS.items()))
def test_event_alarms(event: int, alarm: str) -> None:
    text = f"AAA,{event},1.0,2.0,150730184834,A,8,24,0,1,1.3,173,3,3,0|0|0|0,0000,4.0|12.0|0|0|0"
    (r,) = CODEC.decode(frame(text), ctx()).records
    assert r.alarms == [alarm]


def test_command_result() -> None:
    decoded = CODEC.decode(frame("D82,OK"), ctx())
    assert decoded.records[0].attributes["result"] == "OK" and not decoded.records[0].has_position


@pytest.mark.parametrize(
    "text",
    [
        "AAA,35,1.0,2.0",
        "AAA,35,91.0,2.0,150730184834,A,8,24,0,1,1.3,173,3,3,0|0|0|0,0000,4.0|12.0|0|0|0",
        "AAA,35,1.0,2.0,151330184834,A,8,24,0,1,1.3,173,3,3,0|0|0|0,0000,4.0|12.0|0|0|0",
        "AAA,35,1.0,2.0,150730184834,A,8,24,0,1,1.3,173,3,3,0|0|0|0,00G0,4.0|12.0|0|0|0",
    ],
)
def test_malformed_text_reports(text: str) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame(text), ctx())


# --- binary reports ---------------------------------------------------------------------
def test_ccc_points_are_archive() -> None:
    point = struct.pack(
        "<BiiIBBBHHHHIIHHHHHHHHI",
        1,
        -7266500,
        112743650,
        453704389,
        0,
        0,
        9,
        19,
        0,
        13,
        0,
        0,
        3,
        510,
        1,
        0,
        0,
        0,
        0,
        419,
        5,
        0,
    )
    data = frame(b"CCC," + struct.pack("<HHI", 0x0102, 52, 1) + point + point)
    decoded = CODEC.decode(data, ctx())
    assert decoded.kind == "batch" and len(decoded.records) == 2
    r = decoded.records[0]
    assert r.archive and r.alarms == ["sos"] and not r.valid
    assert r.fix_time == Y2000 + timedelta(seconds=453704389)
    assert (r.latitude, r.longitude, r.speed, r.battery, r.power) == (-7.2665, 112.74365, 19.0, 4.19, 5.0)
    assert r.attributes["hdop"] == "1.3" and r.attributes["mcc"] == "510"


def _cce_point(*groups: list[tuple[bytes, bytes]]) -> bytes:
    body = b"\x00\x00"  # index
    for group in groups:
        body += bytes((len(group),)) + b"".join(pid + value for pid, value in group)
    return struct.pack("<H", len(body)) + body


def _sized(data: bytes) -> bytes:
    return bytes((len(data),)) + data


def test_cce_tagged_point() -> None:
    point = _cce_point(
        [(b"\x01", b"\x01"), (b"\x05", b"\x01"), (b"\x06", b"\x09"), (b"\x47", b"\x02"), (b"\xfe\x69", b"\x4d")],
        [(b"\x08", struct.pack("<H", 57)), (b"\x0b", struct.pack("<h", -12)), (b"\x1a", struct.pack("<H", 1250))],
        [
            (b"\x02", struct.pack("<i", 52229700)),
            (b"\x03", struct.pack("<i", -21012200)),
            (b"\x04", struct.pack("<I", 800000000)),
            (b"\x0c", struct.pack("<I", 123456)),
            (b"\xfe\xf4", struct.pack("<I", 10)),
        ],
        [
            (b"\x2b", _sized(b"\x01" + struct.pack("<h", -1063))),
            (b"\xfe\x31", _sized(b"\x02\x07" + b"20250607122041_CH1_dca.jpg")),
            (b"\x99", _sized(b"\x00\x01\x02")),  # unknown variable id: skipped by its length
        ],
    )
    data = frame(b"CCE," + struct.pack("<IH", 0, 2) + point + point)
    decoded = CODEC.decode(data, ctx())
    assert decoded.kind == "position" and len(decoded.records) == 2
    r = decoded.records[0]
    assert r.alarms == ["sos"] and r.valid and r.satellites == 9 and not r.archive
    assert (r.latitude, r.longitude, r.speed, r.altitude, r.power) == (52.2297, -21.0122, 57.0, -12.0, 12.5)
    assert r.fix_time == Y2000 + timedelta(seconds=800000000) and r.odometer == 123456
    assert r.battery_level == 77 and r.attributes["lock"] == "true" and r.attributes["hours"] == "600000"
    assert r.attributes["temp1"] == "-10.63"
    assert r.attributes["image"] == "2025-06-07/20250607122041_CH1_dca.jpg"
    assert CODEC.inspect(data, "tcp").reply is None


def test_truncated_cce_is_a_decode_error() -> None:
    data = frame(b"CCE," + struct.pack("<IH", 0, 3) + _cce_point([], [], [], []))
    with pytest.raises(DecodeError):
        CODEC.decode(data, ctx())


# --- framing and detection ------------------------------------------------------------------
STREAM = AAA + frame("AAC,1", "z") + frame(b"CCC," + bytes(8))


def test_framing_whole_and_byte_by_byte() -> None:
    expected = [AAA, frame("AAC,1", "z"), frame(b"CCC," + bytes(8))]
    assert common.frames(CODEC, STREAM) == expected
    assert common.frames(CODEC, b"\r\n" + STREAM, chunk=1) == expected
    assert CODEC.split_datagram(AAA) == [AAA]


def test_garbage_then_frame_and_oversized() -> None:
    common.garbage_is_skipped(CODEC, b"hello$x", AAA)
    common.garbage_is_skipped(CODEC, b"$$A12345,", AAA)  # five length digits: not a frame
    common.oversized_is_fatal(CODEC, b"$$A9999," + IMEI.encode() + b",AAA,")


def test_detection() -> None:
    for end in range(1, 27):
        assert CODEC.detect(AAA[:end], "tcp") is Detection.MORE, AAA[:end]
    assert CODEC.detect(AAA[:27], "tcp") is Detection.YES
    for other in (
        b"$$0494E2123456789012345|150425223945",  # totem
        b"$$B3359772032399074|60$GPRMC,",  # totem
        b"$$\x00\x11\x13\x61\x23\x45\x67\x8f\xff\x50\x00",  # meiligao
        b"$$135,866104023192332,29,A01,",  # fifotrack
        b"$$123456789012345,4001,",  # xirgo
        b"*HQ,123,V1#",
    ):
        assert CODEC.detect(other, "tcp") is Detection.NO, other


# --- device -----------------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.866423, 151.19006, speed=57.3, course=123, altitude=45)


def test_device_round_trip() -> None:
    device = MeitrackDevice(IMEI)
    assert device.login() == []
    data = device.position(FIX)
    assert CODEC.detect(data, "tcp") is Detection.YES and common.frames(CODEC, data) == [data]
    info = CODEC.inspect(data, "tcp")
    assert info.reply is None and not device.expects_reply(data)
    (r,) = CODEC.decode(data, ctx()).records
    assert r.fix_time == FIX.time and r.valid and (r.latitude, r.longitude) == (FIX.latitude, FIX.longitude)
    assert r.speed == pytest.approx(FIX.speed) and r.course == 123 and r.altitude == 45
    beat = device.heartbeat()
    assert device.expects_reply(beat) and device.check_reply(beat, CODEC.inspect(beat, "tcp").reply)
    assert not device.check_reply(beat, b"@@z27,1,AAC,1*00\r\n")


def test_device_batch_and_alarms() -> None:
    device = MeitrackDevice(IMEI)
    (batch,) = device.batch([FIX, FIX])
    assert device.expects_reply(batch)
    records = CODEC.decode(batch, ctx()).records
    assert len(records) == 2 and all(r.archive for r in records)
    assert records[0].latitude == pytest.approx(FIX.latitude) and records[0].fix_time == FIX.time
    for alarm in ("sos", "powerCut", "lowBattery", "overspeed"):
        (r,) = CODEC.decode(device.alarm(FIX, alarm), ctx()).records
        assert r.alarms == [alarm]
    with pytest.raises(ValueError):
        device.alarm(FIX, "vibration")
    with pytest.raises(ValueError):
        MeitrackDevice("123")
