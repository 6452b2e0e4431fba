"""GoSafe: text blocks, the old *GS02 text, binary frames with escaping, replies, detection."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import pytest
from trackpipe.protocols import gosafe
from trackpipe.protocols.base import ChecksumError, Context, DecodeError, Detection, ProtocolError
from trackpipe.protocols.kit.checksums import CRC16_XMODEM

from tests.protocols import common

CODEC = gosafe.CODEC
CTX = Context(received_at=datetime(2024, 1, 1, tzinfo=UTC))
IMEI = "351535058659335"

TEXT = (
    b"*GS06,351535058659335,081234310719,1F,SYS:G6S;V3.37;V1.1.8,GPS:A;10;S23.169758;W113.450640;36;323;47;0.82;1.10,"
    b"GSM:1;4;416;3;627A;A84B;-66,COT:18539;2-9-27,ADC:10.81;4.07;0.50,DTT:4000;E3;1;2;0;1,ETD:77,OBD:0441,TAG:99,"
    b"IWD:0;1;9f00000655705d28;22.5;1;0;DRIVER01$081244310719,,GPS:V;3;N1.0;E2.0;0;0#"
)


def binary(mask: int, body: bytes, kind: int = 0x01, event: bytes = b"") -> bytes:
    head = bytes((0xF8, 0x06, kind)) + int(IMEI).to_bytes(7, "big") + struct.pack(">I", 800000000) + event
    data = head + struct.pack(">H", mask) + body
    return data + struct.pack(">H", CRC16_XMODEM(data[1:])) + b"\xf8"


GPS_BLOCK = bytes((21,)) + struct.pack(">HBiihHhHH", 0x7F, 0x49, 52229700, -21012200, 57, 90, 120, 150, 210)
BINARY = binary(0b110, GPS_BLOCK + b"\x02\x1b\xf8")  # a GSM block holding the escape bytes


def test_every_frame_is_answered_1234() -> None:
    for data in (TEXT, BINARY, b"*GS16,351535058709775#"):
        info = CODEC.inspect(data, "tcp")
        assert info.reply == b"1234" and info.device_id in (IMEI, "351535058709775")


def test_text_blocks() -> None:
    decoded = CODEC.decode(TEXT, CTX)
    assert decoded.device_id == IMEI and len(decoded.records) == 2
    r = decoded.records[0]
    assert r.fix_time == datetime(2019, 7, 31, 8, 12, 34, tzinfo=UTC) and r.valid and r.satellites == 10
    assert (r.latitude, r.longitude, r.speed, r.course, r.altitude) == (-23.169758, -113.45064, 36.0, 323.0, 47.0)
    assert (r.odometer, r.power, r.battery) == (18539.0, 10.81, 4.07)
    at = r.attributes
    assert (at["event"], at["hdop"], at["vdop"], at["adc1"]) == ("31", "0.82", "1.1", "0.5")
    assert (at["mcc"], at["mnc"], at["lac"], at["cid"], at["rssi"]) == ("416", "3", str(0x627A), str(0xA84B), "-66")
    assert at["hours"] == str((2 * 3600 + 9 * 60 + 27) * 1000)
    assert at["status"] == str(0x4000) and r.ignition and at["in1"] == "true" and at["out3"] == "true"
    assert (at["geofence"], at["eventStatus"], at["packetType"]) == ("12", "0", "1")
    assert (at["eventData"], at["obd"], at["tagData"]) == ("77", "0441", "99")
    assert at["temp0"] == "22.5" and at["driverUniqueId"] == "DRIVER01"
    second = decoded.records[1]
    assert not second.valid and second.fix_time == datetime(2019, 7, 31, 8, 12, 44, tzinfo=UTC)


def test_command_result_takes_the_previous_time() -> None:
    data = b"*GS56,357330051092344,123918301116,10,GPS:L;9;N47.5;W122.2;0;0$000000000000,86,GPS:A;6;N47.6;W122.3;0;0#"
    first, second = CODEC.decode(data, CTX).records
    assert second.attributes["result"] == "000000000000" and second.fix_time == first.fix_time
    assert second.attributes["event"] == str(0x86) and second.valid and not first.valid


def test_bare_header_has_no_record() -> None:
    decoded = CODEC.decode(b"*GS16,351535058709775", CTX)
    assert decoded.records == [] and decoded.kind == "heartbeat"


def test_old_gs02() -> None:
    (r,) = CODEC.decode(b"*GS02,358696043774648,GPS:230040;A;S1.166829;E36.934287;12;90;170116,STT:20;0", CTX).records
    assert r.fix_time == datetime(2016, 1, 17, 23, 0, 40, tzinfo=UTC)
    assert (r.latitude, r.longitude, r.speed, r.course) == (-1.166829, 36.934287, 12.0, 90.0)


def test_binary_gps_block_and_escaping() -> None:
    wire = gosafe.escape(BINARY[1:-1])
    assert b"\xf8" not in wire
    stream = b"\xf8" + wire + b"\xf8"
    assert common.frames(CODEC, stream + TEXT) == [BINARY, TEXT]
    assert common.frames(CODEC, stream, chunk=1) == [BINARY]
    assert CODEC.split_datagram(stream) == [BINARY]
    assert CODEC.detect(stream, "udp") is Detection.YES
    decoded = CODEC.decode(BINARY, CTX)
    (r,) = decoded.records
    assert decoded.device_id == IMEI
    assert r.fix_time == datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=800000000)
    assert r.valid and r.satellites == 9 and (r.latitude, r.longitude) == (52.2297, -21.0122)
    assert (r.speed, r.course, r.altitude, r.attributes["hdop"], r.attributes["vdop"]) == (
        57.0,
        90.0,
        120.0,
        "1.5",
        "2.1",
    )


def test_binary_crc() -> None:
    bad = BINARY[:-3] + bytes((BINARY[-3] ^ 1,)) + BINARY[-2:]
    with pytest.raises(ChecksumError):
        CODEC.inspect(bad, "tcp")
    with pytest.raises(ChecksumError):
        CODEC.decode(bad, CTX)


def test_binary_with_event_and_without_gps() -> None:
    (r,) = CODEC.decode(binary(0b1, b"\x02ab", kind=0x41, event=b"\x07"), CTX).records
    assert r.attributes["event"] == "7" and not r.has_position


def test_detection() -> None:
    for end in range(1, 21):
        assert CODEC.detect(TEXT[:end], "tcp") is Detection.MORE, TEXT[:end]
    assert CODEC.detect(TEXT[:21], "tcp") is Detection.YES  # a bare `*GS06,<imei>` is a whole frame
    for other in (b"*HQ,123,V1#", b"*TS01,351535058659335,", b"*040331141830UB05", b"*GS06,12345,"):
        assert CODEC.detect(other, "tcp") is Detection.NO, other
    ulbotech = bytes.fromhex("f8010103515810532780699f7e2e3f010e015ee4c906bde45c")
    assert CODEC.detect(ulbotech, "tcp") is Detection.NO
    assert CODEC.detect(BINARY, "tcp") is Detection.YES and CODEC.detect(BINARY[:8], "tcp") is Detection.MORE


def test_framing_garbage_and_oversized() -> None:
    common.garbage_is_skipped(CODEC, b"xx\r", TEXT)
    common.oversized_is_fatal(CODEC, b"*GS06," + b"1" * (CODEC.max_frame + 1))


@pytest.mark.parametrize(
    "data", [b"*GS06,35x,1", b"*GS06,351535058659335,081234310719,GPS:A;10", b"\xf8\x06\x01\x00", b"*GS02,1,GPS:1;A"]
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        CODEC.inspect(data, "tcp")
        CODEC.decode(data, CTX)


def test_decode_error_type() -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(b"", CTX)
