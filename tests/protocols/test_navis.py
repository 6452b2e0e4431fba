"""Navtelecom NTCB + FLEX: hand-built frames (PROTOCOLS.md section 7), replies, framing, detection, device."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import navis
from trackpipe.protocols.base import ChecksumError, DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.navis import Device as NavisDevice
from trackpipe.protocols.devices.navis import ntcb
from trackpipe.protocols.kit.checksums import CRC8_EGTS

from tests.protocols import common

CODEC = navis.CODEC
HANDSHAKE = bytes.fromhex("404e5443010000007b000000130044342a3e533a383631373835303035323035303739")
NEGOTIATION = bytes.fromhex("404e544301000000aaecf6021300c8712a3e464c4558b00a0a45ffff300a08080f8388")
FLEX_T = bytes.fromhex(
    "7e54040000000400000030129957405c000b00632f9857405ccace03021e129101a103000000000000c4005ba3fe3b0000000012004610"
    "0000000000001aff7f000080bfffff80000080bfffffffff9f"
)
NTCB_T = bytes.fromhex(
    "404e5443010000000000000059009adb2a3e54250000000000ff1500040b0a1008291838001200760ee600000000000000000000000f15"
    "00040b0a10ac20703fb1aec23f00000000320149668f430000000000000000000000000000000000000000000000f3808080"
)


def _crc(data: bytes) -> bytes:
    return data + bytes((CRC8_EGTS(data),))


# --- detection -----------------------------------------------------------------------
def test_detect() -> None:
    for frame in (HANDSHAKE, NEGOTIATION, FLEX_T, NTCB_T, b"\x7f", b"\x7f" + HANDSHAKE):
        assert CODEC.detect(frame, "tcp") is Detection.YES
    for end in range(1, 16):
        assert CODEC.detect(HANDSHAKE[:end], "tcp") is Detection.MORE
    for end in range(1, len(FLEX_T)):
        assert CODEC.detect(FLEX_T[:end], "tcp") is Detection.MORE
    jt808 = bytes.fromhex(
        "7e0100002d01234567890100000000000000000000000000000000000000000000000000000000000000000000000000a37e"
    )
    for foreign in (b"@@\x00\x11", b"@P,1234,", jt808, b"~Z", HANDSHAKE[:15] + b"\x00"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO


# --- framing -------------------------------------------------------------------------
def test_framing_learns_the_negotiated_size() -> None:
    stream = HANDSHAKE + NEGOTIATION + b"\x7f" + FLEX_T + FLEX_T + NTCB_T
    want = [HANDSHAKE, NEGOTIATION, b"\x7f", FLEX_T, FLEX_T, NTCB_T]
    assert common.frames(CODEC, stream) == want
    assert common.frames(CODEC, stream, chunk=1) == want


def test_framing_without_negotiation_uses_the_catalogue() -> None:
    assert common.frames(CODEC, FLEX_T + b"\x7f", chunk=5) == [FLEX_T, b"\x7f"]


def test_garbage_and_oversized() -> None:
    common.garbage_is_skipped(CODEC, b"junk", HANDSHAKE)
    framer = CODEC.new_framer()
    framer.feed(FLEX_T[:-1] + b"\x00" + bytes(300))  # no crc8-confirmed size: garbage, not a hang
    with pytest.raises(FramingError):
        for _ in range(3):
            framer.next_frame()


# --- replies -------------------------------------------------------------------------
def test_replies() -> None:
    login = CODEC.inspect(HANDSHAKE, "tcp")
    assert (login.kind, login.device_id) == ("login", "861785005205079")
    assert login.reply == ntcb(b"*<S", receiver=0x7B, sender=1)
    assert CODEC.inspect(NEGOTIATION, "tcp").reply == ntcb(b"*<FLEX\xb0\x0a\x0a", receiver=0x02F6ECAA, sender=1)
    assert CODEC.inspect(FLEX_T, "tcp").reply == _crc(b"~T\x04\x00\x00\x00")
    array = _crc(b"~A\x01" + FLEX_T[6:-1])
    assert CODEC.inspect(array, "tcp").reply == _crc(b"~A\x01")
    assert CODEC.inspect(NTCB_T, "tcp").reply == ntcb(b"*<T\x00\x00\x00\x00", receiver=0, sender=1)
    assert CODEC.inspect(b"\x7f", "tcp").reply is None
    with pytest.raises(ChecksumError):
        CODEC.inspect(FLEX_T[:-1] + bytes((FLEX_T[-1] ^ 1,)), "tcp")
    with pytest.raises(ChecksumError):
        CODEC.inspect(HANDSHAKE[:-1] + b"0", "tcp")


# --- decode --------------------------------------------------------------------------
def test_flex_record() -> None:
    (rec,) = CODEC.decode(FLEX_T, common.ctx()).records
    assert rec.fix_time == datetime(2019, 1, 17, 10, 23, 20, tzinfo=UTC) and rec.valid
    assert rec.latitude == pytest.approx(56.33996, abs=1e-5) and rec.longitude == pytest.approx(43.80762, abs=1e-5)
    assert rec.attributes["index"] == "4"


def test_flex_options() -> None:
    assert CODEC.decode(FLEX_T, common.ctx(flexBitfield="69:ffff300a08080f8388")).records
    with pytest.raises(DecodeError):
        CODEC.decode(FLEX_T, common.ctx(flexBitfield="69:fffe00000000000000"))
    with pytest.raises(DecodeError):
        CODEC.decode(FLEX_T, common.ctx(flexDataSize="41"))
    with pytest.raises(DecodeError):
        CODEC.decode(FLEX_T, common.ctx(flexBitfield="nonsense"))
    odd = _crc(b"~T" + bytes(4) + bytes(19))
    with pytest.raises(DecodeError):
        CODEC.decode(odd, common.ctx())


def test_flex20_extra_packages() -> None:
    body = b"\x0a\x20" + struct.pack("<IH", 9, 3) + bytes(4) + b"\x26" + struct.pack("<I", 1_700_000_000)
    body += struct.pack("<iii", 33_600_000, 22_500_000, 1500) + struct.pack("<fHf", 42.5, 90, 12.5)
    record = len(body).to_bytes(2, "big") + body
    (rec,) = CODEC.decode(_crc(b"~E\x01" + record), common.ctx()).records
    assert (rec.latitude, rec.longitude, rec.altitude, rec.speed, rec.odometer) == (56.0, 37.5, 150.0, 42.5, 12500.0)
    assert rec.satellites == 9 and rec.valid
    assert CODEC.inspect(_crc(b"~E\x01" + record), "tcp").reply == _crc(b"~E\x01")


def test_ntcb_records() -> None:
    (rec,) = CODEC.decode(NTCB_T, common.ctx()).records
    assert rec.fix_time == datetime(2016, 11, 11, 21, 0, 4, tzinfo=UTC)
    assert rec.latitude == pytest.approx(53.74336, abs=1e-5) and rec.longitude == pytest.approx(87.14437, abs=1e-5)
    six = b"\x06" + struct.pack("<IH", 7, 1) + bytes(6) + b"\x02\x00\x10" + b"\x01" + b"\x03"
    six += struct.pack("<HH", 12000, 4000) + struct.pack("<HHH", 1, 2, 3) + bytes(8) + bytes(28)
    six += bytes(4) + struct.pack("<iH", 0, 0) + b"\x2a" + bytes((8, 9, 10, 6, 4, 24))
    six += struct.pack("<iii", 33_600_000, 22_500_000, 1500) + struct.pack("<fHff", 42.5, 90, 12.5, 0) + bytes(4)
    (f60,) = CODEC.decode(ntcb(b"*>T" + six), common.ctx()).records
    assert f60.fix_time == datetime(2024, 5, 6, 8, 9, 10, tzinfo=UTC) and f60.alarms == ["general"]
    assert (f60.latitude, f60.satellites, f60.power, f60.attributes["adc3"]) == (56.0, 10, 12.0, "3")
    ten = b"\x01" + struct.pack("<IH", 8, 1) + bytes(6) + bytes(3) + bytes(4) + bytes(4) + bytes(6)
    assert CODEC.decode(ntcb(b"*>A\x01" + ten), common.ctx()).records == []  # no navigation block: no record
    answer = CODEC.decode(ntcb(b"*@CNCT_DRC OK"), common.ctx())
    assert answer.records[0].attributes["result"] == "*@CNCT_DRC OK"
    assert CODEC.decode(ntcb(b""), common.ctx()).kind == "heartbeat"


@pytest.mark.parametrize("frame", [b"@NTC", b"~Q\x00\x00", b"\x01", ntcb(b"*>T\x02\x00")])
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx())


# --- device --------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), 55.7558, 37.6173, speed=57.5, course=124, altitude=150)


def test_device_round_trip() -> None:
    device = NavisDevice("861785005205079")
    frames = [
        *device.login(),
        device.heartbeat(),
        device.position(FIX),
        device.alarm(FIX, "sos"),
        *device.batch([FIX, FIX]),
    ]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=common.ctx(), joined=True)
    (rec,) = decoded[3].records
    assert common.at_fix(rec, FIX) and rec.valid and rec.speed == 57.5 and rec.course == 124 and rec.altitude == 150
    assert decoded[4].records[0].alarms == ["general"]
    assert len(decoded[5].records) == 2
    with pytest.raises(ValueError):
        device.alarm(FIX, "overspeed")
