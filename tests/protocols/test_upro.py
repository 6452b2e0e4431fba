"""UPRO: hand-built frames of each field, ack replies, framing, detection vs H02/Carscop, device."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import upro
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix
from trackpipe.protocols.devices.upro import Device

from tests.protocols import common

CODEC = upro.CODEC
CTX = Context(received_at=datetime(2026, 1, 1, tzinfo=UTC))

REPORT = b"*MG201693502000034964,AB&A0800253335360507036975710000091116&B0000000000&N13&Z12#"
ACKED = (
    b"*HQ201999999,BA&A1656512233362911356523660000230618&B0100060010&C00000<6<&F0123&R2405&V0109&W04"
    b"&K00100&T65&G000150&X(k89860045191536000374)(J0000)&d01287&M990#"
)


def test_location_field() -> None:
    decoded = CODEC.decode(REPORT, CTX)
    assert (decoded.kind, decoded.device_id) == ("position", "693502000034964")
    (r,) = decoded.records
    assert r.fix_time == datetime(2016, 11, 9, 8, 0, 25, tzinfo=UTC) and not r.valid
    assert r.latitude == pytest.approx(-33.58934, abs=1e-5)
    assert r.longitude == pytest.approx(-70.61626, abs=1e-5)
    assert r.attributes["rssi"] == "13"


def test_fields_and_alarms() -> None:
    (r,) = CODEC.decode(ACKED, CTX).records
    a = r.attributes
    assert r.latitude == pytest.approx(22 + 33.3629 / 60) and r.longitude == pytest.approx(113 + 56.5236 / 60)
    assert r.valid and r.ignition
    assert r.alarms == ["vibration", "tampering"]  # B digit 5 = 6 (bits 1, 2), W bit 2
    assert r.speed == pytest.approx(12.3 * 1.852)  # F field: knots x10
    assert r.altitude == 15.0
    assert r.power == 10.9 and r.battery_level == 99.0  # M990 after T65
    assert (a["rssi"], r.satellites) == ("24", 5)
    assert a["iccid"] == "89860045191536000374" and a["timezone"] == "0000"
    assert a["adc1"] == "12.87" and a["statusExtended"] == "00100"
    assert r.odometer == float(0x0000C6C * 2 * 1852 // 3600)


def test_ack_reply() -> None:
    info = CODEC.inspect(ACKED, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("position", "999999", b"*HQ20YBA#")
    assert CODEC.inspect(REPORT, "tcp").reply == b"*MG20YAB#"
    assert CODEC.inspect(REPORT.replace(b"*MG201", b"*MG200"), "tcp").reply is None


def test_transparent_driver_card() -> None:
    body = b"%DRIVER 42?"
    frame = b"*HQ200862408328000109,GY" + b"\x40\x09" + len(body).to_bytes(2, "big") + body + b"#"
    decoded = CODEC.decode(frame, CTX)
    assert decoded.kind == "other" and decoded.records[0].attributes["driverUniqueId"] == "%DRIVER 42?"
    other = b"*HQ200862408328000109,GY" + b"\x40\x01\x00\x02\xab\xcd#"
    assert CODEC.decode(other, CTX).records[0].attributes["data"] == "abcd"
    with pytest.raises(DecodeError):
        CODEC.decode(b"*HQ200862408328000109,GY\x40\x09\x00\x09ab#", CTX)


def test_no_fix_no_position() -> None:
    frame = b"*VK201867282035754650,AH&B0000000000&W00&M990&N31#"
    (r,) = CODEC.decode(frame, CTX).records
    assert not r.has_position and r.fix_time == CTX.received_at and r.battery_level == 99.0
    assert CODEC.inspect(frame, "tcp").kind == "status"
    assert CODEC.decode(b"*VK201867282035754650,AH#", CTX).records == []


def test_detection() -> None:
    for end in range(1, 10):
        assert CODEC.detect(REPORT[:end], "tcp") is Detection.MORE
    assert CODEC.detect(REPORT, "tcp") is Detection.YES
    for foreign in (b"*HQ,4106011660,V1,", b"*161101144927UD00", b"*TS01,35404", b"*GS16,3515", b"*hq2000", b"*HQ21"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


def test_framing() -> None:
    capture = REPORT + b"\r\n" + ACKED
    assert common.frames(CODEC, capture) == [REPORT, ACKED]
    assert common.frames(CODEC, capture, chunk=1) == [REPORT, ACKED]
    common.garbage_is_skipped(CODEC, b"xx", REPORT)
    common.oversized_is_fatal(CODEC, b"*HQ2001," + b"1" * CODEC.max_frame)


def test_malformed() -> None:
    for bad in (b"*HQ,123,V1#", b"*MG2016935,AB&A9999999999999999999999999999999999#", b"hello"):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, CTX)


FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=120)


def test_device_round_trip() -> None:
    device = Device("862400000000007")
    frames = [*device.login(), device.heartbeat(), device.position(FIX), device.alarm(FIX, "sos"), *device.batch([FIX])]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=CTX)
    assert all(device.expects_reply(frame) for frame in frames)
    (r,) = decoded[-3].records
    assert common.at_fix(r, FIX) and r.valid and r.course == 120.0
    assert r.speed == pytest.approx(57.3, abs=0.1 * 1.852)
    assert decoded[-2].records[0].alarms == ["sos"]
    with pytest.raises(ValueError):
        device.alarm(FIX, "tow")
