"""Wialon IPS 1.1 / 2.0: hand-built packets, replies, CRC, framing, detection, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import wialon
from trackpipe.protocols.base import ChecksumError, Context, DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.wialon import Device
from trackpipe.protocols.kit.checksums import CRC16_ARC

from tests.protocols import common

CODEC = wialon.CODEC
CTX = Context(received_at=datetime(2026, 1, 1, tzinfo=UTC))

LOGIN = b"#L#353451044508750;NA\r\n"
SD = b"#SD#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4\r\n"
D = (
    b"#D#151216;140203;5312.59514;N;04830.37834;E;53;273;120;10;0.9;5;2;14.77,0.02;AB12;"
    b"EvId:1:1,Board:2:12.81,bat:1:77,temp:1:31,name:3:car one,ok:3:true\r\n"
)
B = b"#B#080914;073235;5027.50625;N;03026.19321;E;0.7;0;NA;4|080914;073420;5027.50845;N;03026.18854;E;2;292;NA;4\r\n"
PING = b"#P#\r\n"
MESSAGE = b"#M#hello operator\r\n"


def _crc(signed: str) -> str:
    return f"{CRC16_ARC(signed.encode()):04X}"


def test_login_v1_and_v2() -> None:
    info = CODEC.inspect(LOGIN, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("login", "353451044508750", b"#AL#1\r\n")
    signed = "2.0;353451044508750;NA;"
    v2 = f"#L#{signed}{_crc(signed)}\r\n".encode()
    assert CODEC.inspect(v2, "tcp").device_id == "353451044508750"
    assert CODEC.decode(v2, CTX).records == []
    with pytest.raises(ChecksumError):
        CODEC.inspect(v2.replace(_crc(signed).encode(), b"0000"), "tcp")


def test_replies() -> None:
    assert CODEC.inspect(SD, "tcp").reply == b"#ASD#1\r\n"
    assert CODEC.inspect(D, "tcp").reply == b"#AD#1\r\n"
    assert CODEC.inspect(B, "tcp").reply == b"#AB#2\r\n"
    assert CODEC.inspect(PING, "tcp").reply == b"#AP#\r\n"
    assert CODEC.inspect(MESSAGE, "tcp").reply == b"#AM#1\r\n"
    assert CODEC.inspect(PING, "tcp").kind == "heartbeat"


def test_short_data() -> None:
    (r,) = CODEC.decode(SD, CTX).records
    assert r.fix_time == datetime(2013, 4, 27, 20, 56, 1, tzinfo=UTC)
    assert r.latitude == pytest.approx(55 + 44.6025 / 60)
    assert r.longitude == pytest.approx(37 + 39.6834 / 60)
    assert (r.speed, r.course, r.altitude, r.satellites, r.valid) == (1.0, 2.0, 3.0, 4, True)


def test_extended_data_parameters() -> None:
    (r,) = CODEC.decode(D, CTX).records
    a = r.attributes
    assert r.speed == 53.0 and r.altitude == 120.0 and r.satellites == 10
    assert (a["hdop"], a["input"], a["output"], a["adc1"], a["adc2"]) == ("0.9", "5", "2", "14.77", "0.02")
    assert a["driverUniqueId"] == "AB12"
    assert a["evid"] == "1.0" and a["board"] == "12.81" and a["name"] == "car one" and a["ok"] == "true"
    assert r.battery_level == 77.0 and a["deviceTemp"] == "31.0"


def test_no_date_and_no_position() -> None:
    frame = b"#D#NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;NA;;NA;mcc:1:250,mnc:1:2,lac:1:5901,cell_id:1:45542\r\n"
    (r,) = CODEC.decode(frame, CTX).records
    assert not r.has_position and r.fix_time == CTX.received_at
    assert r.attributes["cellTowers"] == "250,2,5901,45542"


def test_batch_is_archive() -> None:
    decoded = CODEC.decode(B, CTX)
    assert decoded.kind == "batch" and len(decoded.records) == 2
    assert all(r.archive for r in decoded.records)
    assert decoded.records[0].valid  # 4 satellites >= 3
    assert decoded.records[1].fix_time == datetime(2014, 9, 8, 7, 34, 20, tzinfo=UTC)


def test_v2_crc_checked() -> None:
    body = "101118;061143;0756.0930;N;12338.6403;E;18.223;99.766;-4.000;10;0.800;NA;NA;NA;NA;NA;"
    good = f"#D#{body}{_crc(body)}\r\n".encode()
    assert CODEC.decode(good, CTX).records[0].altitude == -4.0
    with pytest.raises(ChecksumError):
        CODEC.inspect(good.replace(b"18.223", b"18.224"), "tcp")


def test_message_and_udp_prefix() -> None:
    (r,) = CODEC.decode(MESSAGE, CTX).records
    assert r.attributes["result"] == "hello operator" and not r.has_position
    udp = b"2.0;353451044508750#SD#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4"
    assert CODEC.detect(udp, "udp") is Detection.YES
    (frame,) = CODEC.split_datagram(udp)
    assert CODEC.inspect(frame, "udp").device_id == "353451044508750"
    assert CODEC.decode(frame, CTX).device_id == "353451044508750"


def test_detection() -> None:
    for end in range(1, 4):
        assert CODEC.detect(SD[:end], "tcp") is Detection.MORE
    assert CODEC.detect(SD[:4], "tcp") is Detection.YES
    assert CODEC.detect(b"3534510445", "udp") is Detection.MORE
    for foreign in (b"#123#abc", b"#XX#1", b"##,imei:123", b"#ANT#1", b"$$A1,", b"353451044508750;"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO


def test_framing() -> None:
    capture = LOGIN + SD + D + B + PING
    assert common.frames(CODEC, capture) == [LOGIN, SD, D, B, PING]
    assert common.frames(CODEC, capture, chunk=1) == [LOGIN, SD, D, B, PING]
    common.oversized_is_fatal(CODEC, b"#D#" + b"1" * (CODEC.max_frame + 1))
    with pytest.raises(FramingError):
        CODEC.split_datagram(b"")


def test_malformed() -> None:
    for bad in (b"#SD#320413;205601;5544.6025;N;03739.6834;E;1;2;3;4", b"#SD#270413;205601;55x4;N;037;E;1;2;3;4", b"x"):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, CTX)


FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=123, altitude=80)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_device_round_trip(transport: str) -> None:
    device = Device("860000000000007", transport)
    frames = [*device.login(), device.heartbeat(), device.position(FIX), device.alarm(FIX, "sos"), *device.batch([FIX])]
    common.device_round_trip(CODEC, device, frames, transport, CTX, framed=None)
    assert all(device.expects_reply(frame) for frame in frames)
    (r,) = CODEC.decode(device.position(FIX), CTX).records
    assert common.at_fix(r, FIX) and r.valid
    assert r.speed == pytest.approx(57.3)
    (archived,) = CODEC.decode(device.batch([FIX])[0], CTX).records
    assert archived.archive
    assert CODEC.decode(device.alarm(FIX, "sos"), CTX).records[0].alarms == ["sos"]
    with pytest.raises(ValueError):
        device.alarm(FIX, "vibration")
