"""Topflytech T800x: hand-built messages (PROTOCOLS.md section 7), replies, framing, detection, device."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import t800x
from trackpipe.protocols.base import DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.t800x import ALARM_CODES
from trackpipe.protocols.devices.t800x import Device as T800xDevice

from tests.protocols import common

CODEC = t800x.CODEC
IMEI = bytes.fromhex("0880316890202968")
LOGIN = bytes.fromhex("232301001500000880316890202968140197625020")
HEARTBEAT = bytes.fromhex("232303000f00000880316890202968")
POSITION = bytes.fromhex(
    "232302004200150357367031063979003c03842307d000004a0000050100004001009500940000000285ab001510281350477f710d"
    "4452819342d1ba944101160038"
)
CELL_ONLY = bytes.fromhex(
    "232302004200000357367031063979003c03842307d000008000000501000000010094009400000002a0b90015102814590694015a"
    "00620cf698620cf49e620cf498"
)


def _message(header: bytes, kind: int, body: bytes, index: int = 7) -> bytes:
    size = 15 + len(body)
    return header + bytes((kind,)) + size.to_bytes(2, "big") + index.to_bytes(2, "big") + IMEI + body


def _position_body(alarm: int = 0, *, valid: bool = True) -> bytes:
    head = struct.pack(">HHBHH", 30, 600, 30, 500, 0x0014)
    status = 0x40 * valid | 9
    flags = bytes((status, 0, 0, 0, 0)) + b"\x00\x00" + struct.pack(">H", 0x4000 | 0x0080)
    adc = struct.pack(">HH", 1234, 0xFFFF)
    tail = bytes((alarm, 0)) + struct.pack(">I", 123456) + bytes.fromhex("85")
    when = bytes.fromhex("240506070809")
    if valid:
        return head + flags + adc + tail + when + struct.pack("<fff", 35.5, 24.75, -33.125) + b"\x05\x73\x00\x7b"
    return head + flags + adc + tail + when + struct.pack("<HH", 262, 1) + struct.pack("<HH", 0x1234, 0x5678) + bytes(8)


# --- detection -----------------------------------------------------------------------
def test_detect_prefixes_and_neighbours() -> None:
    for end in range(1, 15):
        assert CODEC.detect(LOGIN[:end], "tcp") is Detection.MORE
    for frame in (LOGIN, HEARTBEAT, POSITION):
        assert CODEC.detect(frame, "tcp") is Detection.YES
        assert CODEC.detect(frame, "udp") is Detection.YES
    for foreign in (b"##,imei:359586015829802,A;", b"#L#123;pass\r\n", b"%#", b"&&\x99", b"''\x01\x00\x05"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO
    assert CODEC.detect(LOGIN[:7] + b"\xa0" + LOGIN[8:], "tcp") is Detection.NO  # IMEI not BCD


# --- framing -------------------------------------------------------------------------
def test_frames_whole_byte_by_byte_and_in_datagrams() -> None:
    stream = LOGIN + HEARTBEAT + POSITION + CELL_ONLY
    assert common.frames(CODEC, stream) == [LOGIN, HEARTBEAT, POSITION, CELL_ONLY]
    assert common.frames(CODEC, stream, chunk=1) == [LOGIN, HEARTBEAT, POSITION, CELL_ONLY]
    assert CODEC.split_datagram(LOGIN + HEARTBEAT) == [LOGIN, HEARTBEAT]
    for bad in (b"", LOGIN[:-1], b"junk" + LOGIN):
        with pytest.raises(FramingError):
            CODEC.split_datagram(bad)


def test_garbage_and_oversized() -> None:
    common.garbage_is_skipped(CODEC, b"GET / HTTP/1.1\r\n", LOGIN)
    framer = CODEC.new_framer()
    framer.feed(LOGIN[:3] + b"\xff\xff" + LOGIN[5:])  # a length past max_frame is no header
    with pytest.raises(FramingError):
        framer.next_frame()


# --- inspect / replies ---------------------------------------------------------------
def test_replies() -> None:
    info = CODEC.inspect(LOGIN, "tcp")
    assert (info.kind, info.device_id) == ("login", "880316890202968")
    assert info.reply == bytes.fromhex("232301000f00010880316890202968")  # index 1 under 23 23
    assert CODEC.inspect(HEARTBEAT, "tcp").reply == bytes.fromhex("232303000f00010880316890202968")
    assert CODEC.inspect(POSITION, "tcp").reply is None  # plain positions are not acked
    alarm = _message(b"%%", 0x04, _position_body(alarm=3), index=0x1234)
    assert CODEC.inspect(alarm, "tcp").reply == b"%%\x04\x00\x10\x12\x34" + IMEI + b"\x03"
    no_code = _message(b"%%", 0x04, _position_body(alarm=0), index=0x1234)
    assert CODEC.inspect(no_code, "tcp").reply == b"%%\x04\x00\x0f\x12\x34" + IMEI
    network = _message(b"''", 0x05, bytes.fromhex("240506070809") + b"\x02A\x00\x00\x00\x00\x00\x00", index=9)
    assert CODEC.inspect(network, "tcp").reply == b"''\x05\x00\x0f\x00\x09" + IMEI


# --- decode --------------------------------------------------------------------------
def test_login_and_heartbeat_have_no_records() -> None:
    assert CODEC.decode(LOGIN, common.ctx()).records == []
    assert CODEC.decode(HEARTBEAT, common.ctx()).kind == "heartbeat"


def test_position_fields() -> None:
    decoded = CODEC.decode(_message(b"##", 0x02, _position_body() + bytes.fromhex("1240")), common.ctx())
    (rec,) = decoded.records
    assert decoded.device_id == "880316890202968"
    assert rec.fix_time == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC) and rec.valid
    assert (rec.latitude, rec.longitude, rec.altitude) == (-33.125, 24.75, 35.5)
    assert rec.speed == 57.3 and rec.course == 123  # BCD 0.1 km/h
    assert rec.satellites == 9 and rec.ignition and rec.odometer == 123456 and rec.battery_level == 85
    assert rec.power == 12.4
    assert rec.attributes["adc1"] == "12.34" and "adc2" not in rec.attributes
    assert rec.attributes["out1"] == "true" and rec.attributes["rssi"] == "20"


def test_position_without_fix_keeps_the_cell() -> None:
    (rec,) = CODEC.decode(_message(b"##", 0x02, _position_body(valid=False)), common.ctx()).records
    assert not rec.has_position and rec.fix_time == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert (rec.attributes["mcc"], rec.attributes["mnc"], rec.attributes["lac"]) == ("262", "1", "4660")


@pytest.mark.parametrize(
    ("header", "code", "alarm"), [(b"##", 1, "powerCut"), (b"%%", 3, "sos"), (b"''", 5, "fallDown")]
)
def test_alarm_codes(header: bytes, code: int, alarm: str) -> None:
    if header == b"''":
        body = bytes((0x49, code)) + bytes.fromhex("240506070809") + struct.pack("<fff", 1, 2, 3) + bytes(6)
        body += bytes(5) + bytes.fromhex("85") + b"\x19" + bytes.fromhex("12") + bytes.fromhex("41") + b"\x00"
        body += struct.pack(">IH", 99, 0x0004)
    else:
        body = _position_body(alarm=code)
    decoded = CODEC.decode(_message(header, 0x04, body), common.ctx())
    assert decoded.kind == "alarm" and decoded.records[0].alarms == [alarm]


def test_model_override_reads_the_battery_volts() -> None:
    frame = _message(b"%%", 0x02, _position_body() + bytes.fromhex("0412") + bytes.fromhex("1240"))
    (plain,) = CODEC.decode(frame, common.ctx()).records
    (tlw,) = CODEC.decode(frame, common.ctx(model="TLW2-2BL")).records
    assert plain.power == 4.12 and plain.battery is None
    assert tlw.battery == 4.12 and tlw.power == 12.4


def test_network_ble_command_and_behaviour() -> None:
    operator = "Ab".encode("utf-16-le")
    net = bytes.fromhex("240506070809") + bytes((len(operator),)) + operator + b"\x03LTE\x02B3\x03123\x0589014"
    (rec,) = CODEC.decode(_message(b"%%", 0x11, net), common.ctx()).records
    assert rec.attributes["operator"] == "Ab" and rec.attributes["iccid"] == "89014"
    ble = (
        bytes.fromhex("240506070809") + b"\x01" + b"\x00\x03" + bytes.fromhex("a1b2c3d4e5f6") + b"\x36\x01" + bytes(17)
    )
    (tag,) = CODEC.decode(_message(b"%%", 0x10, ble), common.ctx()).records
    assert tag.attributes["driverUniqueId"] == "a1b2c3d4e5f6" and tag.alarms == ["lowBattery"] and tag.ignition
    text = "OK".encode("utf-16-le")
    (answer,) = CODEC.decode(_message(b"%%", 0x81, b"\x01" + text), common.ctx()).records
    assert answer.attributes["result"] == "OK"
    drive = b"\x01" + bytes.fromhex("240506070809") + b"\x00" + bytes(5) + struct.pack("<fff", 10, 20.5, 40.25)
    drive += bytes.fromhex("0573") + struct.pack(">HH", 900, 2100)
    (event,) = CODEC.decode(_message(b"&&", 0x06, drive), common.ctx()).records
    assert event.alarms == ["hardAcceleration"] and event.latitude == 40.25 and event.course == 90.0


@pytest.mark.parametrize("frame", [LOGIN[:14], b"##\x02\x00\x40" + bytes(20), POSITION[:40]])
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx())


# --- device --------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.9249, 18.4241, speed=57.3, course=123, altitude=12)


def test_device_round_trip() -> None:
    device = T800xDevice("868120303001234")
    frames = [*device.login(), device.heartbeat(), device.position(FIX), device.alarm(FIX, "sos")]
    assert all(CODEC.detect(frame, "tcp") is Detection.YES for frame in frames)
    decoded = common.device_round_trip(CODEC, device, frames, ctx=common.ctx(), joined=True)
    (rec,) = decoded[2].records
    assert common.at_fix(rec, FIX) and rec.valid
    assert rec.speed == pytest.approx(FIX.speed) and rec.course == 123
    assert [r.fix_time for f in device.batch([FIX, FIX]) for r in CODEC.decode(f, common.ctx()).records] == [
        FIX.time
    ] * 2


@pytest.mark.parametrize("alarm", sorted(ALARM_CODES))
def test_device_alarms(alarm: str) -> None:
    frame = T800xDevice("868120303001234").alarm(FIX, alarm)
    assert CODEC.decode(frame, common.ctx()).records[0].alarms == [alarm]


def test_device_rejects() -> None:
    with pytest.raises(ValueError):
        T800xDevice("12345")
    with pytest.raises(ValueError):
        T800xDevice("868120303001234").alarm(FIX, "tow")
