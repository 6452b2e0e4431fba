"""Ulbotech: binary elements, escapes, CRC, replies, text frames, detection, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import ulbotech
from trackpipe.protocols.base import ChecksumError, Context, DecodeError, Detection, Fix
from trackpipe.protocols.devices.ulbotech import Device
from trackpipe.protocols.kit.checksums import CRC16_XMODEM

from tests.protocols import common

CODEC = ulbotech.CODEC
CTX = Context(received_at=datetime(2026, 1, 1, tzinfo=UTC))
IMEI = "868323028799515"


def _frame(*elements: bytes, seconds: int = 0x251E10D3) -> bytes:
    body = b"\x01\x01" + bytes.fromhex("0" + IMEI) + seconds.to_bytes(4, "big") + b"".join(elements)
    return b"\xf8" + body + CRC16_XMODEM(body).to_bytes(2, "big") + b"\xf8"


GPS = b"\x01\x0e" + (62205430).to_bytes(4, "big", signed=True) + (-6685210).to_bytes(4, "big", signed=True)
GPS += (55).to_bytes(2, "big") + (270).to_bytes(2, "big") + (120).to_bytes(2, "big")
STATUS = b"\x03\x04" + (1 << 9).to_bytes(2, "big") + (1 << 10).to_bytes(2, "big")
ODOMETER = b"\x04\x04" + (123456).to_bytes(4, "big")
ADC = (
    b"\x05\x06"
    + (0x0000 | 1500).to_bytes(2, "big")
    + (0x2000 | 600).to_bytes(2, "big")
    + (0x5000 | 2048).to_bytes(2, "big")
)
LBS = b"\x02\x0b" + bytes.fromhex("00f000010010000012340041")[:10] + b"\x41"
OBD = b"\x07\x07" + bytes.fromhex("410c1f40") + bytes.fromhex("310d3c")  # (length << 4 | mode) PID value
EVENT = b"\x10\x01\x05"
VIN = b"\x0d\x05" + b"WVWZZ"
RFID = b"\x0e\x04" + b"ABC" + b"\x01"


def test_gps_status_and_time() -> None:
    decoded = CODEC.decode(_frame(GPS, STATUS), CTX)
    assert (decoded.kind, decoded.device_id) == ("alarm", IMEI)
    (r,) = decoded.records
    assert r.fix_time == datetime(2019, 9, 25, 11, 49, 39, tzinfo=UTC)
    assert (r.latitude, r.longitude, r.speed, r.course, r.valid) == (62.20543, -6.68521, 55.0, 270.0, True)
    assert r.attributes["hdop"] == "1.2" and r.ignition and r.alarms == ["sos"]


def test_other_elements() -> None:
    (r,) = CODEC.decode(_frame(ODOMETER, ADC, LBS, OBD, EVENT, VIN, RFID), CTX).records
    a = r.attributes
    assert not r.has_position and r.odometer == 123456.0
    assert r.power == pytest.approx(1500 * 110 / 4096 - 10) and r.battery == pytest.approx(600 * 110 / 4096 - 10)
    assert a["fuel1"] == str(2048 * 2000 / 4096)
    assert (a["mcc"], a["mnc"], a["lac"], a["cid"], a["rssi"]) == ("240", "1", "16", "4660", "-65")
    assert (a["rpm"], a["obdSpeed"]) == ("2000", "60")
    assert (a["event"], a["vin"], a["driverUniqueId"], a["authorized"]) == ("5", "WVWZZ", "ABC", "true")


def test_no_fix_hdop() -> None:
    gps = GPS[:-2] + (9999).to_bytes(2, "big")
    assert not CODEC.decode(_frame(gps), CTX).records[0].valid


def test_crc_and_reply() -> None:
    frame = _frame(GPS)
    info = CODEC.inspect(frame, "tcp")
    body = b"\x01\xfe\xf8\x01"
    assert info.reply == b"\xf8" + body + CRC16_XMODEM(body).to_bytes(2, "big") + b"\xf8"
    assert info.device_id == IMEI
    broken = frame[:20] + bytes((frame[20] ^ 1,)) + frame[21:]
    with pytest.raises(ChecksumError):
        CODEC.inspect(broken, "tcp")


def test_text_frames() -> None:
    keepalive = b"*TS01,353323081464660#"
    info = CODEC.inspect(keepalive, "tcp")
    assert (info.kind, info.device_id) == ("heartbeat", "353323081464660")
    assert info.reply == f"*TS01,ACK:{CRC16_XMODEM(b'TS01,353323081464660'):04X}#".encode()
    assert CODEC.decode(keepalive, CTX).records == []
    answer = b"*TS01,353323081464660,112233250919,VER:1.2#"
    (r,) = CODEC.decode(answer, CTX).records
    assert r.attributes["result"] == "VER:1.2" and r.fix_time == datetime(2019, 9, 25, 11, 22, 33, tzinfo=UTC)


def test_framing_unescapes() -> None:
    frame = _frame(GPS, STATUS)
    escaped = b"\xf8" + frame[1:-1].replace(b"\xf7", b"\xf7\x00").replace(b"\xf8", b"\xf7\x0f") + b"\xf8"
    inner = b"\xf8\x01\x01" + bytes(8) + b"\xf7\x00\xf7\x0f" + b"\xf8"
    assert common.frames(CODEC, escaped + b"*TS01,353323081464660#") == [frame, b"*TS01,353323081464660#"]
    assert common.frames(CODEC, inner) == [b"\xf8\x01\x01" + bytes(8) + b"\xf7\xf8\xf8"]
    assert common.frames(CODEC, escaped, chunk=1) == [frame]
    common.garbage_is_skipped(CODEC, b"junk", frame)
    common.oversized_is_fatal(CODEC, b"\xf8" + b"\x01" * CODEC.max_frame)


def test_detection() -> None:
    frame = _frame(GPS)
    for end in range(1, 17):
        assert CODEC.detect(frame[:end], "tcp") is Detection.MORE
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert CODEC.detect(b"*TS01,353323081464660#", "tcp") is Detection.YES
    for foreign in (b"*HQ,123", b"*TS0A", b"\xf8\x02\x01", b"\xf8\x01\x01\xab" + bytes(12), b"*161101144927UD00"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


def test_malformed() -> None:
    for bad in (b"\xf8\x01\x01\x00", b"*TS01,12#", b"*XX"):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, CTX)


FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57, course=123)


def test_device_round_trip() -> None:
    device = Device("353323081464660")
    frames = [*device.login(), device.heartbeat(), device.position(FIX), device.alarm(FIX, "sos"), *device.batch([FIX])]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=CTX, framed=None)
    assert all(device.expects_reply(frame) for frame in frames)
    (r,) = decoded[-3].records
    assert common.at_fix(r, FIX) and r.valid and r.speed == 57.0
    assert decoded[-2].records[0].alarms == ["sos"]
    with pytest.raises(ValueError):
        device.alarm(FIX, "tow")


def test_escaped_frame_as_sent_is_understood() -> None:
    seconds = 0x1EA3F7F8  # time bytes that need escaping
    frame = _frame(GPS, seconds=seconds)
    escaped = b"\xf8" + frame[1:-1].replace(b"\xf7", b"\xf7\x00").replace(b"\xf8", b"\xf7\x0f") + b"\xf8"
    assert escaped != frame
    assert CODEC.inspect(escaped, "tcp").reply == CODEC.inspect(frame, "tcp").reply
    assert CODEC.decode(escaped, CTX).records[0].fix_time == CODEC.decode(frame, CTX).records[0].fix_time


def test_detects_a_frame_whose_time_field_holds_an_escape() -> None:
    """Seen end to end: an F7 in the time field is sent as F7 00, which shifted the header
    detection read; the escapes are undone before the header is judged."""
    frame = bytes.fromhex("f80101035000000000520132a20df700010e031d22c20140a488002a002c005a03040200000015abf8")
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert all(CODEC.detect(frame[:end], "tcp") is Detection.MORE for end in range(1, 17))
