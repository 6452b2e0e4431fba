"""GT06: hand-assembled frames, framing, device round trip (corpus records: tests/test_corpus.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import gt06
from trackpipe.protocols.base import ChecksumError, Context, Detection, Fix, FramingError, ProtocolError
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from tests.protocols import common

CODEC = gt06.CODEC


def _frames(data: bytes) -> tuple[list[bytes], int]:
    framer = CODEC.new_framer()
    framer.feed(data)
    frames = []
    while (frame := framer.next_frame()) is not None:
        frames.append(frame)
    return frames, framer.buffered


# ---------------------------------------------------------------- hand-assembled frames


def reference_crc(data: bytes) -> int:
    """Textbook bitwise CRC-16/X-25 (reflected 0x1021, init and xorout 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def packet(type_: int, content: bytes, serial: int = 0x0102, *, long: bool = False) -> bytes:
    length = len(content) + 5
    head = b"\x79\x79" + length.to_bytes(2, "big") if long else b"\x78\x78" + bytes([length])
    body = head + bytes([type_]) + content + serial.to_bytes(2, "big")
    return body + reference_crc(body[2:]).to_bytes(2, "big") + b"\r\n"


LOGIN = bytes.fromhex("78780d01012345678901234500018cdd0d0a")  # PROTOCOLS.md appendix / vendor document
GPS_BLOCK = bytes.fromhex("0f0a140e150bc505e51e780293a9e8541400")  # 2015-10-20 14:21:11
LBS_BLOCK = bytes.fromhex("01cc00287d001fb8")
STATUS_AND_LEVELS = bytes([0x46, 0x04, 0x03])  # GPS on, charging, ACC on; voltage level 4; GSM 3


def test_reference_crc_check_value() -> None:
    assert reference_crc(b"123456789") == 0x906E == gt06.crc_x25(b"123456789")


def test_login_reply_and_imei() -> None:
    info = CODEC.inspect(LOGIN, "tcp")
    assert (info.kind, info.device_id) == ("login", "123456789012345")
    assert info.reply == bytes.fromhex("787805010001d9dc0d0a")  # the vendor document's login response
    decoded = CODEC.decode(LOGIN, Context())
    assert (decoded.kind, decoded.device_id, decoded.records) == ("login", "123456789012345", [])


def test_detection_of_login_prefixes_and_topin() -> None:
    assert CODEC.detect(LOGIN, "tcp") is Detection.YES
    assert all(CODEC.detect(LOGIN[:n], "tcp") is Detection.MORE for n in range(len(LOGIN)))
    assert CODEC.detect(bytes.fromhex("78780d0103593390754169634d0d0a"), "tcp") is Detection.NO  # Topin login
    assert CODEC.detect(LOGIN[:-4] + b"\x00\x00\r\n", "tcp") is Detection.NO  # bad CRC
    assert CODEC.detect(b"\x78\x78\x03\x69", "tcp") is Detection.NO  # too short for serial + CRC
    assert CODEC.detect(b"$$", "tcp") is Detection.NO


def test_heartbeat_status_and_reply() -> None:
    frame = packet(0x13, STATUS_AND_LEVELS + b"\x00\x02", serial=0x0007)
    info = CODEC.inspect(frame, "tcp")
    assert info.kind == "heartbeat"
    assert info.reply == packet(0x13, b"", serial=0x0007)
    (rec,) = CODEC.decode(frame, Context()).records
    assert (rec.ignition, rec.battery_level, rec.attributes["rssi"], rec.attributes["charge"]) == (
        True,
        66,
        "3",
        "true",
    )
    assert not rec.has_position and rec.alarms == []


@pytest.mark.parametrize(
    ("code", "alarm"),
    [
        (0x01, "sos"),
        (0x02, "powerCut"),
        (0x03, "vibration"),
        (0x04, "geofenceEnter"),
        (0x05, "geofenceExit"),
        (0x06, "overspeed"),
        (0x0E, "lowBattery"),
        (0x13, "tampering"),
        (0x18, "removing"),
        (0x26, "hardAcceleration"),
        (0x1A, "hardBraking"),
        (0x2C, "accident"),
    ],
)
def test_alarm_packet(code: int, alarm: str) -> None:
    frame = packet(0x16, GPS_BLOCK + b"\x09" + LBS_BLOCK + STATUS_AND_LEVELS + bytes([code, 0x02]))
    info = CODEC.inspect(frame, "tcp")
    assert info.kind == "alarm" and info.reply == packet(0x16, b"")
    decoded = CODEC.decode(frame, Context())
    (rec,) = decoded.records
    assert rec.alarms == [alarm]
    assert rec.fix_time == datetime(2015, 10, 20, 14, 21, 11, tzinfo=UTC)
    assert (rec.latitude, rec.longitude) == (pytest.approx(54.94535, abs=1e-5), pytest.approx(24.01762, abs=1e-5))
    assert (rec.valid, rec.speed, rec.satellites, rec.attributes["mcc"]) == (True, 84.0, 5, "460")


def test_status_bits_alarm_and_hemispheres() -> None:
    south_west = GPS_BLOCK[:-2] + (0x0800 | 0x005A).to_bytes(2, "big")  # west, south, course 90, no fix
    frame = packet(0x16, south_west + b"\x09" + LBS_BLOCK + bytes([0x20, 0x06, 0x04, 0x00, 0x02]))
    (rec,) = CODEC.decode(frame, Context()).records
    assert rec.alarms == ["sos"]  # terminal info bits 3-5 = 100
    assert (rec.latitude < 0, rec.longitude < 0, rec.course, rec.valid, rec.battery_level) == (
        True,
        True,
        90,
        False,
        100,
    )


@pytest.mark.parametrize(("flag", "kind"), [(0, "position"), (1, "batch")])
def test_reupload_flag_marks_archive(flag: int, kind: str) -> None:
    frame = packet(0x22, GPS_BLOCK + LBS_BLOCK + bytes([1, 0, flag]))
    info = CODEC.inspect(frame, "tcp")
    decoded = CODEC.decode(frame, Context())
    assert info.kind == decoded.kind == kind
    assert info.reply == packet(0x22, b"")
    (rec,) = decoded.records
    assert (rec.archive, rec.ignition, rec.attributes["event"]) == (bool(flag), True, "0")


def test_info_transfer_power() -> None:
    (rec,) = CODEC.decode(packet(0x94, b"\x04\xeb"), Context()).records
    assert rec.power == pytest.approx(12.59)
    (rec,) = CODEC.decode(packet(0x94, b"\x0b\x02\xe3", long=True), Context()).records
    assert rec.power == pytest.approx(7.39)


def test_time_request_needs_the_edge_clock() -> None:
    request = bytes.fromhex("7878058a000688290d0a")  # corpus sample
    info = CODEC.inspect(request, "tcp")
    assert info.reply is None and gt06.is_time_request(request)
    now = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)
    assert gt06.time_reply(now) == packet(0x8A, bytes([24, 3, 5, 6, 7, 8]), serial=0)


def test_address_request_gets_extended_reply() -> None:
    info = CODEC.inspect(packet(0x2A, GPS_BLOCK), "tcp")
    assert info.reply == packet(0x97, b"\x0b" + bytes(4) + b"NA&&NA&&0##", serial=0, long=True)


def test_extended_frames_reply_per_type() -> None:
    assert CODEC.inspect(packet(0x94, b"\x0b\x01", long=True), "tcp").reply is None
    modular = packet(0x70, bytes.fromhex("0009000107"), serial=9, long=True)
    assert CODEC.inspect(modular, "tcp").reply == packet(0x70, b"", serial=9)


def test_bad_crc_is_not_acked() -> None:
    frame = bytearray(packet(0x13, STATUS_AND_LEVELS + b"\x00\x02"))
    frame[-3] ^= 0xFF
    with pytest.raises(ChecksumError):
        CODEC.inspect(bytes(frame), "tcp")


def test_legacy_wifi_frame_is_acked_with_its_time() -> None:
    frame = bytes.fromhex(
        "787800691709261259400700cc0400d376714600d37a3d5000d37a3c5000d393505a00d3765d5a00d376735a00d32e6b640d0a"
    )
    info = CODEC.inspect(frame, "tcp")
    assert info.reply == bytes.fromhex("78780069170926125940") + b"\r\n"
    (rec,) = CODEC.decode(frame, Context()).records
    assert rec.fix_time == datetime(2017, 9, 26, 12, 59, 40, tzinfo=UTC) and not rec.has_position


# ---------------------------------------------------------------- framing


STREAM = [
    LOGIN,
    packet(0x13, STATUS_AND_LEVELS + b"\x00\x02"),
    bytes.fromhex("7878121011091c0b1e2e98058507f80097a6ac03344a0d0a"),  # legacy: no serial/CRC
    packet(0x94, b"\x0b\x02\xe3", long=True),
    packet(0x22, GPS_BLOCK + LBS_BLOCK + b"\x01\x00\x00"),
]


def test_byte_by_byte_equals_all_at_once() -> None:
    data = b"".join(STREAM)
    assert _frames(data) == (STREAM, 0)
    framer = CODEC.new_framer()
    got = []
    for i in range(len(data)):
        framer.feed(data[i : i + 1])
        while (frame := framer.next_frame()) is not None:
            got.append(frame)
    assert got == STREAM and framer.buffered == 0


def test_garbage_before_a_frame_is_reported_and_skipped() -> None:
    framer = CODEC.new_framer()
    framer.feed(b"\x01\x02abc\x79" + LOGIN)
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.discarded == b"\x01\x02abc\x79" and not err.value.fatal
    assert framer.next_frame() == LOGIN


def test_trailing_header_byte_is_kept() -> None:
    framer = CODEC.new_framer()
    framer.feed(b"junk\x78")
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.discarded == b"junk"
    framer.feed(LOGIN[1:])
    assert framer.next_frame() == LOGIN


def test_oversized_frame_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"\x79\x79\xff\xff\x70")


def test_legacy_frame_without_end_is_fatal_past_max_frame() -> None:
    framer = CODEC.new_framer()
    framer.feed(b"\x78\x78\x00\x69" + b"\x00" * CODEC.max_frame)
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.fatal


def test_udp_datagram_with_several_frames() -> None:
    assert CODEC.split_datagram(b"".join(STREAM)) == STREAM
    with pytest.raises(FramingError):
        CODEC.split_datagram(LOGIN[:-1])
    with pytest.raises(FramingError):
        CODEC.split_datagram(b"hello" + LOGIN)


# ---------------------------------------------------------------- device side

IMEI = "359710045714367"
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.868820, 151.209290, speed=57.0, course=123.0, satellites=9)


def test_device_login_and_heartbeat() -> None:
    device = Gt06Device(IMEI)
    (login,) = device.login()
    info = CODEC.inspect(login, "tcp")
    assert (info.kind, info.device_id) == ("login", IMEI)
    assert device.expects_reply(login) and device.check_reply(login, info.reply or b"")
    heartbeat = device.heartbeat()
    reply = CODEC.inspect(heartbeat, "tcp").reply or b""
    assert device.expects_reply(heartbeat) and device.check_reply(heartbeat, reply)
    assert not device.check_reply(heartbeat, CODEC.inspect(login, "tcp").reply or b"")
    assert CODEC.decode(heartbeat, Context()).records[0].battery_level == 100
    with pytest.raises(ValueError):
        Gt06Device("12345")


def test_device_position_round_trip() -> None:
    device = Gt06Device(IMEI)
    frame = device.position(FIX)
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert not device.expects_reply(frame)
    decoded = CODEC.decode(frame, Context())
    (rec,) = decoded.records
    assert decoded.kind == "position" and not rec.archive
    assert rec.fix_time == FIX.time and rec.valid
    assert rec.latitude == pytest.approx(FIX.latitude, abs=1e-5)
    assert rec.longitude == pytest.approx(FIX.longitude, abs=1e-5)
    assert (rec.speed, rec.course, rec.satellites) == (57.0, 123.0, 9)


def test_device_batch_is_archive() -> None:
    frames = Gt06Device(IMEI).batch([FIX, FIX])
    for frame in frames:
        assert CODEC.inspect(frame, "tcp").kind == "batch"
        decoded = CODEC.decode(frame, Context())
        assert decoded.kind == "batch" and decoded.records[0].archive


@pytest.mark.parametrize("alarm", ["sos", "powerCut", "lowBattery", "vibration", "overspeed", "geofenceExit"])
def test_device_alarm_round_trip(alarm: str) -> None:
    device = Gt06Device(IMEI)
    frame = device.alarm(FIX, alarm)
    info = CODEC.inspect(frame, "tcp")
    assert info.kind == "alarm" and device.expects_reply(frame) and device.check_reply(frame, info.reply or b"")
    (rec,) = CODEC.decode(frame, Context()).records
    assert rec.alarms == [alarm] and rec.latitude == pytest.approx(FIX.latitude, abs=1e-5)
    with pytest.raises(ValueError):
        device.alarm(FIX, "teleport")


# ---------------------------------------------------------------- robustness


@pytest.mark.parametrize("model", ["LW4G-4B", "SEEWORLD", "R11", "XT40", "VL103", "QH302R"])
def test_random_bytes_under_model_options(model: str) -> None:
    rng = random.Random(model)
    for type_ in (0x13, 0x16, 0x22, 0x25, 0x12):
        for _ in range(60):
            frame = packet(type_, rng.randbytes(rng.randrange(0, 60)))
            try:
                CODEC.decode(frame, Context(options={"model": model}))
            except ProtocolError:
                pass


# ---------------------------------------------------------------- model layouts and Jimi IoT 4G types


def test_trx16i_location_with_rfid() -> None:
    # length byte 0x35 marks the TRX16i layout of 0x36: GPS, LBS with a 4-byte cell id, trailer, RFID
    cell = bytes.fromhex("01cc0025ef0540e88c")
    tail = bytes.fromhex("01000100000064051428000006c3000001453f9201")
    frame = packet(0x36, GPS_BLOCK + cell + tail)
    assert frame[2] == 0x35
    (rec,) = CODEC.decode(frame, Context()).records
    assert rec.attributes["driverUniqueId"] == "c3000001453f9201"
    assert rec.attributes["cid"] == str(0x0540E88C)
    assert (rec.ignition, rec.odometer, rec.power, rec.battery) == (True, 100.0, 13.0, 4.0)
    assert rec.attributes["hours"] == str(6 * 60_000)


def test_trx16i_status_packet_event_and_rfid() -> None:
    body = GPS_BLOCK + bytes.fromhex("0801cc0025ef40e88c") + bytes.fromhex("450604ea01") + bytes(8)
    body += bytes(0x2D - 5 - len(body))
    (rec,) = CODEC.decode(packet(0x16, body), Context()).records
    assert rec.attributes["event"] == "234"
    assert "driverUniqueId" not in rec.attributes  # all-zero RFID


def test_seeworld_status_steps() -> None:
    body = bytes.fromhex("00000005321e020000000002584f0101") + bytes(3)
    frame = packet(0xA3, body)
    assert frame[2] == 0x18
    (rec,) = CODEC.decode(frame, Context()).records
    assert rec.attributes["steps"] == "600"
    assert (rec.power, rec.battery_level, rec.attributes["charge"], rec.attributes["motion"]) == (
        30.0,
        79.0,
        "true",
        "true",
    )


def test_jimi_status_and_alarm_module() -> None:
    modules = bytes.fromhex("0018020190006a0155")
    (rec,) = CODEC.decode(packet(0x36, bytes.fromhex("4604030100") + modules), Context()).records
    assert (rec.battery, rec.battery_level, rec.alarms) == (4.0, 85.0, ["sos"])
    cell = bytes.fromhex("0001cc00287d001fb840")
    body = GPS_BLOCK + cell + bytes.fromhex("4604030600") + modules
    (rec,) = CODEC.decode(packet(0x39, body), Context()).records
    assert rec.alarms == ["overspeed"] and rec.latitude == pytest.approx(54.94535, abs=1e-5)
    assert rec.attributes["lac"] == str(0x287D)


def test_ibutton_bluetooth_clock_wifi4_bms() -> None:
    body = bytes(8) + GPS_BLOCK + bytes.fromhex("01cc00287d0000001f") + bytes.fromhex("000000010002")
    (rec,) = CODEC.decode(packet(0x61, body), Context()).records
    assert rec.attributes["driverUniqueId"] == str((1 << 16) | 2) and rec.valid
    clock = bytes.fromhex("140a060e2208c4aabbccddeeff") + bytes(16) + bytes.fromhex("0001000201680c")
    (rec,) = CODEC.decode(packet(0xB2, clock), Context()).records
    assert (rec.attributes["tagMac"], rec.attributes["tagBattery"], rec.attributes["clock"]) == (
        "aabbccddeeff",
        "3.6",
        "3",
    )
    assert rec.attributes["rssi"] == "-60" and rec.fix_time == datetime(2020, 10, 6, 14, 34, 8, tzinfo=UTC)
    (rec,) = CODEC.decode(packet(0xF3, bytes.fromhex("201206103042010000aabbccddeeff")), Context()).records
    assert rec.attributes["wifiCount"] == "1"
    bms = bytes(8) + (1_600_000_000).to_bytes(4, "big") + bytes(7) + (2981).to_bytes(2, "big") + bytes(2)
    bms += (52000).to_bytes(2, "big") + bytes(2 + 28 + 4) + b"BARCODE".ljust(16) + bytes(2) + b"MAKER".ljust(16)
    bms += bytes(12)
    (rec,) = CODEC.decode(packet(0x40, bms), Context()).records
    assert (rec.battery, rec.attributes["batteryTemp"], rec.attributes["manufacturer"]) == (52.0, "25.0", "MAKER")


def test_info_fuel_sensor_and_obd_text() -> None:
    fuel = b"\x0d!AIOIL,1,20.5,23.7,V1.2,0000,56.3,1,12,AB"
    (rec,) = CODEC.decode(packet(0x94, fuel, long=True), Context()).records
    assert (rec.attributes["temp1"], rec.attributes["fuel"]) == ("23.7", "56.3")
    obd = bytes.fromhex("140a060e220801") + b"40=1388,54=2EE0,74=WVWZZZ1JZXW000001" + bytes(12)
    frame = packet(0x8C, obd)
    (rec,) = CODEC.decode(frame, Context()).records
    assert (rec.odometer, rec.attributes["rpm"], rec.attributes["vin"], rec.ignition) == (
        50.0,
        "120.0",
        "WVWZZZ1JZXW000001",
        True,
    )
    assert CODEC.inspect(frame, "tcp").kind == "status"


def test_lbs_address_request_cell_only() -> None:
    (rec,) = CODEC.decode(packet(0xA7, LBS_BLOCK), Context()).records
    assert not rec.has_position and (rec.attributes["mcc"], rec.attributes["lac"]) == ("460", str(0x287D))
