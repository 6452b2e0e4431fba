"""ARNAVI: header, packets and text lines (PROTOCOLS.md section 7), replies, framing, detection, device."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import arnavi
from trackpipe.protocols.base import DecodeError, Detection, Fix
from trackpipe.protocols.devices.arnavi import Device as ArnaviDevice

from tests.protocols import common

CODEC = arnavi.CODEC
HEADER_V1 = bytes.fromhex("ff22f30c45f5c90f0300")
HEADER_V2 = bytes.fromhex("ff23f30c45f5c90f0300")
HEADER_V3 = bytes.fromhex("ff24f30c45f5c90f0300")
PACKET = bytes.fromhex(
    "5b01012800a3175f5903513934420447221c42055402781e0900f0c5215b4e0084005c00007c005d0000a300fa37010000295d"
)
RESULT = bytes.fromhex("5bfd0100")
TEXT_V2 = b"$AV,V2,32768,12487,2277,203,-1,0,0,193,0,0,1,13,200741,5950.6773N,03029.1043E,0.0,0.0,121012,*6E\r\n"
TEXT_V4 = (
    b"$AV,V4,999999,12487,2277,203,65534,0,0,193,65535,65535,65535,65535,1,13,80.0,56.1,200741,5950.6773N,"
    b"03029.1043E,300.0,360.0,121012,65535,65535,65535,SF*6E\r\n"
)
INFO = b"$AV,V3DI,85164,20707,-1,19,0008C56A,000879AC,0C000002,863071013041618,89997077111301204297,*0B\r\n"


def _record(kind: int, when: int, data: bytes) -> bytes:
    return bytes((kind,)) + len(data).to_bytes(2, "little") + when.to_bytes(4, "little") + data + b"\x00"


def _packet(index: int, *records: bytes) -> bytes:
    return bytes((0x5B, index)) + b"".join(records) + b"\x5d"


# --- detection -----------------------------------------------------------------------
def test_detect() -> None:
    for frame in (HEADER_V1, PACKET, RESULT, TEXT_V2, INFO):
        assert CODEC.detect(frame, "tcp") is Detection.YES
    for end in range(1, 10):
        assert CODEC.detect(HEADER_V1[:end], "tcp") is Detection.MORE
    for end in (1, 2, 10, len(PACKET) - 1):
        assert CODEC.detect(PACKET[:end], "tcp") is Detection.MORE
    for end in range(1, 6):
        assert CODEC.detect(TEXT_V2[:end], "tcp") is Detection.MORE
    neighbours = (
        b"[3G*1234567890*0009*LK,0,0,100]",
        b"[\x80" + b"1234567890",
        b"$AVRMC,",
        b"$AV,X",
        b"\xff\x10" + bytes(8),
    )
    for foreign in neighbours:
        assert CODEC.detect(foreign, "tcp") is Detection.NO
    assert CODEC.detect(b"\xff\x22" + b"\xff" * 8, "tcp") is Detection.NO  # no IMEI


# --- framing -------------------------------------------------------------------------
def test_framing() -> None:
    two = _packet(2, _record(1, 0, b"\x03" + bytes(4)), _record(0, 0, b""))
    stream = HEADER_V1 + PACKET + RESULT + two + TEXT_V2
    want = [HEADER_V1, PACKET, RESULT, two, TEXT_V2]
    assert common.frames(CODEC, stream) == want
    assert common.frames(CODEC, stream, chunk=1) == want
    common.garbage_is_skipped(CODEC, b"\x01\x02junk", PACKET)
    common.oversized_is_fatal(CODEC, b"$AV,V2," + b"0" * CODEC.max_frame)
    common.oversized_is_fatal(CODEC, b"\x5b\x01\x01\xff\xff" + bytes(CODEC.max_frame))


# --- replies -------------------------------------------------------------------------
def test_replies() -> None:
    info = CODEC.inspect(HEADER_V1, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("login", "861785007918323", b"\x7b\x00\x00\x7d")
    assert CODEC.inspect(HEADER_V3, "tcp").reply == b"\x7b\x7d"
    clocked = CODEC.inspect(HEADER_V2, "tcp")
    assert clocked.clock_reply and clocked.reply is None
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    stamp = int(now.timestamp()).to_bytes(4, "little")
    assert CODEC.reply_at(HEADER_V2, "tcp", now) == b"\x7b\x04\x00" + bytes((sum(stamp) % 256,)) + stamp + b"\x7d"
    assert CODEC.reply_at(HEADER_V1, "tcp", now) is None
    assert CODEC.inspect(PACKET, "tcp").reply == b"\x7b\x00\x01\x7d"
    assert CODEC.inspect(TEXT_V2, "tcp").reply is None
    with pytest.raises(DecodeError):
        CODEC.inspect(PACKET[:-1], "tcp")


# --- decode --------------------------------------------------------------------------
def test_binary_position() -> None:
    (rec,) = CODEC.decode(PACKET, common.ctx()).records
    assert rec.fix_time == datetime(2017, 7, 7, 5, 9, 55, tzinfo=UTC) and rec.valid
    assert rec.latitude == pytest.approx(45.05597, abs=1e-5) and rec.longitude == pytest.approx(39.03347, abs=1e-5)


def test_binary_tags() -> None:
    data = b"\x01" + struct.pack("<HH", 4100, 12600) + b"\x02" + struct.pack("<I", 77)
    data += b"\x03" + struct.pack("<f", 55.5) + b"\x04" + struct.pack("<f", 37.25)
    data += b"\x05" + bytes((45, 12, 0x35, 60)) + b"\x06\x01\x03\x05\x00" + b"\x06\x08\x02\xe8\x03"
    data += b"\x07" + struct.pack("<HH", 0x1234, 0x0056) + b"\x08" + bytes((20,)) + struct.pack("<H", 250) + b"\x01"
    data += b"\x28" + struct.pack("<h", -1250) + b"\x00\x00" + b"\x35" + struct.pack("<I", 1000)
    data += b"\x39" + struct.pack("<H", 1800) + b"\x00\x00" + b"\x97" + struct.pack("<H", 120) + b"\x00\x00"
    data += b"\xc8" + bytes(4)  # unknown tag: skipped
    (rec,) = CODEC.decode(_packet(9, _record(1, 1_700_000_000, data)), common.ctx()).records
    assert (rec.battery, rec.power, rec.course, rec.altitude, rec.speed) == (4.1, 12.6, 90.0, 120.0, 60.0)
    assert rec.satellites == 8 and rec.valid and rec.ignition
    assert rec.attributes["callButton"] == "true" and rec.attributes["input"] == "5"
    assert rec.attributes["adc2"] == "1" and rec.attributes["temp1"] == "-12.5"
    assert rec.attributes["driverUniqueId"] == "77" and rec.odometer == 10000
    assert rec.attributes["rpm"] == "1800" and rec.attributes["hdop"] == "1.2"
    assert (rec.attributes["mcc"], rec.attributes["mnc"], rec.attributes["lac"], rec.attributes["cid"]) == (
        "250",
        "1",
        "86",
        "4660",
    )


def test_non_data_records_and_result() -> None:
    packet = _packet(3, _record(0, 0, b""), _record(3, 0, b"hello"), _record(6, 0, b"\x01\x02"))
    assert CODEC.decode(packet, common.ctx()).records == []
    assert CODEC.decode(RESULT, common.ctx()).kind == "other"


def test_text_lines() -> None:
    (v2,) = CODEC.decode(TEXT_V2, common.ctx()).records
    assert v2.fix_time == datetime(2012, 10, 12, 20, 7, 41, tzinfo=UTC)
    assert v2.latitude == pytest.approx(59 + 50.6773 / 60) and v2.longitude == pytest.approx(30 + 29.1043 / 60)
    assert (v2.power, v2.battery, v2.satellites) == (22.77, 2.03, 13)
    decoded = CODEC.decode(TEXT_V4, common.ctx())
    assert decoded.device_id == "999999"
    (v4,) = decoded.records
    assert (v4.altitude, v4.speed, v4.course) == (80.0, 300.0, 360.0)
    info = CODEC.decode(INFO, common.ctx())
    assert (info.kind, info.device_id, info.records) == ("status", "85164", [])


def test_header_decode() -> None:
    decoded = CODEC.decode(HEADER_V1 + bytes(8), common.ctx())  # version 24 units send 8 more bytes
    assert (decoded.kind, decoded.device_id, decoded.records) == ("login", "861785007918323", [])


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff\x22\x01",
        b"$AV,V2,abc,1,2,3",
        b"\x01\x02",
        b"$AV,V2,1,1,1,1,1,1,1,1,1,1,1,1,xx,5950.6773N,03029.1043E,0,0,121012",
    ],
)
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx())


# --- device --------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), 55.7558, 37.6173, speed=57, course=124, altitude=150)


def test_device_round_trip() -> None:
    device = ArnaviDevice("861785007918323")
    frames = [
        *device.login(),
        device.heartbeat(),
        device.position(FIX),
        device.alarm(FIX, "sos"),
        *device.batch([FIX, FIX]),
    ]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=common.ctx(), joined=True)
    assert all(device.expects_reply(f) for f in frames)
    (rec,) = decoded[2].records
    assert common.at_fix(rec, FIX) and rec.valid and rec.speed == 57 and rec.course == 124 and rec.altitude == 150
    assert decoded[3].records[0].attributes["callButton"] == "true"
    assert len(decoded[4].records) == 2
    with pytest.raises(ValueError):
        device.alarm(FIX, "overspeed")
    with pytest.raises(ValueError):
        ArnaviDevice("abc")
