"""Eelink: hand-built packets and envelopes, replies, framing, detection, device round trip."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import eelink
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.eelink import Device, location

from tests.protocols import common

CODEC = eelink.CODEC
IMEI = "352544071750518"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FIX = Fix(WHEN, 22.5431, -114.0579, speed=50, course=270, altitude=-12, satellites=10)
CTX = Context("tcp", None, WHEN)
LOGIN = eelink.packet(eelink.LOGIN, 0x7B, eelink.imei_bytes(IMEI) + b"\x01\x04")


def decode(frame: bytes):
    return CODEC.decode(frame, CTX)


def old_base(valid: bool = True) -> bytes:
    return struct.pack(">IiiBHHHH", int(WHEN.timestamp()), 40_576_000, -205_304_000, 60, 90, 460, 0, 0x2495) + bytes(
        (0, 0x14, 0x20, 1 if valid else 0)
    )


def test_login_clock_reply_and_imei() -> None:
    info = CODEC.inspect(LOGIN, "tcp")
    assert (info.kind, info.device_id, info.reply, info.clock_reply) == ("login", IMEI, None, True)
    reply = CODEC.reply_at(LOGIN, "tcp", WHEN)
    assert reply == b"gg\x01\x00\x09\x00\x7b" + struct.pack(">I", int(WHEN.timestamp())) + b"\x00\x01\x00"
    assert decode(LOGIN).records == [] and decode(LOGIN).device_id == IMEI


def test_every_type_but_gps_and_data_is_echoed() -> None:
    beat = eelink.packet(eelink.HEARTBEAT, 0x21, b"\x00\x6e")
    assert CODEC.inspect(beat, "tcp").reply == bytes.fromhex("67670300020021")
    assert CODEC.inspect(eelink.packet(eelink.GPS, 1, old_base()), "tcp").reply is None
    assert CODEC.inspect(eelink.packet(eelink.DATA, 1, b"xx"), "tcp").reply is None
    assert CODEC.inspect(eelink.packet(eelink.NORMAL, 9, location(FIX) + b"\0\1"), "tcp").reply == (
        b"gg\x12\x00\x02\x00\x09"
    )


def test_heartbeat_status_word() -> None:
    (rec,) = decode(eelink.packet(eelink.HEARTBEAT, 1, struct.pack(">H", 0b1_1010_0110))).records
    assert not rec.has_position and rec.ignition is True
    assert rec.attributes["blocked"] == "true" and rec.attributes["charge"] == "true"
    assert rec.attributes["status"] == str(0b1_1010_0110)


def test_old_gps_packet() -> None:
    body = old_base() + struct.pack(">HHHHH", 0b110, 4012, 18, 100, 200)
    (rec,) = decode(eelink.packet(eelink.GPS, 3, body)).records
    assert rec.fix_time == WHEN and rec.valid and rec.speed == 60 and rec.course == 90
    assert rec.latitude == pytest.approx(22.542222, abs=1e-6) and rec.longitude == pytest.approx(-114.057777, abs=1e-6)
    assert rec.battery == pytest.approx(4.012) and rec.attributes["rssi"] == "18" and rec.attributes["adc2"] == "200"
    assert rec.attributes["index"] == "3" and rec.attributes["mcc"] == "460" and rec.ignition is True


@pytest.mark.parametrize(("code", "alarm"), sorted(eelink.ALARMS.items()))
def test_old_and_new_alarms(code: int, alarm: str) -> None:
    old = eelink.packet(eelink.ALARM, 1, old_base() + bytes((code,)))
    assert CODEC.inspect(old, "tcp").kind == "alarm"
    assert decode(old).records[0].alarms == [alarm]
    new = eelink.packet(eelink.WARNING, 1, location(FIX) + bytes((code,)) + b"\x00\x01")
    assert decode(new).records[0].alarms == [alarm]


def test_old_state_packet() -> None:
    (rec,) = decode(eelink.packet(eelink.STATE, 1, old_base(False) + b"\x02" + bytes(4) + b"\x00\x02")).records
    assert rec.attributes["event"] == "2" and rec.ignition is False and not rec.valid


def test_new_normal_packet_with_cells_and_sensors() -> None:
    body = location(FIX)[:4] + b"\x0b" + location(FIX)[5:]  # GPS + cell + one neighbour cell
    body += struct.pack(">HHHIB", 460, 1, 0x2495, 0x1420, 20) + struct.pack(">HIB", 1, 2, 3)
    body += struct.pack(">H", 0b110_0001_1111)  # valid, ignition on, armed, motion, gps
    body += struct.pack(">HHHI", 3900, 5, 6, 123456) + bytes(4) + struct.pack(">HH", 77, 0)
    body += struct.pack(">hHII", 25 * 256, 456, 300 * 256, 800) + struct.pack(">h", -50 * 16)
    (rec,) = decode(eelink.packet(eelink.NORMAL, 5, body)).records
    assert rec.valid and rec.altitude == -12 and rec.speed == 50 and rec.course == 270 and rec.satellites == 10
    a = rec.attributes
    assert rec.ignition is True and a["armed"] == "true" and a["motion"] == "true" and a["gps"] == "true"
    assert (a["mcc"], a["mnc"], a["lac"], a["cid"], a["rssi"]) == ("460", "1", str(0x2495), str(0x1420), "20")
    assert rec.battery == pytest.approx(3.9) and a["adc0"] == "5" and rec.odometer == 123456 and a["steps"] == "77"
    assert a["temp1"] == "25.0" and a["humidity"] == "45.6" and a["illuminance"] == "300.0" and a["co2"] == "800"
    assert a["temp2"] == "-50.0"


def test_new_packet_without_gps_is_status_only() -> None:
    body = struct.pack(">IB", int(WHEN.timestamp()), 0x10) + bytes(7) + b"\x00\x00"
    (rec,) = decode(eelink.packet(eelink.NORMAL, 1, body)).records
    assert not rec.has_position and rec.fix_time == WHEN


def test_obd_and_command_result() -> None:
    body = struct.pack(">I", int(WHEN.timestamp())) + struct.pack(">BiBiBi", 0x89, 12, 0x8A, 345, 0x8B, 567)
    (rec,) = decode(eelink.packet(eelink.OBD, 1, body)).records
    assert rec.attributes["fuelConsumption"] == "12" and rec.odometer == 345000 and rec.attributes["fuel"] == "56"
    text = b"Lat:N22.543100 Lon:W114.057900 Course:12.00 Speed:3.50 DateTime:2026-03-04 05:06:07"
    (rec,) = decode(eelink.packet(eelink.DOWNLINK, 1, b"\x01" + bytes(4) + text)).records
    assert rec.fix_time == WHEN and rec.longitude == pytest.approx(-114.0579) and rec.speed == 3.5
    (rec,) = decode(eelink.packet(eelink.DOWNLINK, 1, b"\x01" + bytes(4) + b"RELAY OK")).records
    assert rec.attributes["result"] == "RELAY OK"


def test_udp_envelope_with_several_packets_and_replies() -> None:
    body = eelink.packet(eelink.NORMAL, 1, location(FIX) + b"\0\1") + eelink.packet(eelink.HEARTBEAT, 2, b"\0\0")
    datagram = eelink.envelope(IMEI, body)
    assert CODEC.detect(datagram, "udp") is Detection.YES
    assert CODEC.split_datagram(datagram) == [datagram]
    info = CODEC.inspect(datagram, "udp")
    assert info.device_id == IMEI and info.kind == "position"
    assert info.reply == eelink.envelope(IMEI, b"gg\x12\x00\x02\x00\x01gg\x03\x00\x02\x00\x02")
    assert len(decode(datagram).records) == 2
    bad = bytearray(datagram)
    bad[5] ^= 1
    assert CODEC.detect(bytes(bad), "udp") is Detection.NO
    with pytest.raises(FramingError):
        CODEC.split_datagram(datagram[:-1])


def test_detection() -> None:
    for n in range(1, len(LOGIN)):
        assert CODEC.detect(LOGIN[:n], "tcp") is Detection.MORE, n
    assert CODEC.detect(LOGIN, "tcp") is Detection.YES
    assert CODEC.detect(b"gg\x55\x00\x02\x00\x01", "tcp") is Detection.NO  # unknown type
    assert CODEC.detect(b"gg\x01\x00\x0c\x00\x01" + b"\xab" * 10, "tcp") is Detection.NO  # login without BCD IMEI
    assert CODEC.detect(b"GET / HTTP/1.1\r\n", "tcp") is Detection.NO
    assert CODEC.detect(b"EL,123,456", "udp") is Detection.NO


def test_framing() -> None:
    a, b = LOGIN, eelink.packet(eelink.HEARTBEAT, 2, b"\0\0")
    assert common.frames(CODEC, a + b) == [a, b]
    assert common.frames(CODEC, a + b, chunk=1) == [a, b]
    common.garbage_is_skipped(CODEC, b"\x00\x01zz", a)
    common.oversized_is_fatal(CODEC, b"gg\x12\xff\xff")
    assert CODEC.split_datagram(a + b) == [a, b]
    with pytest.raises(DecodeError):
        CODEC.decode(b"gg\x12\x00\x10\x00", CTX)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_device_round_trip(transport: str) -> None:
    dev = Device(IMEI, transport)
    login = dev.login()
    assert (len(login) == 1) == (transport == "tcp")
    for frame in login:
        assert dev.check_reply(frame, CODEC.reply_at(frame, transport, WHEN) or b"")
    sent = [dev.heartbeat(), dev.position(FIX), dev.alarm(FIX, "sos"), *dev.batch([FIX, FIX])]
    device_id = IMEI if transport == "udp" else None
    assert all(dev.expects_reply(f) for f in sent)
    for decoded in common.device_round_trip(CODEC, dev, sent, transport, CTX, device_id=device_id):
        for rec in decoded.records:
            if rec.has_position:
                assert rec.fix_time == WHEN and rec.valid and rec.satellites == 10
                assert rec.latitude == pytest.approx(FIX.latitude, abs=1e-6)
                assert rec.longitude == pytest.approx(FIX.longitude, abs=1e-6)
    assert decode(dev.alarm(FIX, "vibration")).records[0].alarms == ["vibration"]
    with pytest.raises(ValueError):
        dev.alarm(FIX, "powerCut")
