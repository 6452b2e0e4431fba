"""JT600: binary and text frames, escapes, replies, framing, detection, device round trip."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import h02, jt600
from trackpipe.protocols.base import Context, Detection, Fix
from trackpipe.protocols.devices.jt600 import Device, bcd_location

from tests import vectors
from tests.protocols import common

CODEC = jt600.CODEC
ID = "3301210003"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FIX = Fix(WHEN, 22.5498, -114.0771, speed=42, course=180, satellites=9)
SHORT_V1 = bytes.fromhex("24311021600111001b16021105591022329862114046227b0598095080012327951435161f")


def decode(frame: bytes, **options: str):
    return CODEC.decode(frame, Context("tcp", None, WHEN, options))


def short_frame(version: int, tail: bytes, count: int = 1) -> bytes:
    body = (bcd_location(FIX) + tail) * count
    return b"$" + bytes.fromhex(ID) + bytes((version << 4 | 1,)) + struct.pack(">H", len(body)) + body + b"\x07"


def test_short_version1_sample() -> None:
    info = CODEC.inspect(SHORT_V1, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("position", "3110216001", None)
    (rec,) = decode(SHORT_V1).records
    assert rec.fix_time == datetime(2011, 2, 16, 5, 59, 10, tzinfo=UTC) and rec.valid
    assert rec.latitude == pytest.approx(22.54977, abs=1e-5) and rec.longitude == pytest.approx(-114.07705, abs=1e-5)
    assert rec.speed == 5 and rec.course == 304 and rec.satellites == 9 and rec.altitude == 0x123


def test_binary_speed_option() -> None:
    assert decode(SHORT_V1, **{"jt600.binary_speed": "knots"}).records[0].speed == pytest.approx(5 * 1.852)


def test_short_version2_status_and_fuel() -> None:
    frame = short_frame(2, bytes((0x01, 0x41, 0b0000_0111, 0x0C, 0)) + struct.pack(">I", 12) + b"\x22", count=2)
    records = decode(frame).records
    assert len(records) == 2
    rec = records[0]
    assert rec.ignition is True and rec.attributes["door"] == "true" and rec.attributes["charge"] == "true"
    assert rec.alarms == ["sos", "fatigueDriving", "tow"] and rec.odometer == 12000
    assert rec.attributes["fuel"] == str(0x0122)
    assert rec.latitude == pytest.approx(FIX.latitude, abs=1e-5) and rec.speed == 42


def test_short_version3_bitfields() -> None:
    bits = (1 << 68) | (2 << 56) | (3 << 44) | (4 << 24) | 1
    (rec,) = decode(short_frame(3, bits.to_bytes(10, "big"))).records
    a = rec.attributes
    assert (a["fuel1"], a["fuel2"], a["fuel3"]) == ("1", "2", "3") and rec.odometer == 4000 and rec.ignition


def test_long_format_alarm_reply_p35_and_p69() -> None:
    dev = Device(ID)
    frame = dev.alarm(FIX, "powerCut")
    assert jt600.is_long(frame) and jt600.binary_size(frame) == len(frame)
    info = CODEC.inspect(frame, "tcp")
    assert info.reply == b"(P35)"
    (rec,) = decode(frame).records
    assert rec.alarms == ["powerCut"] and rec.battery_level == 80 and rec.attributes["cid"] == "10133"
    body = frame[10:-1] + bytes(4)  # protocol 0x19 adds geofence id and reserved bytes
    newer = frame[:6] + b"\x19\x10" + struct.pack(">H", len(body) + 1) + body + b"\x2a"
    assert CODEC.inspect(newer, "tcp").reply == b"(P69,0,42)"


def test_text_w01() -> None:
    text = b"(3110312099,W01,11404.6204,E,2232.9961,N,A,040511,063736,4,7,100,4,17,1,1,company)"
    info = CODEC.inspect(text, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("position", "3110312099", None)
    (rec,) = decode(text).records
    assert rec.fix_time == datetime(2011, 5, 4, 6, 37, 36, tzinfo=UTC)
    assert rec.latitude == pytest.approx(22.54994, abs=1e-5) and rec.longitude == pytest.approx(114.07701, abs=1e-5)
    assert rec.speed == 4 and rec.power == 100 and rec.attributes["alertType"] == "1"


@pytest.mark.parametrize(
    ("kind", "reply", "frame_kind"),
    [
        ("U01", b"(S39)", "position"),
        ("U02", b"(S39)", "alarm"),
        ("U03", b"(S39)", "batch"),
        ("U06", b"(S20)", "position"),
    ],
)
def test_text_u0x_replies(kind: str, reply: bytes, frame_kind: str) -> None:
    extra = "11," if kind == "U06" else ""
    text = (
        f"({ID},{kind},{extra}040812,185302,T,22.564025,N,113.242329,E,5.21,152,9,32%,"
        "00000000000011,10133,5173,22,100,1)"
    )
    info = CODEC.inspect(text.encode(), "tcp")
    assert (info.kind, info.reply) == (frame_kind, reply)
    (rec,) = decode(text.encode()).records
    assert rec.speed == pytest.approx(5.21 * 1.609344) and rec.battery_level == 32 and rec.odometer == 100000
    assert rec.attributes["status"] == "3" and rec.archive == (kind == "U03")


def test_text_p45_reply_and_rfid() -> None:
    text = b"(2050018634,P45,051124,204046,9.861502,N,83.950336,W,A,1,0,1,1,0012260888,0,0,7)"
    assert CODEC.inspect(text, "tcp").reply == b"(P69,0,7)"
    (rec,) = decode(text).records
    assert rec.attributes["driverUniqueId"] == "0012260888" and rec.attributes["eventSource"] == "1"


def test_text_without_position() -> None:
    for text in (b"(3301210003,U04)", b"(3460311327,@JT)"):
        info = CODEC.inspect(text, "tcp")
        assert info.reply is None and decode(text).records == []


def test_wlnet_sensor_frame_unescaped_by_the_framer() -> None:
    raw = bytes.fromhex(
        "28373530303331333630392C32332C32392C574C4E45542C352C322C22071916311822350966113549495E1F2322071916"
        "22591190702002FE0117623C0101134700000029"
    )
    (frame,) = common.frames(CODEC, raw)
    (rec,) = decode(frame).records
    assert rec.attributes["temp1"] == "27.5" and rec.attributes["humidity"] == "71"


def test_escapes() -> None:
    assert jt600.unescape(b"(a=\x15b=\x14c=\x11d=\x00)") == b"(a(b)c,d=)"
    assert jt600.unescape(b"(" + jt600.escape(b"x(),=") + b")") == b"(x(),=)"


def test_detection() -> None:
    for n in range(1, len(SHORT_V1)):
        assert CODEC.detect(SHORT_V1[:n], "tcp") is Detection.MORE, n
    assert CODEC.detect(SHORT_V1, "tcp") is Detection.YES
    text = b"(3301210003,U01,040812"
    assert [CODEC.detect(text[:n], "tcp") for n in (1, 5, 11)] == [Detection.MORE] * 3
    assert CODEC.detect(text, "tcp") is Detection.YES
    assert CODEC.detect(b"(123456789012BP05", "tcp") is Detection.NO  # tk103
    assert CODEC.detect(b"$GPRMC,1234", "tcp") is Detection.NO
    h02_sample = next(vectors.payload(r) for r in vectors.samples("h02") if vectors.payload(r)[:1] == b"$")
    assert CODEC.detect(h02_sample, "tcp") is Detection.NO
    assert h02.CODEC.detect(SHORT_V1, "tcp") is not Detection.YES


def test_framing() -> None:
    text = b"(3301210003,U04)"
    data = SHORT_V1 + text + SHORT_V1
    assert common.frames(CODEC, data) == [SHORT_V1, text, SHORT_V1]
    assert common.frames(CODEC, data, chunk=1) == [SHORT_V1, text, SHORT_V1]
    common.garbage_is_skipped(CODEC, b"\x00junk", SHORT_V1)
    common.oversized_is_fatal(CODEC, b"$" + bytes.fromhex(ID) + b"\x11\xff\xff\x01")
    common.oversized_is_fatal(CODEC, b"(" + b"1" * (CODEC.max_frame + 1))


def test_device_round_trip() -> None:
    dev = Device(ID)
    assert dev.login() == []
    sent = [dev.heartbeat(), dev.position(FIX), dev.alarm(FIX, "vibration"), *dev.batch([FIX, FIX])]
    for decoded in common.device_round_trip(CODEC, dev, sent, ctx=Context("tcp", None, WHEN), device_id=ID):
        for rec in decoded.records:
            assert rec.fix_time == WHEN and rec.valid
            assert rec.latitude == pytest.approx(FIX.latitude, abs=1e-5)
            assert rec.longitude == pytest.approx(FIX.longitude, abs=1e-5)
            assert rec.speed == pytest.approx(42, abs=0.01)
    assert all(decode(f).records[0].archive for f in dev.batch([FIX]))
    assert decode(dev.alarm(FIX, "lowBattery")).records[0].alarms == ["lowBattery"]
    with pytest.raises(ValueError):
        dev.alarm(FIX, "sos")
