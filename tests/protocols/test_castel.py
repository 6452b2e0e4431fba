"""Castel SC/CC/MPIP: hand-built frames, replies, framing, detection, device round trip."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import castel
from trackpipe.protocols.base import ChecksumError, Context, Detection, Fix, FramingError
from trackpipe.protocols.devices.castel import Device, fix_item

from tests import vectors
from tests.protocols import common

CODEC = castel.CODEC
ID = "213L2017000422"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FIX = Fix(WHEN, 52.2297, -21.0122, speed=36.0, course=123.4, satellites=9)
CTX = Context("tcp", None, WHEN)
STAT = struct.pack("<IIIIIHI", 1, 2, 12345, 678, 90, 0, (1 << 18) | (1 << 4)) + bytes(8)


def sc(type_: int, content: bytes, version: int = 4) -> bytes:
    return castel.build_frame(ID, type_, content, version)


def decode(frame: bytes):
    return CODEC.decode(frame, CTX)


def test_gps_frame_position_and_units() -> None:
    frame = sc(castel.SC_GPS, b"\x00" + STAT + b"\x01" + fix_item(FIX))
    info = CODEC.inspect(frame, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("position", ID, None)
    (rec,) = decode(frame).records
    assert rec.fix_time == WHEN and rec.valid and rec.satellites == 9
    assert rec.latitude == pytest.approx(52.2297) and rec.longitude == pytest.approx(-21.0122)
    assert rec.speed == pytest.approx(36.0, abs=0.04) and rec.course == pytest.approx(123.4)
    assert rec.odometer == 12345 and rec.attributes["tripOdometer"] == "678"
    assert rec.attributes["status"] == str((1 << 18) | (1 << 4)) and not rec.archive


def test_history_flag_is_archive() -> None:
    frame = sc(castel.SC_GPS, b"\x01" + STAT + b"\x02" + fix_item(FIX) * 2)
    assert CODEC.inspect(frame, "tcp").kind == "batch"
    records = decode(frame).records
    assert len(records) == 2 and all(r.archive for r in records)


def test_login_needs_clock_and_reply_carries_utc_seconds() -> None:
    frame = Device(ID).login_frame(FIX)
    info = CODEC.inspect(frame, "tcp")
    assert info.kind == "login" and info.clock_reply and info.reply is None
    reply = CODEC.reply_at(frame, "tcp", WHEN)
    assert reply is not None and Device(ID).check_reply(frame, reply)
    assert reply[27:33] == b"\xff\xff\xff\xff\x00\x00"
    assert struct.unpack("<I", reply[33:37])[0] == int(WHEN.timestamp())
    (rec,) = decode(frame).records
    assert rec.attributes["versionFw"] == "IDD-213L V1.1.1"


def test_heartbeat_reply_bytes() -> None:
    frame = sc(castel.SC_HEARTBEAT, STAT)
    info = CODEC.inspect(frame, "tcp")
    assert info.kind == "heartbeat"
    assert info.reply == castel.build_frame(ID, 0x9003, b"", 4)
    assert info.reply[:5] == b"@@\x1f\x00\x04" and len(info.reply) == 31
    assert decode(frame).records == []


@pytest.mark.parametrize(("code", "alarm"), sorted(castel.ALARM_CODES.items()))
def test_alarm_codes_and_reply_echoes_index(code: int, alarm: str) -> None:
    content = struct.pack("<I", 7) + STAT + b"\x01" + fix_item(FIX) + bytes((2, 0, 1, code)) + bytes(4)
    frame = sc(castel.SC_ALARM, content)
    info = CODEC.inspect(frame, "tcp")
    assert info.kind == "alarm" and info.reply == castel.build_frame(ID, 0xC007, struct.pack("<I", 7), 4)
    (rec,) = decode(frame).records
    assert rec.alarms == [alarm]


def test_ignition_events() -> None:
    for code, state in ((0x16, True), (0x17, False)):
        content = bytes(4) + STAT + b"\x01" + fix_item(FIX) + bytes((1, 1, code)) + bytes(4)
        assert decode(sc(castel.SC_ALARM, content)).records[0].ignition is state


def test_pid_data_values_and_stat_alarms() -> None:
    pids = [0x0C, 0x0D, 0x05, 0x2F]
    content = STAT + b"\x05\x00" + bytes((len(pids),)) + b"".join(struct.pack("<H", 0x2100 | p) for p in pids)
    content += b"\x01\x07" + struct.pack("<HBBB", 2500, 88, 130, 60)
    (rec,) = decode(sc(castel.SC_PID, content)).records
    assert not rec.has_position and rec.ignition is True and rec.alarms == ["hardAcceleration"]
    assert (rec.attributes["rpm"], rec.attributes["obdSpeed"], rec.attributes["coolantTemp"]) == ("2500", "88", "130")
    assert rec.attributes["fuel"] == "60"


def test_obd_data_and_unknown_pid_stops() -> None:
    content = STAT + b"\x01" + b"\x02" + struct.pack("<HH", 0x210D, 0x21EE) + b"\x32"
    (rec,) = decode(sc(castel.SC_OBD, content)).records
    assert rec.attributes["obdSpeed"] == "50" and rec.attributes["unknownPid"] == "ee"


def test_dtcs_passenger_and_commercial() -> None:
    (rec,) = decode(sc(castel.SC_DTCS_PASSENGER, STAT + b"\x00\x02" + struct.pack("<HH", 0x0326, 0x4101))).records
    assert rec.attributes["dtcs"] == "P0326 C0101"
    (rec,) = decode(sc(castel.SC_DTCS_COMMERCIAL, STAT + b"\x00\x01" + struct.pack("<HBB", 0xC001, 1, 1))).records
    assert rec.attributes["dtcs"] == "U0001"


def test_g_sensor_cell_query() -> None:
    (rec,) = decode(sc(castel.SC_G_SENSOR, STAT + b"\x00\x00\x01" + struct.pack("<hhh", 64, -32, 0))).records
    assert rec.attributes["gSensor"] == "[[1.0,-0.5,0.0]]"
    (rec,) = decode(sc(castel.SC_CELL, STAT + struct.pack("<HH", 100, 200))).records
    assert (rec.attributes["lac"], rec.attributes["cid"]) == ("100", "200")
    vin = b"MALC381CMKM567148"
    query = b"\x00\x00\x01\x00" + b"\x00" + b"\x01" + struct.pack("<HH", 0x2011, len(vin)) + vin
    (rec,) = decode(sc(castel.SC_QUERY_REPLY, query)).records
    assert rec.attributes["result"] == vin.decode()


def test_comprehensive_tlvs() -> None:
    tlvs = struct.pack("<HHH", 0x20, 2, 1234) + struct.pack("<HHH", 0x21, 2, 410)
    tlvs += struct.pack("<HHh", 0x11, 2, -55)
    tlvs += struct.pack("<HH", 7, 11) + bytes(4) + bytes((1, 1, 0x1C)) + bytes(4)
    content = b"\x00" + bytes(4) + STAT + b"\x01" + fix_item(FIX) + tlvs
    (rec,) = decode(sc(castel.SC_COMPREHENSIVE, content)).records
    assert rec.power == pytest.approx(12.34) and rec.battery == pytest.approx(4.1)
    assert rec.attributes["temp1"] == "-5.5" and rec.alarms == ["vibration"]


def test_sleep_agps_fuel() -> None:
    assert decode(sc(castel.SC_GPS_SLEEP, bytes(4) + fix_item(FIX))).records[0].has_position
    assert decode(sc(castel.SC_AGPS, fix_item(FIX))).records[0].has_position
    (rec,) = decode(sc(castel.SC_FUEL, STAT + b"\x01" + fix_item(FIX) + struct.pack("<H", 321))).records
    assert rec.attributes["adc1"] == "321"


def test_cc_login_and_heartbeat_replies() -> None:
    extra = struct.pack("<IBI", 3, 4, 5000) + bytes(3)
    login = castel.build_frame(ID, castel.CC_LOGIN, fix_item(FIX) + extra, 12)
    info = CODEC.inspect(login, "tcp")
    assert info.kind == "login" and info.reply == castel.build_frame(ID, 0x8001, b"", 12)
    (rec,) = decode(login).records
    assert rec.odometer == 5000 and rec.battery == 4
    beat = castel.build_frame(ID, castel.CC_HEARTBEAT, b"\x01\x01" + fix_item(FIX) + extra + bytes(4), 12)
    info = CODEC.inspect(beat, "tcp")
    assert info.reply == castel.build_frame(ID, 0x8206, b"", 12)
    (rec,) = decode(beat).records
    assert rec.archive and rec.attributes["lac"] == "0"


def test_mpip_frames_and_replies() -> None:
    gps = castel.build_frame(ID, 0x4001, fix_item(FIX), None)
    assert gps[:2] == b"$$" and CODEC.detect(gps, "udp") is Detection.YES
    info = CODEC.inspect(gps, "udp")
    assert info.reply == castel.build_frame(ID, 0x4001, b"", 0xFF)
    login = castel.build_frame(ID, 0x2001, bytes(9) + fix_item(FIX), None)
    reply = CODEC.inspect(login, "tcp").reply
    assert reply is not None and len(reply) == 42 and reply[:4] == b"@@\x2a\x00"
    assert reply[4:24] == ID.encode().ljust(20, b"\0") and reply[24:26] == b"\x10\x01"
    assert reply[26:38] == bytes(4) + b"\xff" * 8
    multi = castel.build_frame(ID, 0x4204, (fix_item(FIX) + bytes(31)) * 8, None)
    assert len(decode(multi).records) == 8


def test_bad_crc_is_not_acked() -> None:
    frame = bytearray(sc(castel.SC_HEARTBEAT, STAT))
    frame[-3] ^= 1
    with pytest.raises(ChecksumError):
        CODEC.inspect(bytes(frame), "tcp")
    assert CODEC.detect(bytes(frame), "tcp") is Detection.NO


def test_detection_prefixes_and_neighbours() -> None:
    frame = sc(castel.SC_HEARTBEAT, STAT)
    for n in range(1, len(frame)):
        assert CODEC.detect(frame[:n], "tcp") is Detection.MORE, n
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert CODEC.detect(frame + frame, "tcp") is Detection.YES
    meiligao = bytes.fromhex("24240011671440258855405000b24d0d0a")
    assert CODEC.detect(meiligao, "tcp") is Detection.NO
    assert CODEC.detect(b"$$A123,865,AAA,", "tcp") is Detection.NO
    assert CODEC.detect(b"@P,1234", "tcp") is Detection.NO


def test_framing_whole_bytewise_garbage_oversized() -> None:
    a = sc(castel.SC_HEARTBEAT, STAT)
    b = castel.build_frame(ID, 0x4001, fix_item(FIX), None)
    assert common.frames(CODEC, a + b) == [a, b]
    assert common.frames(CODEC, a + b, chunk=1) == [a, b]
    common.garbage_is_skipped(CODEC, b"xx\x00$", a)
    common.oversized_is_fatal(CODEC, b"@@\xff\x7f\x04")
    assert CODEC.split_datagram(a + b) == [a, b]
    with pytest.raises(FramingError):
        CODEC.split_datagram(a[:-1])


def test_device_round_trip() -> None:
    dev = Device(ID)
    assert dev.login() == []
    sent = [dev.heartbeat(), dev.position(FIX), dev.alarm(FIX, "overspeed"), *dev.batch([FIX] * 3)]
    for decoded in common.device_round_trip(CODEC, dev, sent, ctx=CTX):
        for rec in decoded.records:
            assert rec.fix_time == WHEN and rec.latitude == pytest.approx(FIX.latitude, abs=1e-6)
    assert decode(dev.alarm(FIX, "vibration")).records[0].alarms == ["vibration"]
    assert all(r.archive for f in dev.batch([FIX] * 3) for r in decode(f).records)
    with pytest.raises(ValueError):
        dev.alarm(FIX, "sos")


def test_mutated_bodies_with_valid_crc() -> None:
    # random edits behind a recomputed CRC reach the body parsers, not only the CRC check
    rng = random.Random(5086)
    seeds = [vectors.payload(r) for r in vectors.samples("castel")]
    seeds += [sc(castel.SC_HEARTBEAT, STAT), Device(ID).login_frame(FIX)]
    seeds = [s for s in seeds if s[:2] in castel.MAGICS and castel._frame_size(s) == len(s) >= castel.MIN_FRAME]
    assert seeds
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(4, len(data) - 4)] = rng.randrange(256)  # magic and length kept
        body = bytes(data[:-4])
        common.decode_or_protocol_error(CODEC, body + struct.pack("<H", castel.crc(body)) + b"\r\n", CTX)
