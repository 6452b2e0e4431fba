"""Trimble TAIP: message layouts, attributes, checksums, replies, framing, detection, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import taip
from trackpipe.protocols.base import ChecksumError, Context, DecodeError, Detection, Fix, FramingError, Record
from trackpipe.protocols.devices.taip import Device as TaipDevice
from trackpipe.protocols.kit.checksums import xor8

from tests.protocols import common

CODEC = taip.CODEC
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def signed(body: str) -> bytes:
    """`>body;*hh<` with the checksum over `>body;*`."""
    text = f">{body};*"
    return f"{text}{xor8(text.encode()):02X}<".encode()


RPV = signed("RPV03874+3477708-0923453100029212;ID=0017")
REV = b">REV481599462982+2578391-0802945201228512;ID=Test<"
RGP = signed("RGP211217112154-2748332-058946350000000FF7F0100;ID=AA01;#0002")
RUS = signed(
    "RUS00,031120185945-3138060-06417622000209200FF,000000000000000000000000000,0000000000,11440419,"
    "01234,+12.5,-3.0,18;ID=CST3G0495;#IP0:1EF7"
)


def _one(frame: bytes) -> Record:
    return common.one_record(CODEC, frame, common.ctx(NOW))


# --- detection / framing -------------------------------------------------------------------
def test_detect() -> None:
    for end in range(1, 5):
        assert CODEC.detect(RPV[:end], "tcp") is Detection.MORE
        assert CODEC.detect(RPV[:end], "udp") is Detection.NO
    assert CODEC.detect(RPV, "tcp") is Detection.YES
    assert CODEC.detect(b"\r\n" + REV, "udp") is Detection.YES
    assert CODEC.detect(b"\r\n", "tcp") is Detection.MORE
    for foreign in (b">ACK;ID=1<", b">Rpv0", b"<RPV", b"$GPRMC,", b">RPVX", b"\r\nX"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


def test_framing() -> None:
    stream = RPV + b"\r\n" + REV + RGP
    assert common.frames(CODEC, stream) == [RPV, REV, RGP]
    assert common.frames(CODEC, stream, chunk=1) == [RPV, REV, RGP]
    common.oversized_is_fatal(CODEC, b">RPV" + b"1" * CODEC.max_frame)
    assert CODEC.split_datagram(REV[:-1]) == [REV]
    assert CODEC.split_datagram(b"\r\n" + RPV + RGP + b"\r\n") == [RPV, RGP]
    for bad in (b"", b"\r\n", b"junk<"):
        with pytest.raises(FramingError):
            CODEC.split_datagram(bad)


# --- decode --------------------------------------------------------------------------------
def test_rpv_seconds_of_day_and_mph() -> None:
    r = _one(RPV)
    assert r.fix_time == datetime(2026, 1, 1, 1, 4, 34, tzinfo=UTC) and r.valid
    assert (r.latitude, r.longitude, r.speed, r.course) == (34.77708, -92.34531, 0, 292)
    late_frame = signed("RPV86000+3477708-0923453106029212;ID=0017")
    (late,) = CODEC.decode(late_frame, Context(received_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC))).records
    assert late.fix_time == datetime(2025, 12, 31, 23, 53, 20, tzinfo=UTC)  # nearest day
    assert late.speed == pytest.approx(60 * 1.609344)


def test_rev_gps_week_time() -> None:
    r = _one(REV)
    assert r.fix_time == datetime(2010, 9, 2, 17, 29, 42, tzinfo=UTC)
    assert (r.latitude, r.longitude, r.attributes["event"]) == (25.78391, -80.29452, "48")
    sos = _one(b">REV011599462982+2578391-0802945201228512;ID=Test<")
    cut = _one(b">REV021599462982+2578391-0802945201228512;ID=Test<")
    assert (sos.alarms, cut.alarms) == (["sos"], ["powerCut"])


def test_rgp_tail_and_index_reply() -> None:
    r = _one(RGP)
    assert r.fix_time == datetime(2017, 12, 21, 11, 21, 54, tzinfo=UTC)
    assert not r.valid  # fix mode 0
    assert (r.attributes["input"], r.attributes["event"], r.attributes["hdop"], r.ignition) == ("127", "1", "0", False)
    assert r.alarms == ["sos"]
    info = CODEC.inspect(RGP, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("alarm", "AA01", b">ACK;ID=AA01;#0002;*76<")


def test_rus_extended_tail_and_sak_reply() -> None:
    r = _one(RUS)
    assert (r.power, r.battery, r.odometer, r.attributes["rpm"]) == (11.44, 4.19, 0.0, "1234")
    assert (r.attributes["temp1"], r.attributes["temp2"]) == ("12.5", "-3.0")
    assert r.attributes["event"] == "24" and r.alarms == ["accident"]  # hex 18, comma-style table
    assert CODEC.inspect(RUS, "tcp").reply == b">SAK;ID=CST3G0495;#IP0:1EF7<"


def test_io_tail_variant() -> None:
    frame = signed("RGP211217112154-2748332-05894635000000A1F0412345678901223080" + "0FF1399+1234FF-0050FF;ID=77")
    r = _one(frame)
    assert r.attributes["input"] == str(0xA1) and r.battery == 412 and r.odometer == 0x34567890
    assert r.valid and r.attributes["pdop"] == "23" and r.attributes["rssi"] == "99"
    assert (r.attributes["temp1"], r.attributes["temp2"]) == ("12.34", "-0.5")


def test_minutes_coordinates() -> None:
    r = _one(signed("RGP211217112154-2748.3320-05856.7810000000;ID=1"))
    assert r.latitude == pytest.approx(-(27 + 48.332 / 60)) and r.longitude == pytest.approx(-(58 + 56.781 / 60))


def test_attributes_and_replies() -> None:
    frame = b">REV131756153215+3359479-0075299001031332;VO=10568798;IO=310;SV=10;BL=4190;AD=7;IX=12;XX=y;ID=35661<"
    r = _one(frame)
    assert (r.odometer, r.satellites, r.battery, r.ignition) == (10568798, 10, 4.19, True)
    assert r.attributes["charge"] == "true" and r.attributes["output"] == "1" and r.attributes["input"] == "0"
    assert (r.attributes["adc1"], r.attributes["io1"], r.attributes["xx"]) == ("7", "12", "y")
    assert CODEC.inspect(frame, "tcp").reply == b"35661"  # no index: the bare id
    first = signed("RPV03874+3477708-0923453100029212;#1DE2;ID=7196")
    assert CODEC.inspect(first, "udp").reply == b">ACK;#1DE2;ID=7196;*7E<"
    assert CODEC.inspect(b">RPV03874+3477708-0923453100029212<", "tcp").reply is None  # no id, no answer


def test_akroz() -> None:
    ident = _one(signed("RUV0000,NT003,190826125922,00111595,39K40156,0B36 F,203 V,V1.5,JMAK,0,0,0,8955;ID=FWHS"))
    assert not ident.has_position and ident.fix_time == datetime(2019, 8, 26, 12, 59, 22, tzinfo=UTC)
    assert (ident.battery, ident.power) == (pytest.approx(0.11), pytest.approx(15.95))
    assert ident.attributes["versionFw"] == "0B36 F" and ident.attributes["iccid"] == "8955"
    trip = _one(
        signed("RUV02108,NT003,190826131734-2353539-046680190000009FF5E0006,384,0,0,0,0,385,0,323,6,50000,51515;ID=X")
    )
    assert trip.attributes["fuelUsed"] == "5151.5" and trip.attributes["event"] == "108"
    assert trip.speed == 0 and not trip.valid and trip.attributes["charge"] == "true"
    engine = _one(
        signed(
            "RUV01104,NT003,190826131734-2353539-046680190500009FF5E0006,01201320,1,2,3,10,500,1500,90,40,55,0,0,0,"
            "DRIVER1;ID=X"
        )
    )
    assert engine.alarms == ["overspeed"] and engine.speed == 50  # km/h on Akroz
    assert (engine.attributes["hours"], engine.odometer, engine.attributes["driverUniqueId"]) == (
        "600000",
        500,
        "DRIVER1",
    )


def test_undecoded_and_bad_frames() -> None:
    for frame in (b">RAL19500+00230+00012;ID=3168;*48<", b">RCP03874+347771-092345312;ID=0017;*65<"):
        info = CODEC.inspect(frame, "tcp")
        assert (info.kind, info.device_id, info.reply) == ("other", info.device_id, None)
        assert CODEC.decode(frame, common.ctx(NOW)).records == []
    with pytest.raises(ChecksumError):
        CODEC.inspect(RPV.replace(b"*71", b"*70"), "tcp")
    with pytest.raises(ChecksumError):
        CODEC.decode(b">RPV03874+3477708-0923453100029212;ID=0017;*7Z<", common.ctx(NOW))
    lantrix = b">RPV03874+3477708-0923453100029212;ID=0017;*" + b"%02X" % xor8(
        b">RPV03874+3477708-0923453100029212;ID=0017;"
    )
    assert CODEC.decode(lantrix + b"<", common.ctx(NOW)).records
    for bad in (b"RPV", b">XYZ<", b">RPV03874+9977708-0923453100029212;ID=1<"):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, common.ctx(NOW))


# --- device --------------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=123.0)


def test_device_round_trip() -> None:
    device = TaipDevice("0017")
    assert device.login() == []
    frames = [device.heartbeat(), device.position(FIX), *device.batch([FIX]), device.alarm(FIX, "sos")]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=common.ctx(NOW), device_id="0017")
    assert [f for f in frames if not device.expects_reply(f)] == frames[:1]  # only the heartbeat goes unanswered
    assert decoded[0].records == []
    (r,) = CODEC.decode(device.position(FIX), Context(received_at=FIX.time)).records
    assert common.at_fix(r, FIX) and r.valid
    assert r.speed == pytest.approx(FIX.speed, abs=1.61) and r.course == FIX.course
    (a,) = CODEC.decode(device.alarm(FIX, "powerCut"), common.ctx(NOW)).records
    assert a.alarms == ["powerCut"] and a.fix_time == FIX.time
    with pytest.raises(ValueError):
        device.alarm(FIX, "jamming")
    assert not device.check_reply(frames[0], b"nope")
