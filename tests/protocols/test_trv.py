"""TRV / IW: login, positions, heartbeats, watch health reports, replies, framing, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import trv
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix
from trackpipe.protocols.devices.trv import Device as TrvDevice

from tests.protocols import common

CODEC = trv.CODEC
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
CTX = Context(device_id="353456789012345", received_at=NOW)
AP01 = b"TRVAP01080524A2232.9806N11404.9355E000.1061830323.8706000908000102,460,0,9520,3671#"


@pytest.mark.parametrize(
    ("frame", "reply"),
    [
        (b"TRVAP00353456789012345#", b"TRVBP00#"),
        (AP01, b"TRVBP01#"),
        (b"TRVCP01,07800010010000602001206001120124#", b"TRVDP01#"),
        (b"TRVYP14080524A2232.9806N11404.9355E000.1061830323.870600090800010200011,460,0,9520,3671#", b"TRVZP14#"),
        (b"TRVAP14#", b"TRVBP14,0.000,0.000#"),
        (b"IWAP14,080835,abc#", None),
        (b"IWAP12,080835,+491773329827#", None),
        (b"IWAPXL,080835#", None),  # the watch's answer to a server command (a serial only)
        (b"IWAP49,68#", b"IWBP49#"),
    ],
)
def test_replies(frame: bytes, reply: bytes | None) -> None:
    assert CODEC.inspect(frame, "tcp").reply == reply


def test_iw_login_reply_needs_the_clock() -> None:
    data = b"IWAP00355932600077007,8901240204123656505f,310240202365650#"
    info = CODEC.inspect(data, "tcp")
    assert (info.kind, info.device_id, info.reply, info.clock_reply) == ("login", "355932600077007", None, True)
    assert CODEC.reply_at(data, "tcp", NOW) == b"IWBP00,20240506070809,0#"
    assert CODEC.reply_at(AP01, "tcp", NOW) is None
    decoded = CODEC.decode(data, CTX)
    assert decoded.device_id == "355932600077007" and decoded.records == []


def test_position_report() -> None:
    decoded = CODEC.decode(AP01, CTX)
    assert decoded.kind == "position" and decoded.device_id is None
    (r,) = decoded.records
    assert r.fix_time == datetime(2008, 5, 24, 6, 18, 30, tzinfo=UTC) and r.valid
    assert r.latitude == pytest.approx(22.54968, abs=1e-5) and r.longitude == pytest.approx(114.08226, abs=1e-5)
    assert (r.speed, r.course, r.satellites, r.battery_level, r.ignition) == (0.1, 323.87, 9, 80.0, None)
    assert (r.attributes["rssi"], r.attributes["armed"], r.attributes["mode"]) == ("60", "true", "2")
    assert (r.attributes["mcc"], r.attributes["lac"], r.attributes["cid"]) == ("460", "9520", "3671")


def test_alarm_and_wifi() -> None:
    data = (
        b"IWAP10080524A2232.9806N11404.9355E000.1061830323.8706000908000502,460,0,9520,3671,01,zhcn,00,"
        b"HOME|74-DE-2B-44-88-8C|97&HOME1|74-DE-2B-44-88-8D|-60"
    )
    decoded = CODEC.decode(data, CTX)
    (r,) = decoded.records
    assert decoded.kind == "alarm" and r.alarms == ["sos"]
    assert r.attributes["wifi"] == "74:DE:2B:44:88:8C/97,74:DE:2B:44:88:8D/-60"
    fall = data.replace(b",01,zhcn", b",05,zhcn")
    assert CODEC.decode(fall, CTX).records[0].alarms == ["fallDown"]


def test_heartbeat_status() -> None:
    decoded = CODEC.decode(b"TRVCP01,07800010010000602001206001120124#", CTX)
    (r,) = decoded.records
    assert decoded.kind == "heartbeat" and not r.has_position
    assert (r.attributes["rssi"], r.satellites, r.battery_level, r.ignition) == ("78", 0, 100.0, True)
    # blocked 1 (2 = blocked), power 2 (1 = charging), motion 0 (unknown)
    assert r.attributes["blocked"] == "false" and r.attributes["charge"] == "false" and "motion" not in r.attributes
    assert r.fix_time == NOW
    (short,) = CODEC.decode(b"TRVCP01,10000710000201#", CTX).records  # without the optional settings
    assert short.ignition is None and short.attributes["armed"] == "false" and "charge" not in short.attributes


def test_watch_reports() -> None:
    (r,) = CODEC.decode(b"IWAP03,06000908000102,5555,30", CTX).records
    assert (r.attributes["steps"], r.battery_level, r.satellites) == ("5555", 80.0, 9)
    (r,) = CODEC.decode(b"IWAPHP,60,130,85,95,90,36.5,,,,,,,", CTX).records
    assert (r.attributes["heartRate"], r.attributes["spo2"], r.attributes["temperature"]) == ("60", "95", "36.5")
    (r,) = CODEC.decode(b"IWAP50,36.7,88", CTX).records
    assert r.attributes["temperature"] == "36.7" and r.battery_level == 88
    data = b"IWAP02,zh_cn,0,2,460,0,9520|3671|13,9520|3672|12,1,1|D8-24-BD-79-FA-1F|59"
    (r,) = CODEC.decode(data, CTX).records
    assert (r.attributes["lac"], r.attributes["cid"], r.attributes["cells"]) == ("9520", "3671", "2")
    assert r.attributes["wifi"] == "D8:24:BD:79:FA:1F/59"
    assert CODEC.decode(b"IWAP77,1", CTX).records == []


@pytest.mark.parametrize("data", [b"TRVAP01080524A2232", b"TRVCP01,12", b"IWAP49,x", b"TRVAP0", b"XXAP01"])
def test_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(data, CTX)


def test_framing_and_detection() -> None:
    stream = b"TRVAP00353456789012345#" + AP01 + b"\r\n" + AP01
    assert common.frames(CODEC, stream) == [b"TRVAP00353456789012345#", AP01, AP01]
    assert common.frames(CODEC, stream, chunk=1) == [b"TRVAP00353456789012345#", AP01, AP01]
    common.oversized_is_fatal(CODEC, b"TRVAP01" + b"0" * 1100)
    for end in range(1, 7):
        assert CODEC.detect(AP01[:end], "tcp") is Detection.MORE
    assert CODEC.detect(AP01[:7], "tcp") is Detection.YES
    assert CODEC.detect(b"IWAPHT,60", "tcp") is Detection.YES
    for other in (b"imei:359586015829802,tracker", b"TLT2H", b"IWXQ", b"TRVxP01"):
        assert CODEC.detect(other, "tcp") is Detection.NO


FIX = Fix(NOW, -33.866423, 151.19006, speed=57.3, course=123.45)


def test_device_round_trip() -> None:
    device = TrvDevice("353456789012345")
    frames = [*device.login(), device.heartbeat(), device.position(FIX), device.alarm(FIX, "sos")]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=CTX)
    assert all(device.expects_reply(data) for data in frames)
    assert CODEC.inspect(frames[0], "tcp").device_id == "353456789012345"
    (r,) = decoded[2].records
    assert common.at_fix(r, FIX) and r.valid and r.speed == 57.3 and r.course == 123.45
    assert decoded[3].records[0].alarms == ["sos"]
    assert CODEC.decode(device.alarm(FIX, "fallDown"), CTX).records[0].alarms == ["fallDown"]
    assert decoded[1].records[0].battery_level == 80
    assert len(device.batch([FIX, FIX])) == 2
    with pytest.raises(ValueError):
        device.alarm(FIX, "powerCut")
