"""Laipac: sentences, checksums, event letters, acknowledgements, framing, device round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import laipac
from trackpipe.protocols.base import ChecksumError, DecodeError, Detection, Fix, Record
from trackpipe.protocols.devices.laipac import ALARM_EVENTS
from trackpipe.protocols.devices.laipac import Device as LaipacDevice
from trackpipe.protocols.kit.checksums import nmea

from tests.protocols import common

CODEC = laipac.CODEC
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def signed(body: str) -> bytes:
    return f"{body}*{nmea(body):02X}".encode()


AVRMC = signed("$AVRMC,99999999,164339,a,4351.0542,N,07923.5445,W,0.29,78.66,180703,0,3.727,17,1,0,0")
CELL = signed(
    "$AVRMC,MSG00002,124058,A,5053.0447,N,00557.8549,E,0.45,65.06,240614,0,4037,167,1,1200,800,0D7AB913,020408"
)
ECHK = signed("$ECHK,99999999,0")


def _one(frame: bytes, **options: str) -> Record:
    return common.one_record(CODEC, frame, common.ctx(NOW, **options))


def test_detect() -> None:
    for frame in (AVRMC, ECHK, signed("$EAVSYS,1,2,,,"), signed("$AVSYS,1,2")):
        assert CODEC.detect(frame, "tcp") is Detection.YES
    for end in range(1, 7):
        assert CODEC.detect(AVRMC[:end], "tcp") is Detection.MORE
    for foreign in (b"$AV,V2,", b"$EPB,EMR,", b"$GPRMC,", b"$POS,1,", b"$AVRM,", b"$ECHO,"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


def test_framing() -> None:
    stream = ECHK + b"\r\n" + AVRMC + b"\r\n" + CELL + b"\n"
    want = [ECHK + b"\r\n", AVRMC + b"\r\n", CELL + b"\n"]
    assert common.frames(CODEC, stream) == want
    assert common.frames(CODEC, stream, chunk=1) == want
    common.oversized_is_fatal(CODEC, b"$AVRMC," + b"1" * CODEC.max_frame)


def test_avrmc_fields() -> None:
    decoded = CODEC.decode(AVRMC, common.ctx(NOW))
    (r,) = decoded.records
    assert decoded.device_id == "99999999" and decoded.kind == "position"
    assert r.fix_time == datetime(2003, 7, 18, 16, 43, 39, tzinfo=UTC) and r.valid
    assert r.latitude == pytest.approx(43 + 51.0542 / 60) and r.longitude == pytest.approx(-(79 + 23.5445 / 60))
    assert r.speed == pytest.approx(0.29 * 1.852) and r.course == 78.66
    assert (r.battery, r.odometer, r.attributes["gps"], r.attributes["status"]) == (3.727, 17000, "1", "a")
    assert r.attributes["event"] == "0" and "adc2" not in r.attributes


def test_cell_adc_and_model() -> None:
    r = _one(CELL)
    assert r.battery == 4.037 and r.attributes["adc1"] == "1.2"
    assert json.loads(r.attributes["network"]) == {"cellTowers": [{"mcc": 204, "mnc": 8, "lac": 0x0D7A, "cid": 0xB913}]}
    assert _one(CELL, model="AVL110").attributes["adc2"] == "0.8"
    us = _one(CELL.replace(b"020408*", b"310260*")[:-2] + b"%02X" % nmea(CELL.replace(b"020408*", b"310260*")[:-3]))
    assert json.loads(us.attributes["network"])["cellTowers"][0]["mcc"] == 310


@pytest.mark.parametrize(("event", "alarm"), sorted(laipac.EVENT_ALARMS.items()))
def test_event_alarms(event: str, alarm: str) -> None:
    frame = signed(f"$AVRMC,99999999,164339,A,4351.0542,N,07923.5445,W,0.29,78.66,180703,{event},3.727,17,1,0,0")
    r = _one(frame)
    assert r.alarms == [alarm]
    assert CODEC.inspect(frame, "tcp").kind == "alarm"


def test_input_letters() -> None:
    b = signed("$AVRMC,99999999,164339,V,4351.0542,N,07923.5445,W,0.29,78.66,180703,B,3.727,17,1,0,0")
    r = _one(b, model="SF-Lite")
    assert (r.attributes["in1"], r.attributes["in2"], r.attributes["in3"]) == ("true", "false", "false")
    assert "event" not in r.attributes and not r.valid
    q = signed("$AVRMC,99999999,164339,P,4351.0542,N,07923.5445,W,0.29,78.66,180703,R,3.727,17,1,0,0")
    rq = _one(q, model="SF-Lite")
    assert (rq.attributes["in1"], rq.attributes["in2"], rq.attributes["in3"], rq.valid) == (
        "true",
        "true",
        "true",
        True,
    )


def test_replies() -> None:
    assert CODEC.inspect(ECHK, "tcp").reply == ECHK + b"\r\n"
    assert CODEC.inspect(ECHK + b"\r\n", "tcp").kind == "heartbeat"
    ack = CODEC.inspect(AVRMC, "tcp").reply
    assert ack == signed("$EAVACK,0,17") + b"\r\n"
    assert CODEC.inspect(CELL, "tcp").reply is None  # upper-case status: nothing wanted
    sos = signed("$AVRMC,99999999,164339,a,4351.0542,N,07923.5445,W,0.29,78.66,180703,3,3.727,17,1,0,0")
    cs = sos[-2:].decode()
    assert (
        CODEC.inspect(sos, "tcp").reply == signed(f"$EAVACK,3,{cs}") + b"\r\n" + signed("$AVCFG,00000000,d") + b"\r\n"
    )
    assert CODEC.inspect(signed("$AVSYS,99999999,V1.50,SN0000103,32768"), "tcp").reply is None


def test_eavsys_and_others() -> None:
    decoded = CODEC.decode(signed("$EAVSYS,MSG00002,8901260882228888888,+15551234567,,V1.50"), common.ctx(NOW))
    (r,) = decoded.records
    assert decoded.kind == "status" and not r.has_position
    assert r.attributes == {"iccid": "8901260882228888888", "phone": "+15551234567", "versionFw": "V1.50"}
    for frame in (ECHK, signed("$AVSYS,99999999,V1.50,SN0000103,32768")):
        assert CODEC.decode(frame, common.ctx(NOW)).records == []


def test_bad_frames() -> None:
    with pytest.raises(ChecksumError):
        CODEC.inspect(AVRMC[:-2] + b"00", "tcp")
    with pytest.raises(ChecksumError):
        CODEC.decode(AVRMC[:-2] + b"ZZ", common.ctx(NOW))
    for bad in (
        AVRMC[: AVRMC.index(b"*")],
        signed("$AVRMC,99999999,164339,a,4351.0542,N,07923.5445,W,0.29,78.66,180703,0,3.727"),
        signed("$AVRMC,99999999,164339,Q,4351.0542,N,07923.5445,W,0.29,78.66,180703,0,3.727,17,1,0,0"),
        signed("$AVRMC,99999999,164339,a,4351.0542,X,07923.5445,W,0.29,78.66,180703,0,3.727,17,1,0,0"),
        signed("$AVRMC,99999999,164339,a,4351.0542,N,07923.5445,W,0.29,78.66,320703,0,3.727,17,1,0,0"),
        signed("$FOO,1"),
        b"AVRMC",
    ):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, common.ctx(NOW))


FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=123.45)


def test_device_round_trip() -> None:
    device = LaipacDevice("99999999")
    (login,) = device.login()
    frames = [login, device.heartbeat(), device.position(FIX), *device.batch([FIX])]
    frames += [device.alarm(FIX, alarm) for alarm in sorted(ALARM_EVENTS)]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=common.ctx(NOW), device_id="99999999")
    (r,) = decoded[2].records
    assert common.at_fix(r, FIX) and r.valid
    assert r.speed == pytest.approx(FIX.speed, abs=0.01) and r.course == FIX.course
    for alarm in ALARM_EVENTS:
        assert CODEC.decode(device.alarm(FIX, alarm), common.ctx(NOW)).records[0].alarms == [alarm]
    with pytest.raises(ValueError):
        device.alarm(FIX, "jamming")
    with pytest.raises(ValueError):
        LaipacDevice("99-99")
