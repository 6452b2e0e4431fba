"""HuaSheng: escaping, login/handshake/position replies, OBD TLVs, faults, framing, detection."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import huasheng
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix
from trackpipe.protocols.devices.huasheng import Device, report

from tests.protocols import common

CODEC = huasheng.CODEC
IMEI = "355855050440658"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FIX = Fix(WHEN, -27.46926, 153.13839, speed=61, course=200, altitude=8)
CTX = Context("tcp", IMEI, WHEN)


def decode(frame: bytes):
    return CODEC.decode(frame, CTX)


def one(raw: bytes) -> bytes:
    (frame,) = common.frames(CODEC, raw)
    return frame


def test_escaping_round_trip() -> None:
    inner = bytes([1, 0xC0, 2, 0xDB, 3])
    assert huasheng.escape(inner) == bytes([1, 0xDB, 0xDC, 2, 0xDB, 0xDD, 3])
    assert huasheng.unescape(huasheng.escape(inner)) == inner


def test_login_reply_and_imei() -> None:
    login = one(Device(IMEI).login()[0])
    info = CODEC.inspect(login, "tcp")
    assert (info.kind, info.device_id) == ("login", IMEI)
    assert info.reply == bytes.fromhex("c001 00 000d ff03 0000 00000001 00 c0".replace(" ", ""))
    assert decode(login).records == []
    no_imei = one(huasheng.build(huasheng.LOGIN, 9, huasheng.tlv(1, b"fw")))
    assert CODEC.inspect(no_imei, "tcp").reply is None


def test_handshake_and_position_replies() -> None:
    assert CODEC.inspect(one(huasheng.build(huasheng.HSO, 0x1234)), "tcp").reply == bytes.fromhex(
        "c00100000c0003000000001234c0"
    )
    pos = one(huasheng.build(huasheng.POSITION, 0xC0, report(FIX)))
    reply = CODEC.inspect(pos, "tcp").reply
    assert reply is not None and huasheng.unescape(reply)[9:13] == b"\0\0\0\xc0"
    assert b"\xdb\xdc" in reply  # the index byte C0 travels escaped


def test_position_fields() -> None:
    (rec,) = decode(one(huasheng.build(huasheng.POSITION, 1, report(FIX)))).records
    assert rec.fix_time == WHEN and rec.valid and rec.ignition is True
    assert rec.latitude == pytest.approx(FIX.latitude) and rec.longitude == pytest.approx(FIX.longitude)
    assert rec.speed == 61 and rec.course == 200 and rec.altitude == 8
    assert rec.attributes["rssi"] == "20" and rec.attributes["hdop"] == "9"


@pytest.mark.parametrize(("event", "alarm"), sorted(huasheng.ALARMS.items()))
def test_events(event: int, alarm: str) -> None:
    frame = one(huasheng.build(huasheng.POSITION, 1, report(FIX, event)))
    assert CODEC.inspect(frame, "tcp").kind == "alarm"
    assert decode(frame).records[0].alarms == [alarm]


def test_obd_engine_odometer_hours_cells_tlvs() -> None:
    obd = struct.pack(">BHBHHHHBHI", 128, 828, 40, 0, 250, 12, 1255, 40, 100, 7) + b"\x28"
    engine = bytes((1, 51, 10, 60)) + struct.pack(">H", 1234) + bytes((102,))
    body = report(FIX) + huasheng.tlv(0x0001, obd) + huasheng.tlv(0x0014, engine)
    body += huasheng.tlv(0x0010, b"13212.000000") + huasheng.tlv(0x0011, struct.pack(">I", 1174))
    body += huasheng.tlv(0x0009, b"MAKGM669HJN301879") + huasheng.tlv(0x0020, b"505@1@2f0a@1bc3+505@1@1@2")
    (rec,) = decode(one(huasheng.build(huasheng.POSITION, 1, body))).records
    a = rec.attributes
    assert (a["coolantTemp"], a["rpm"], a["averageSpeed"]) == ("88", "828", "40")
    assert a["fuelConsumption"] == "2.5" and a["tripOdometer"] == "12" and rec.power == pytest.approx(12.55)
    assert a["fuel"] == "16.0" and a["fuelLevel2"] == "100" and a["adBlueLevel"] == "16.0"
    assert a["engineLoad"] == repr(51 / 255) and a["timingAdvance"] == "5.0" and a["airTemp"] == "20"
    assert a["airFlow"] == "12.34" and rec.odometer == pytest.approx(13212000) and a["hours"] == "58.7"
    assert a["vin"] == "MAKGM669HJN301879" and (a["mcc"], a["lac"], a["cid"]) == ("505", str(0x2F0A), str(0x1BC3))


def test_fault_codes() -> None:
    body = struct.pack(">HH", 1, 16) + bytes.fromhex("010002000300430082 00c100".replace(" ", ""))
    frame = one(huasheng.build(huasheng.FAULT, 1, body))
    assert CODEC.inspect(frame, "tcp").kind == "status"
    (rec,) = decode(frame).records
    assert rec.attributes["dtcs"] == "P0100 P0200 P0300 C0300 B0200 U0100" and not rec.has_position


def test_detection() -> None:
    raw = huasheng.build(huasheng.POSITION, 0xC0, report(FIX))
    for n in range(1, len(raw)):
        assert CODEC.detect(raw[:n], "tcp") is Detection.MORE, n
    assert CODEC.detect(raw, "tcp") is Detection.YES
    assert CODEC.detect(one(raw), "tcp") is Detection.YES  # unescaped form
    assert CODEC.detect(b"\xc0\x05", "tcp") is Detection.NO
    assert CODEC.detect(b"\xc0\x00\x00\x00\x20\x12\x34", "tcp") is Detection.NO  # unknown type
    assert CODEC.detect(b"\xc0\x00\x00\x00\x02\xaa\x00", "tcp") is Detection.NO  # length below the header


def test_framing() -> None:
    a = huasheng.build(huasheng.HSO, 1)
    b = huasheng.build(huasheng.POSITION, 0xDB, report(FIX))
    want = [huasheng.unescape(a), huasheng.unescape(b)]
    assert common.frames(CODEC, a + b) == want
    assert common.frames(CODEC, a + b, chunk=1) == want
    common.garbage_is_skipped(CODEC, b"xyz", a)
    common.oversized_is_fatal(CODEC, b"\xc0" + b"\x01" * (CODEC.max_frame + 1))
    with pytest.raises(DecodeError):
        decode(b"\xc0\x00\x00\x00\x40\xaa\x00\x00\x00\x00\x00\x00\x01\xc0")


def test_device_round_trip() -> None:
    dev = Device(IMEI)
    frames = [*dev.login(), dev.heartbeat(), dev.position(FIX), dev.alarm(FIX, "sos"), *dev.batch([FIX])]
    assert all(dev.expects_reply(raw) for raw in frames)
    for decoded in common.device_round_trip(CODEC, dev, frames, ctx=CTX, framed=None):
        for rec in decoded.records:
            assert rec.fix_time == WHEN and rec.latitude == pytest.approx(FIX.latitude)
    assert decode(one(dev.alarm(FIX, "hardBraking"))).records[0].alarms == ["hardBraking"]
    with pytest.raises(ValueError):
        dev.alarm(FIX, "powerCut")
