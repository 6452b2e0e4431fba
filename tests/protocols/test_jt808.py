"""JT/T 808: corpus samples, hand-built frames, replies, framing, device round trip."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import reduce
from operator import xor
from typing import Any

import pytest
from trackpipe.protocols import jt808
from trackpipe.protocols.base import (
    ChecksumError,
    Context,
    DecodeError,
    Detection,
    Fix,
    FramingError,
    Record,
)
from trackpipe.protocols.devices.jt808 import Device as Jt808Device

from tests import vectors
from tests.protocols import common

CODEC = jt808.CODEC
SAMPLES = vectors.samples("jt808")
FRAME_RECORDS = [r for r in SAMPLES if r["kind"] == "frame"]
DECODER_RECORDS = [r for r in SAMPLES if r["kind"] != "frame"]

# Corpus records (by line of Jt808ProtocolDecoderTest) whose frames are broken:
# Traccar never checks the XOR or the length field, we dead-letter such frames.
BROKEN = {
    142: "XOR checksum of the sample is wrong (86, frame says 1b)",
    328: "sample truncated: length field says 50 body bytes, frame has 40 (and XOR is wrong)",
    409: "XOR checksum of the sample is wrong (9a, frame says 9b)",
    415: "XOR checksum of the sample is wrong (2d, frame says ef)",
    425: "length field says 122 body bytes, frame has 107",
}
_LOCK = "Jointech lock messages 0x5501/0x5502: body layout not implemented (framed, acknowledged, no records)"
_TRANSPARENT = "0x0900 transparent data is vendor-specific; not decoded"
#: expectations this module does not implement (vendor items, Traccar model overrides)
NOT_IMPLEMENTED = {
    85: "tire pressure: vendor additional item 0x77 not implemented",
    89: f"driverUniqueId from GTSL text: {_TRANSPARENT}",
    100: f"fuelUsed from $OBD-RT text: {_TRANSPARENT}",
    114: "temp1 from the AOVX vendor item 0xF6 (Traccar model-specific) not implemented",
    138: _LOCK,
    145: _LOCK,
    152: "lock2Battery: vendor lock list item 0x63 not implemented",
    163: f"dtcs: {_TRANSPARENT}",
    183: _LOCK,
    187: f"position inside transparent data: {_TRANSPARENT}",
    203: "hardAcceleration comes from a vendor additional item; the JT808 alarm flags are 0",
    214: "lock1Locked: vendor lock item 0xD5 not implemented",
    218: f"position inside transparent data: {_TRANSPARENT}",
    228: "dtcs: vendor OBD item 0xA0 (DTC list) not implemented",
    259: _LOCK,
    271: _LOCK,
    274: _LOCK,
    285: "battery from the vendor lock text item 0x33 (*M00...) not implemented",
    364: "imei: vendor item 0xF6 not implemented",
    381: "door needs Traccar model override MV710G (status bit 16); not implemented",
    385: "door alarm needs Traccar model override MV710G (item 0x57 bit 16); not implemented",
    391: "movement needs Traccar model override AL300 (alarm bit 16); we report the generic tampering",
    401: "sos needs Traccar model override JC371 (vendor item 0xE8); not implemented",
    405: "vibration needs Traccar model override JC371 (vendor item 0xE8); not implemented",
    421: "iccid needs Traccar model override GL100 (vendor items); not implemented",
    429: "deviceTemp needs Traccar model override GL100 (transparent data); not implemented",
}

#: Traccar attribute key -> Record field for the values this pipeline normalizes
NORMALIZED = {
    "sat": "satellites",
    "batteryLevel": "battery_level",
    "battery": "battery",
    "power": "power",
    "ignition": "ignition",
    "odometer": "odometer",
}


def wire(record: dict[str, Any]) -> bytes:
    """The bytes the device sent.  Traccar's decoder tests hold what its frame
    decoder outputs, i.e. the UNESCAPED content between the flags (several
    samples carry a bare 7E or 7D); re-escaping gives the wire frame."""
    data = vectors.payload(record)
    if data[:1] != b"\x7e":
        return data  # text answer "(...)"
    return b"\x7e" + jt808.escape(data[1:-1]) + b"\x7e"


def _marks(record: dict[str, Any], *tables: dict[int, str]) -> list[Any]:
    for table in tables:
        if record["line"] in table:
            return [pytest.mark.xfail(reason=table[record["line"]], strict=True)]
    return []


def _params(records: list[dict[str, Any]], *tables: dict[int, str]) -> list[Any]:
    return [pytest.param(r, id=vectors.sample_id(r), marks=_marks(r, *tables)) for r in records]


def assemble(msg_id: int, terminal: str, serial: int, body: bytes, version: int | None = None) -> bytes:
    """Hand-built frame, independent of the module's encoder."""
    attr = len(body) | (0x4000 if version is not None else 0)
    head = msg_id.to_bytes(2, "big") + attr.to_bytes(2, "big")
    head += (bytes([version]) if version is not None else b"") + bytes.fromhex(terminal) + serial.to_bytes(2, "big")
    content = head + body
    content += bytes([reduce(xor, content, 0)])
    escaped = content.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")
    return b"\x7e" + escaped + b"\x7e"


def location_body(
    alarm: int = 0, status: int = 0x02, lat: int = 22_543_210, lon: int = 114_012_345, extra: bytes = b""
) -> bytes:
    # altitude 50 m, speed 63.5 km/h, course 270, 2024-03-05 18:30:15 (GMT+8)
    body = alarm.to_bytes(4, "big") + status.to_bytes(4, "big") + lat.to_bytes(4, "big") + lon.to_bytes(4, "big")
    return body + bytes.fromhex("0032027b010e") + bytes.fromhex("240305183015") + extra


def decode(data: bytes, **options: str) -> jt808.Decoded:
    return CODEC.decode(data, Context(options=options))


def frames_of(data: bytes, chunk: int | None = None) -> tuple[list[bytes], list[bytes]]:
    framer = CODEC.new_framer()
    frames: list[bytes] = []
    garbage: list[bytes] = []
    step = chunk or max(1, len(data))
    for start in range(0, len(data), step):
        framer.feed(data[start : start + step])
        while True:
            try:
                item = framer.next_frame()
            except FramingError as exc:
                assert not exc.fatal
                garbage.append(exc.discarded)
                continue
            if item is None:
                break
            frames.append(item)
    return frames, garbage


# ---------------------------------------------------------------- corpus


@pytest.mark.parametrize("record", _params(FRAME_RECORDS))
def test_corpus_frame(record: dict[str, Any]) -> None:
    vectors.require()
    frames, _ = frames_of(vectors.payload(record))
    # Traccar's frame decoder returns the frame UNESCAPED (and skips leading junk
    # such as "2424"); ours returns the escaped wire frame, so unescape to compare.
    assert frames
    assert b"\x7e" + jt808.unescape(frames[0][1:-1]) + b"\x7e" == vectors.expected_frame(record)


@pytest.mark.parametrize("record", _params(DECODER_RECORDS, BROKEN, NOT_IMPLEMENTED))
def test_corpus_decode(record: dict[str, Any]) -> None:
    vectors.require()
    result = CODEC.decode(wire(record), Context())
    kind, expected = record["kind"], record["expected"]
    located = [r for r in result.records if r.has_position]
    if kind in ("verifyPosition", "verifyPositions"):
        assert located
        if expected:
            _check_position(located[0], expected)
    elif kind == "verifyNull":
        assert not located
    elif kind == "verifyAttributes":
        assert result.records
    elif kind == "verifyAttribute":
        assert result.records
        _check_attribute(result.records[0], expected["key"], expected["value"])


def _check_position(rec: Record, expected: dict[str, Any]) -> None:
    if "time" in expected:
        assert rec.fix_time == datetime.fromisoformat(expected["time"]).astimezone(UTC)
    if "valid" in expected:
        assert rec.valid == expected["valid"]
    if "lat" in expected:
        assert rec.latitude == pytest.approx(expected["lat"], abs=1e-5)
        assert rec.longitude == pytest.approx(expected["lon"], abs=1e-5)


def _check_attribute(rec: Record, key: str, value: Any) -> None:
    if key == "alarm":
        assert set(rec.alarms) == set(value.split(","))
    elif key in NORMALIZED:
        assert getattr(rec, NORMALIZED[key]) == pytest.approx(value)
    elif isinstance(value, bool):
        assert rec.attributes.get(key) == str(value).lower()
    elif isinstance(value, int | float):
        assert key in rec.attributes
        assert float(rec.attributes[key]) == pytest.approx(value)
    else:
        assert rec.attributes.get(key) == value


@pytest.mark.parametrize("record", _params(DECODER_RECORDS, BROKEN))
def test_detect_own_samples(record: dict[str, Any]) -> None:
    vectors.require()
    assert CODEC.detect(wire(record), "tcp") is Detection.YES
    # as stored (unescaped, as logged by Traccar) the length field still lands on the flag
    assert CODEC.detect(vectors.payload(record), "udp") is Detection.YES


def test_detect_rejects_other_protocols() -> None:
    vectors.require()
    assert common.foreign_claims(CODEC, ("tcp",)) == []


def test_detect_navtelecom_flex_and_prefixes() -> None:
    assert CODEC.detect(b"~A\x01\x00\x00", "tcp") is Detection.NO
    assert CODEC.detect(b"~T\x00\x00\x00\x00", "tcp") is Detection.NO
    whole = assemble(0x0002, "013511221122", 1, b"")
    for cut in range(1, len(whole)):
        assert CODEC.detect(whole[:cut], "tcp") is Detection.MORE
    assert CODEC.detect(whole, "tcp") is Detection.YES
    assert CODEC.detect(whole[:-2] + bytes([whole[-2] ^ 1]) + b"\x7e", "tcp") is Detection.NO
    assert CODEC.detect(b"\x7e\x81\x00", "tcp") is Detection.NO  # downlink id
    assert CODEC.detect(b"(013632651491,ZC20,180716", "tcp") is Detection.NO  # TK103


# ---------------------------------------------------------------- hand-built frames

TERMINAL = "013511221122"


@pytest.mark.parametrize(
    ("alarm", "names"),
    [
        (1 << 0, {"sos"}),
        (1 << 1, {"overspeed"}),
        (1 << 7, {"lowBattery"}),
        (1 << 8, {"powerCut"}),
        (1 << 15, {"vibration"}),
        (1 << 20, {"geofence"}),
        (1 << 29 | 1 << 30, {"accident"}),
        ((1 << 0) | (1 << 5), {"sos", "gpsAntennaCut"}),
    ],
)
def test_alarm_flags(alarm: int, names: set[str]) -> None:
    data = assemble(0x0200, TERMINAL, 9, location_body(alarm=alarm))
    result = decode(data)
    assert result.kind == "alarm"
    assert CODEC.inspect(data, "tcp").kind == "alarm"
    assert set(result.records[0].alarms) == names


def test_location_fields_and_timezone() -> None:
    extra = bytes.fromhex("0104000004d2300119310107")  # odometer 123.4 km, rssi 25, 7 satellites
    data = assemble(0x0200, TERMINAL, 9, location_body(status=0b1111, extra=extra))
    rec = decode(data).records[0]
    assert rec.fix_time == datetime(2024, 3, 5, 10, 30, 15, tzinfo=UTC)  # GMT+8 by default
    assert (rec.latitude, rec.longitude) == (-22.54321, -114.012345)
    assert rec.valid and rec.ignition
    assert (rec.altitude, rec.speed, rec.course) == (50, 63.5, 270)
    assert (rec.odometer, rec.satellites, rec.attributes["rssi"]) == (123_400, 7, "25")
    utc = decode(data, **{"jt808.timezone": "+00:00"}).records[0]
    assert utc.fix_time == datetime(2024, 3, 5, 18, 30, 15, tzinfo=UTC)
    west = decode(data, **{"jt808.timezone": "-03:30"}).records[0]
    assert west.fix_time == datetime(2024, 3, 5, 22, 0, 15, tzinfo=UTC)
    with pytest.raises(DecodeError):
        decode(data, **{"jt808.timezone": "Mars/Olympus"})


def test_carscop_extension() -> None:
    # battery+mileage, odometer 1234 km, battery 4.1 V, area id, rssi 28, reserved
    extra = bytes.fromhex("00000000000004d20029000000001c000000")
    rec = decode(assemble(0x0200, TERMINAL, 3, location_body(extra=extra))).records[0]
    assert (rec.odometer, rec.battery, rec.attributes["rssi"]) == (1_234_000, 4.1, "28")


def test_batch_archive_flag() -> None:
    item = location_body()
    items = (len(item).to_bytes(2, "big") + item) * 2
    blind = decode(assemble(0x0704, TERMINAL, 4, b"\x00\x02\x01" + items))
    normal = decode(assemble(0x0704, TERMINAL, 4, b"\x00\x02\x00" + items))
    assert blind.kind == "batch" and len(blind.records) == 2
    assert all(r.archive for r in blind.records)
    assert not any(r.archive for r in normal.records)


def test_register_reply_exact_bytes() -> None:
    body = bytes(4) + b"MAKER" + b"MODEL".ljust(20, b"\0") + b"ID12345" + b"\x01"
    info = CODEC.inspect(assemble(0x0100, TERMINAL, 0x0005, body), "tcp")
    assert (info.kind, info.device_id) == ("login", "13511221122")
    # 8100, length 14, same terminal id, serial echoed; body: ack serial, result 0, auth code
    assert info.reply == bytes.fromhex("7e8100000e01351122112200050005003133353131323231313232" + "8c7e")


def test_general_reply_exact_bytes() -> None:
    info = CODEC.inspect(assemble(0x0200, TERMINAL, 0x0102, location_body()), "tcp")
    assert info.kind == "position"
    assert info.reply == bytes.fromhex("7e8001000501351122112201020102020000" + "b27e")


def test_reply_2019_header_and_escaping() -> None:
    # serial 0x7e7d must be escaped in the reply, the version byte kept
    terminal = "00000866496077582164"
    info = CODEC.inspect(assemble(0x0002, terminal, 0x7E7D, b"", version=1), "tcp")
    assert (info.kind, info.device_id) == ("heartbeat", "866496077582164")
    content = bytes.fromhex("8001400501" + terminal + "7e7d" + "7e7d000200")
    content += bytes([reduce(xor, content, 0)])
    escaped = content.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")
    assert info.reply == b"\x7e" + escaped + b"\x7e"
    assert b"\x7e" not in info.reply[1:-1]


@pytest.mark.parametrize("msg_id", [0x0102, 0x0506, 0x0003])
def test_other_uplinks_get_general_reply(msg_id: int) -> None:
    info = CODEC.inspect(assemble(msg_id, TERMINAL, 7, b"code" if msg_id == 0x0102 else b""), "tcp")
    reply = jt808.unescape(info.reply[1:-1])
    assert reply[:2] == b"\x80\x01" and reply[12:17] == b"\x00\x07" + msg_id.to_bytes(2, "big") + b"\x00"


def test_location_query_answer_is_not_acknowledged() -> None:
    info = CODEC.inspect(assemble(0x0201, TERMINAL, 7, b"\x00\x05" + location_body()), "tcp")
    assert (info.kind, info.reply) == ("position", None)


def test_bad_checksum() -> None:
    good = assemble(0x0200, TERMINAL, 9, location_body())
    bad = good[:-2] + bytes([good[-2] ^ 0x55]) + b"\x7e"
    with pytest.raises(ChecksumError):
        CODEC.inspect(bad, "tcp")
    with pytest.raises(ChecksumError):
        decode(bad)


def test_oversized_frame_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"\x7e\x02\x00" + b"\x00" * CODEC.max_frame)


def test_framing_byte_by_byte_and_garbage() -> None:
    first = assemble(0x0200, TERMINAL, 0x7E7E, location_body())  # escaped serial
    text = b"(740190311185,1,001,ELOCK,3,529439)"
    stream = b"junk" + first + text + assemble(0x0002, TERMINAL, 1, b"")
    frames, garbage = frames_of(stream)
    trickled, trickled_garbage = frames_of(stream, chunk=1)
    assert trickled == frames
    assert garbage == [b"junk"] and b"".join(trickled_garbage) == b"junk"
    assert frames == [first, text, stream[-len(frames[2]) :]]
    assert decode(frames[0]).records[0].latitude == 22.54321
    assert decode(frames[1]).records[0].attributes["result"] == text.decode()


def test_stray_parenthesis_is_garbage_not_a_text_frame() -> None:
    heartbeat = assemble(0x0002, TERMINAL, 1, b"")
    frames, garbage = frames_of(b"(" + b"x" * 600 + heartbeat)
    assert frames == [heartbeat] and b"".join(garbage) == b"(" + b"x" * 600


def test_split_datagram() -> None:
    one, two = assemble(0x0002, TERMINAL, 1, b""), assemble(0x0200, TERMINAL, 2, location_body())
    assert CODEC.split_datagram(one + two) == [one, two]
    with pytest.raises(FramingError):
        CODEC.split_datagram(b"not a frame")


def test_binary_imei_terminal_id() -> None:
    # Jimi units put the first 14 IMEI digits in binary; the Luhn digit completes it
    info = CODEC.inspect(assemble(0x0002, "4eb6fb4afd9e", 1, b""), "tcp")
    assert info.device_id == "865478070102068"


# ---------------------------------------------------------------- device side

FIX = Fix(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), -33.868812, 151.209296, speed=72.5, course=181, altitude=12)


@pytest.mark.parametrize("device_id", ["13511221122", "866496077582164"])
def test_device_round_trip(device_id: str) -> None:
    device = Jt808Device(device_id)
    register, auth = device.login()
    for sent, kind in ((register, "login"), (auth, "login"), (device.heartbeat(), "heartbeat")):
        info = CODEC.inspect(sent, "tcp")
        assert (info.kind, info.device_id) == (kind, device_id)
        assert device.expects_reply(sent) and device.check_reply(sent, info.reply)
    assert not device.check_reply(register, CODEC.inspect(auth, "tcp").reply)

    rec = decode(device.position(FIX)).records[0]
    assert rec.fix_time == FIX.time and rec.valid and not rec.archive
    assert rec.latitude == pytest.approx(FIX.latitude, abs=1e-6)
    assert rec.longitude == pytest.approx(FIX.longitude, abs=1e-6)
    assert (rec.speed, rec.course, rec.altitude, rec.satellites) == (72.5, 181, 12, 8)

    (batch,) = device.batch([FIX, FIX])
    result = decode(batch)
    assert result.kind == "batch" and len(result.records) == 2
    assert all(r.archive and r.fix_time == FIX.time for r in result.records)


@pytest.mark.parametrize("alarm", ["sos", "powerCut", "lowBattery", "vibration", "overspeed"])
def test_device_alarms(alarm: str) -> None:
    data = Jt808Device("13511221122").alarm(FIX, alarm)
    result = decode(data)
    assert result.kind == "alarm" and result.records[0].alarms == [alarm]


# ---------------------------------------------------------------- robustness


def _survives(data: bytes) -> None:
    CODEC.detect(data, "tcp")
    common.decode_or_protocol_error(CODEC, data, Context())


def test_random_bytes() -> None:
    rng = random.Random(808)
    for _ in range(2000):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        _survives(body)
        _survives(b"\x7e" + body + b"\x7e")
        head = assemble(0x0200, TERMINAL, 1, location_body(extra=body))
        _survives(head)


@pytest.mark.parametrize("record", _params(DECODER_RECORDS))
def test_truncations(record: dict[str, Any]) -> None:
    vectors.require()
    data = wire(record)
    for cut in range(1, len(data)):
        _survives(data[:cut])
        _survives(data[:cut] + b"\x7e")
