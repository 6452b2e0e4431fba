"""Teltonika: corpus records, public wiki examples, hand-built frames, device round trip."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols.base import (
    ChecksumError,
    Context,
    DecodeError,
    Detection,
    Fix,
    FramingError,
    ProtocolError,
)
from trackpipe.protocols.devices.teltonika import DEVICE_ALARMS, Device
from trackpipe.protocols.teltonika import CODEC, crc16

from tests import vectors
from tests.protocols import common

SAMPLES = vectors.samples("teltonika")
TCP = Context(transport="tcp")
UDP = Context(transport="udp")
IMEI = "352093086403655"
LOGIN = b"\x00\x0f" + IMEI.encode()

# Captures in Traccar's test file that are not well-formed on the wire.  Traccar feeds
# them straight to its protocol decoder (no frame decoder, no CRC check); this module
# checks length and CRC, so they raise.  Each case must raise exactly this error.
_BAD_CRC = "CRC field does not match the body (hand-edited capture); the edge dead-letters it unacked"
DEFECTS: dict[str, tuple[type[ProtocolError], str]] = {
    "teltonika-TeltonikaProtocolDecoderTest-60-14": (ChecksumError, _BAD_CRC),
    "teltonika-TeltonikaProtocolDecoderTest-78-20": (ChecksumError, _BAD_CRC),
    "teltonika-TeltonikaProtocolDecoderTest-180-3": (ChecksumError, _BAD_CRC),
    "teltonika-TeltonikaProtocolDecoderTest-102-28": (
        DecodeError,
        "data length field is 0 for a 44-byte body: no TCP framer can delimit this capture",
    ),
    "teltonika-TeltonikaProtocolDecoderTest-117-33": (
        DecodeError,
        "capture truncated: only 2 of the 4 CRC bytes are present",
    ),
    "teltonika-TeltonikaProtocolDecoderTest-138-40": (
        DecodeError,
        "data length field says 166 bytes, the capture has 33",
    ),
}
# of those, the ones whose header cannot pass detection (length field inconsistent)
UNDETECTABLE = {
    "teltonika-TeltonikaProtocolDecoderTest-102-28",
    "teltonika-TeltonikaProtocolDecoderTest-117-33",
    "teltonika-TeltonikaProtocolDecoderTest-138-40",
}

# Teltonika wiki ("Teltonika Data Sending Protocols") examples, CRCs included
WIKI_CODEC8 = bytes.fromhex(
    "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F1000060"
    "1A014E0000000000000000010000C7CF"
)
WIKI_CODEC8E = bytes.fromhex(
    "000000000000005F8E010000015FBA40B620000F0DCDE420959D30008A000006000000000006000100EF0000010011001E"
    "000100100000CBDF0002000B000000003544C875000E0000000029BFE4D10001010000110000000000000000000000000000"
    "000000010000D153"
)
WIKI_CODEC16 = bytes.fromhex(
    "000000000000005F10020000016BDBC7833000000000000000000000000000000000000B05040200010000030002000B0027"
    "0042563A00000000016BDBC7871800000000000000000000000000000000000B05040200010000030002000B00260042563A"
    "00000200005FB3"
)
WIKI_UDP = bytes.fromhex(
    "003DCAFE0105000F33353230393330383634303336353508010000016B4F815B3001000000000000000000000000000000"
    "0103021503010101425DBC000001"
)


# --- hand-built frames (independent of Device) --------------------------------------
def avl_frame(*records: bytes, codec: int = 0x08) -> bytes:
    count = bytes([len(records)])
    body = bytes([codec]) + count + b"".join(records) + count
    return b"\x00\x00\x00\x00" + struct.pack(">I", len(body)) + body + struct.pack(">I", crc16(body))


def codec8_record(priority: int = 0, event: int = 0, io1: dict[int, int] | None = None, io2=None) -> bytes:
    """Codec 8 record at 2024-05-01 12:00:00 UTC, 54.6876 N / 25.2799 E, 8 satellites, 50 km/h."""
    io1 = io1 or {}
    io2 = io2 or {}
    head = struct.pack(">QBiihHBH", 1714564800000, priority, 252799000, 546876000, 120, 90, 8, 50)
    groups = bytes([len(io1)]) + b"".join(bytes([k, v]) for k, v in io1.items())
    groups += bytes([len(io2)]) + b"".join(bytes([k]) + struct.pack(">H", v) for k, v in io2.items())
    return head + bytes([event, len(io1) + len(io2)]) + groups + b"\x00\x00"


# --- public wiki examples -------------------------------------------------------------
def test_wiki_codec8() -> None:
    info = CODEC.inspect(WIKI_CODEC8, "tcp")
    assert (info.kind, info.reply) == ("position", b"\x00\x00\x00\x01")
    (rec,) = CODEC.decode(WIKI_CODEC8, TCP).records
    assert rec.fix_time == datetime(2019, 6, 10, 10, 4, 46, tzinfo=UTC)
    assert rec.valid is False  # 0 satellites: last known (here none) coordinates
    assert rec.power == pytest.approx(24.079)
    assert rec.attributes["io21"] == "3" and rec.attributes["rssi"] == "3"
    assert rec.attributes["in1"] == "true"


def test_wiki_codec8_extended() -> None:
    (rec,) = CODEC.decode(WIKI_CODEC8E, TCP).records
    assert rec.fix_time == datetime(2017, 11, 14, 11, 18, 44, tzinfo=UTC)
    assert (rec.latitude, rec.longitude) == (pytest.approx(54.6676016), pytest.approx(25.2562916))
    assert (rec.altitude, rec.satellites, rec.valid) == (138.0, 6, True)
    assert rec.ignition is False and rec.odometer == 52191
    assert rec.attributes["io17"] == "30"
    assert rec.attributes["io256"] == "00" * 17  # the variable-length element, as hex


def test_wiki_codec16() -> None:
    assert CODEC.inspect(WIKI_CODEC16, "tcp").reply == b"\x00\x00\x00\x02"
    decoded = CODEC.decode(WIKI_CODEC16, TCP)
    assert decoded.kind == "batch"
    assert [r.attributes["generationType"] for r in decoded.records] == ["5", "5"]
    assert decoded.records[0].power == pytest.approx(22.074)


def test_wiki_udp() -> None:
    assert CODEC.detect(WIKI_UDP, "udp") is Detection.YES
    info = CODEC.inspect(WIKI_UDP, "udp")
    assert (info.kind, info.device_id, info.reply) == ("position", IMEI, bytes.fromhex("0005CAFE010501"))
    decoded = CODEC.decode(WIKI_UDP, UDP)
    assert decoded.device_id == IMEI
    assert decoded.records[0].fix_time == datetime(2019, 6, 13, 6, 23, 26, tzinfo=UTC)


# --- hand-built frames ----------------------------------------------------------------
def test_login_and_ping() -> None:
    assert CODEC.detect(LOGIN, "tcp") is Detection.YES
    assert CODEC.detect(LOGIN[:9], "tcp") is Detection.MORE
    assert CODEC.detect(b"\x00\x0f35209308640365x", "tcp") is Detection.NO
    info = CODEC.inspect(LOGIN, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("login", IMEI, b"\x01")
    ping = CODEC.inspect(b"\xff", "tcp")
    assert (ping.kind, ping.reply) == ("heartbeat", None)
    assert CODEC.decode(b"\xff", TCP).records == []


@pytest.mark.parametrize(
    ("priority", "io", "alarm"),
    [
        (2, {}, "sos"),
        (1, {252: 1}, "powerCut"),
        (1, {255: 95}, "overspeed"),
        (1, {253: 1}, "hardAcceleration"),
        (1, {253: 2}, "hardBraking"),
        (1, {253: 3}, "hardCornering"),
        (1, {246: 1}, "tow"),
        (1, {247: 1}, "accident"),
        (1, {249: 1}, "jamming"),
        (1, {251: 1}, "idle"),
        (1, {236: 1}, "general"),
        (1, {155: 1}, "geofenceEnter"),
        (1, {155: 0}, "geofenceExit"),
    ],
)
def test_alarm_frames(priority: int, io: dict[int, int], alarm: str) -> None:
    event = next(iter(io), 0)
    decoded = CODEC.decode(avl_frame(codec8_record(priority, event, io)), TCP)
    assert decoded.kind == "alarm"
    assert decoded.records[0].alarms == [alarm]


def test_cleared_events_raise_no_alarm() -> None:
    decoded = CODEC.decode(avl_frame(codec8_record(1, 252, {252: 0, 249: 0})), TCP)
    assert (decoded.kind, decoded.records[0].alarms) == ("position", [])


def test_normalized_io() -> None:
    frame = avl_frame(
        codec8_record(io1={239: 1, 240: 1, 113: 87, 21: 4, 1: 1}, io2={66: 12458, 67: 4023, 16: 5000, 182: 12})
    )
    (rec,) = CODEC.decode(frame, TCP).records
    assert (rec.latitude, rec.longitude) == (pytest.approx(54.6876), pytest.approx(25.2799))
    assert (rec.speed, rec.course, rec.altitude, rec.satellites) == (50.0, 90.0, 120.0, 8)
    assert (rec.ignition, rec.battery_level, rec.power, rec.battery, rec.odometer) == (True, 87, 12.458, 4.023, 5000)
    attrs = rec.attributes
    assert (attrs["motion"], attrs["rssi"], attrs["in1"], attrs["hdop"]) == ("true", "4", "true", "1.2")
    assert all(f"io{i}" in attrs for i in (239, 240, 113, 21, 1, 66, 67, 16, 182))


def test_buffered_records_are_not_archive() -> None:
    # the protocol has no buffered flag: late records decode like live ones
    decoded = CODEC.decode(avl_frame(codec8_record(), codec8_record()), TCP)
    assert decoded.kind == "batch" and not any(r.archive for r in decoded.records)
    assert CODEC.inspect(avl_frame(codec8_record(), codec8_record()), "tcp").reply == b"\x00\x00\x00\x02"


def test_bad_crc_is_rejected() -> None:
    frame = bytearray(avl_frame(codec8_record()))
    frame[-1] ^= 0x01
    with pytest.raises(ChecksumError):
        CODEC.inspect(bytes(frame), "tcp")
    with pytest.raises(ChecksumError):
        CODEC.decode(bytes(frame), TCP)


def test_count_mismatch_and_unknown_codec() -> None:
    frame = bytearray(avl_frame(codec8_record(), codec8_record()))
    frame[-5] = 1  # second count
    frame[-4:] = struct.pack(">I", crc16(bytes(frame[8:-4])))
    with pytest.raises(DecodeError, match="counts differ"):
        CODEC.inspect(bytes(frame), "tcp")
    with pytest.raises(DecodeError, match="codec 0x11 not supported"):
        CODEC.decode(avl_frame(codec8_record(), codec=0x11), TCP)


def test_codec12_response_is_status_without_ack() -> None:
    text = b"Hello\r\n"
    body = b"\x0c\x01\x06" + struct.pack(">I", len(text)) + text + b"\x01"
    frame = b"\x00" * 4 + struct.pack(">I", len(body)) + body + struct.pack(">I", crc16(body))
    info = CODEC.inspect(frame, "tcp")
    assert (info.kind, info.reply) == ("status", None)
    (rec,) = CODEC.decode(frame, TCP).records
    assert rec.attributes["result"] == "Hello" and not rec.has_position


def test_codec14_carries_imei() -> None:
    text = b"getver"
    payload = bytes.fromhex("0" + IMEI) + text
    body = b"\x0e\x01\x06" + struct.pack(">I", len(payload)) + payload + b"\x01"
    frame = b"\x00" * 4 + struct.pack(">I", len(body)) + body + struct.pack(">I", crc16(body))
    decoded = CODEC.decode(frame, TCP)
    assert decoded.device_id == IMEI and decoded.records[0].attributes["result"] == "getver"


# --- framer -------------------------------------------------------------------------
FRAMES = [LOGIN, avl_frame(codec8_record()), b"\xff", avl_frame(codec8_record(), codec8_record())]
STREAM = b"".join(FRAMES)


def _frames(framer, data: bytes) -> list[bytes]:
    framer.feed(data)
    out = []
    while (frame := framer.next_frame()) is not None:
        out.append(frame)
    return out


def test_framer_whole_and_byte_by_byte() -> None:
    whole = _frames(CODEC.new_framer(), STREAM)
    assert whole == FRAMES
    framer = CODEC.new_framer()
    trickled = [f for i in range(len(STREAM)) for f in _frames(framer, STREAM[i : i + 1])]
    assert trickled == whole
    assert framer.buffered == 0


def test_framer_skips_garbage() -> None:
    common.garbage_is_skipped(CODEC, b"GET /", LOGIN)


def test_framer_drops_hostile_garbage_in_linear_steps() -> None:
    framer = CODEC.new_framer()
    framer.feed(b"\xaa\x00\x55" * 2000 + LOGIN)
    dropped = 0
    while True:
        try:
            frame = framer.next_frame()
        except FramingError as err:
            assert not err.fatal
            dropped += len(err.discarded)
            continue
        break
    assert (frame, dropped) == (LOGIN, 6000)


def test_framer_rejects_oversized() -> None:
    common.oversized_is_fatal(CODEC, b"\x00\x00\x00\x00" + struct.pack(">I", CODEC.max_frame))


# --- device ---------------------------------------------------------------------------
FIX = Fix(
    time=datetime(2024, 5, 1, 12, 0, 7, tzinfo=UTC),
    latitude=-33.8688197,
    longitude=151.2092955,
    speed=87.0,
    course=271.0,
    altitude=58.0,
    satellites=11,
)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
@pytest.mark.parametrize("codec", [0x08, 0x8E])
def test_device_round_trip(transport: str, codec: int) -> None:
    device = Device(IMEI, transport, codec=codec)
    ctx = Context(transport=transport)
    for frame in device.login():
        info = CODEC.inspect(frame, transport)
        assert info.device_id == IMEI and device.check_reply(frame, info.reply or b"")
    frame = device.position(FIX)
    assert CODEC.detect(frame, transport) is Detection.YES
    info = CODEC.inspect(frame, transport)
    assert device.expects_reply(frame) and device.check_reply(frame, info.reply or b"")
    (rec,) = CODEC.decode(frame, ctx).records
    assert rec.fix_time == FIX.time and rec.valid
    assert (rec.latitude, rec.longitude) == (pytest.approx(FIX.latitude, abs=1e-6), pytest.approx(FIX.longitude))
    assert (rec.speed, rec.course, rec.altitude, rec.satellites) == (87.0, 271.0, 58.0, 11)
    heartbeat = device.heartbeat()
    assert CODEC.inspect(heartbeat, transport).kind == "heartbeat"
    assert device.check_reply(heartbeat, CODEC.inspect(heartbeat, transport).reply or b"")


def test_device_batch_and_alarms() -> None:
    device = Device(IMEI)
    fixes = [Fix(time=datetime(2024, 5, 1, 12, 0, i, tzinfo=UTC), latitude=1.0, longitude=2.0) for i in range(40)]
    frames = device.batch(fixes)
    records = [r for f in frames for r in CODEC.decode(f, TCP).records]
    assert [r.fix_time for r in records] == [f.time for f in fixes]
    for frame in frames:
        assert device.check_reply(frame, CODEC.inspect(frame, "tcp").reply or b"")
    for alarm in sorted(DEVICE_ALARMS):
        assert alarm in CODEC.decode(device.alarm(FIX, alarm), TCP).records[0].alarms
    for alarm in ("vibration", "lowBattery"):
        with pytest.raises(ValueError, match="cannot express"):
            device.alarm(FIX, alarm)


def test_check_reply_rejects_wrong_answers() -> None:
    device = Device(IMEI, "udp")
    frame = device.position(FIX)
    assert not device.check_reply(frame, b"\x00\x00\x00\x01")
    tcp = Device(IMEI)
    assert not tcp.check_reply(tcp.position(FIX), b"\x00\x00\x00\x02")
    assert not tcp.check_reply(tcp.login()[0], b"\x00")


# --- robustness -----------------------------------------------------------------------
def _survives(data: bytes) -> None:
    """detect never raises; inspect and decode raise nothing but ProtocolError."""
    for transport, ctx in (("tcp", TCP), ("udp", UDP)):
        CODEC.detect(data, transport)
        common.decode_or_protocol_error(CODEC, data, ctx, transport)


def test_mutated_bodies_with_valid_crc() -> None:
    # random edits behind a recomputed CRC reach the record parsers, not only the envelope checks
    rng = random.Random(27)
    frames = [vectors.payload(r) for r in SAMPLES] + [WIKI_CODEC8, WIKI_CODEC8E, WIKI_CODEC16]
    for data in (f for f in frames if f[:4] == b"\x00\x00\x00\x00" and len(f) > 16):
        for _ in range(40):
            body = bytearray(data[8:-4])
            for _ in range(rng.randrange(1, 4)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            frame = b"\x00" * 4 + struct.pack(">I", len(body)) + body + struct.pack(">I", crc16(bytes(body)))
            _survives(frame)


# --- model-gated IO, 8 Extended variable elements, extended option, message texts ------------
def codec8e_record(io2: dict[int, int], variable: dict[int, bytes], io16: dict[int, bytes] | None = None) -> bytes:
    """Codec 8 Extended record (2-byte ids and counts), same fix as `codec8_record`."""
    head = struct.pack(">QBiihHBH", 1714564800000, 0, 252799000, 546876000, 120, 90, 8, 50)
    total = len(io2) + len(variable) + len(io16 or {})
    out = head + struct.pack(">HH", 0, total)
    out += struct.pack(">H", 0)  # 1-byte group
    out += struct.pack(">H", len(io2)) + b"".join(struct.pack(">HH", k, v) for k, v in io2.items())
    out += struct.pack(">HH", 0, 0)  # 4- and 8-byte groups
    if io16 is not None:
        out += struct.pack(">H", len(io16)) + b"".join(struct.pack(">H", k) + v for k, v in io16.items())
    out += struct.pack(">H", len(variable))
    out += b"".join(struct.pack(">HH", k, len(v)) + v for k, v in variable.items())
    return out


def test_model_gated_io_elements() -> None:
    frame = avl_frame(codec8e_record({10800: 0xFB5D, 113: 77, 36: 1500}, {}), codec=0x8E)
    fmb = CODEC.decode(frame, Context(options={"model": "FMB130"})).records[0]
    assert (fmb.attributes["eyeTemp1"], fmb.attributes["rpm"]) == ("-11.87", "1500")
    plain = CODEC.decode(frame, TCP).records[0]
    assert "eyeTemp1" not in plain.attributes and plain.attributes["io10800"] == str(0xFB5D)


def test_variable_length_elements() -> None:
    tag = bytes.fromhex("0106aabbccddeeff") + bytes.fromhex("0202806d") + bytes.fromhex("0e020bd6")
    tags = b"\x01" + bytes([len(tag)]) + tag
    beacon = bytes.fromhex("0112") + bytes(16) + bytes.fromhex("00010002c40172")
    variable = {256: b"WVWZZZ1JZXW000001", 281: b"P0101,C0300", 548: tags, 385: b"\x01" + beacon[1:]}
    rec = CODEC.decode(avl_frame(codec8e_record({}, variable), codec=0x8E), TCP).records[0]
    assert rec.attributes["vin"] == "WVWZZZ1JZXW000001"
    assert rec.attributes["dtcs"] == "P0101 C0300"
    assert (rec.attributes["tag1Id"], rec.attributes["tag1Voltage"], rec.attributes["tag1Battery"]) == (
        "aabbccddeeff",
        "3090",
        "3030",
    )
    assert (rec.attributes["beacon1Major"], rec.attributes["beacon1Rssi"], rec.attributes["beacon1Battery"]) == (
        "1",
        "-60",
        "3.7",
    )


def test_extended_option_reads_the_16_byte_group() -> None:
    frame = avl_frame(codec8e_record({}, {}, {500: bytes(range(16))}), codec=0x8E)
    rec = CODEC.decode(frame, Context(options={"extended": "true"})).records[0]
    assert rec.attributes["io500"] == bytes(range(16)).hex()
    with pytest.raises(DecodeError):
        CODEC.decode(frame, TCP)  # without the option the group is misread and the body does not add up


def _message_frame(codec: int, kind: int, payload: bytes) -> bytes:
    body = bytes([codec, 1, kind]) + struct.pack(">I", len(payload)) + payload + b"\x01"
    return b"\x00\x00\x00\x00" + struct.pack(">I", len(body)) + body + struct.pack(">I", crc16(body))


def test_message_texts_driver_and_axles() -> None:
    gtsl = _message_frame(0x0D, 6, struct.pack(">I", 1680555729) + b"GTSL|6|1|0|12749884|1|\r\n")
    rec = CODEC.decode(gtsl, TCP).records[0]
    assert rec.attributes["driverUniqueId"] == "12749884"
    assert rec.fix_time == datetime(2023, 4, 3, 21, 2, 9, tzinfo=UTC)
    axles = "UUUUww" + ";".join(str(v) for v in range(1, 13)) + ";SSS"
    rec = CODEC.decode(_message_frame(0x0C, 6, axles.encode()), TCP).records[0]
    assert (rec.attributes["axle1"], rec.attributes["loadTruck"], rec.attributes["totalTrailer"]) == (
        "1.0",
        "9.0",
        "12.0",
    )


def test_gh3000_parameters() -> None:
    record = struct.pack(">I", 500_000_000) + bytes([0x02, 3, 1, 80, 222, 1, 20, 12])  # 1-byte IO group only
    rec = CODEC.decode(avl_frame(record, codec=0x07), TCP).records[0]
    assert (rec.battery_level, rec.alarms, rec.attributes["hdop"], rec.attributes["io1"]) == (
        80.0,
        ["sos"],
        "1.2",
        "80",
    )
