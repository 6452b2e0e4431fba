"""Totem: the four text formats, replies, framing, detection, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import totem
from trackpipe.protocols.base import ChecksumError, Context, Detection, Fix, ProtocolError
from trackpipe.protocols.devices.totem import Device as TotemDevice
from trackpipe.protocols.kit.checksums import CRC16_MODBUS

from tests.protocols import common

CODEC = totem.CODEC
CTX = Context()


def four(kind: str, imei: str, body: str) -> bytes:
    """A format-4 frame with the right length and XOR."""
    content = f"{kind}{imei}|{body}"
    head = f"$${len(content) + 8:04d}{content}".encode()
    return head + totem.xor_hex(head).encode()


def old(body: str, crc: bool = False) -> bytes:
    """An older-format frame; with `crc`, the CRC-16/MODBUS of formats 1 and 3 is appended."""
    if not crc:
        return f"$${len(body) + 4:02X}{body}".encode()
    head = f"$${len(body) + 8:02X}{body}".encode()
    return head + f"{CRC16_MODBUS(head):04X}".encode()


F4 = four(
    "AA",
    "864244026065291",
    "18001800140916020524401100000000000027BA0E57063100000001.200000002237.8119N11403.5075E0520",
)
F1 = old(
    "863771024392112|01$GPRMC,044704.000,A,1439.3334,N,12059.1417,E,10.00,45.00,200815,,,A*67|01.7|00.8|01.4|"
    "000001000001|20150820044704|14291265|00000000|4EECBF8B31|0250|12.5000|0002|00000|",
    crc=True,
)
F2 = old(
    "862170017861566|11180613080657|A|2237.1901|S|11402.1369|W|1.579|178|8.70|100000001011|13811|00000000|"
    "253162F5|00000000|3.5000|0014|2B16"
)
F3 = old(
    "862170017856731|3913090911165280000370000000000000000019BD508A0400000003.400000093644.9817N01012.9944E0050",
    crc=True,
)


# --- replies --------------------------------------------------------------------------
def test_format4_reply_is_serial_plus_xor() -> None:
    info = CODEC.inspect(F4, "tcp")
    head = b"$$0014AA0520"
    assert info.reply == head + totem.xor_hex(head).encode()
    assert info.device_id == "864244026065291" and info.kind == "position"


def test_older_formats_get_ack_ok() -> None:
    for data in (F1, F2, F3):
        assert CODEC.inspect(data, "tcp").reply == b"ACK OK\r\n"


def test_bad_checksums_are_not_acknowledged() -> None:
    with pytest.raises(ChecksumError):
        CODEC.inspect(F4[:-2] + b"00", "tcp")
    for data in (F1, F3):
        assert CODEC.inspect(data, "tcp").reply == b"ACK OK\r\n"
        with pytest.raises(ChecksumError):
            CODEC.decode(data[:-4] + b"0000", CTX)
    assert CODEC.inspect(F2[:-4] + b"0000", "tcp").reply == b"ACK OK\r\n"  # format 2: unchecked
    assert CODEC.inspect(F1[:-5] + b"0000", "tcp").reply == b"ACK OK\r\n"  # cut capture: unchecked


# --- decoding -------------------------------------------------------------------------
def test_format4_fields() -> None:
    (r,) = CODEC.decode(F4, CTX).records
    assert r.fix_time == datetime(2014, 9, 16, 2, 5, 24, tzinfo=UTC)
    assert r.latitude == pytest.approx(22 + 37.8119 / 60) and r.longitude == pytest.approx(114 + 3.5075 / 60)
    assert (r.satellites, r.course, r.speed, r.odometer) == (6, 0.0, 0.0, 0.0)
    assert (r.battery, r.power) == (4.0, 11.0)
    assert r.attributes["hdop"] == "1.2" and r.attributes["lac"] == str(0x27BA)
    # status 18001800: bit 32-4 charging, 32-5 geofence exit, 32-20 fix valid (a second temperature is present)
    assert r.alarms == ["geofenceExit"] and not r.ignition and r.attributes["charge"] == "true"
    assert r.attributes["rssi"] == "31" and r.attributes["temp2"] == "0000" and r.valid


@pytest.mark.parametrize(("code", "alarm"), sorted(totem.ALARMS_4.items()))
def test_format4_alarm_types(code: int, alarm: str) -> None:
    data = four(f"{code:02X}", "864244026065291", F4.decode().split("|")[1][:-2])
    decoded = CODEC.decode(data, CTX)
    assert decoded.kind == "alarm" and alarm in decoded.records[0].alarms
    assert CODEC.inspect(data, "tcp").kind == "alarm"


def test_format4_obd_and_rfid() -> None:
    e5 = four(
        "E5",
        "864606045334223",
        "201112223514,-68.923106,-22.455926,$Cloud,1738,621,730,12100,900,55,1,2,80,30,40,25,60,|",
    )
    (r,) = CODEC.decode(e5, CTX).records
    assert (r.latitude, r.longitude, r.odometer, r.power) == (-68.923106, -22.455926, 1738.0, 12.1)
    assert (r.attributes["rpm"], r.attributes["fuel"], r.attributes["coolantTemp"]) == ("900", "60", "80")
    e2 = four("E2", "123456789012345", "150425223945,113.925525,22.55814,1122334455|")
    (r,) = CODEC.decode(e2, CTX).records
    assert r.attributes["driverUniqueId"] == "1122334455" and r.longitude == 113.925525


def test_format1_gprmc() -> None:
    (r,) = CODEC.decode(F1, CTX).records
    assert r.fix_time == datetime(2015, 8, 20, 4, 47, 4, tzinfo=UTC) and r.valid
    assert r.speed == pytest.approx(10 * 1.852) and r.course == 45
    assert r.alarms == ["sos"]  # alarm 01 and io bit 0
    assert (r.battery, r.power, r.odometer) == (4.29, 12.65, 12500.0)
    at = r.attributes
    assert (at["in1"], at["in2"], at["out1"], at["pdop"]) == ("true", "false", "false", "01.7")
    assert at["lac"] == str(0xECBF) and at["cid"] == str(0x8B31) and at["temp1"] == "0250" and at["adc1"] == "00000000"


def test_format2_pipes() -> None:
    (r,) = CODEC.decode(F2, CTX).records
    assert r.alarms == ["overspeed"] and r.fix_time == datetime(2013, 6, 18, 8, 6, 57, tzinfo=UTC)
    assert r.latitude < 0 and r.longitude < 0 and r.speed == pytest.approx(1.579 * 1.852)
    assert (r.battery, r.power, r.odometer) == (3.8, 11.0, 3500.0)
    assert r.attributes["antenna"] == "true" and r.attributes["charge"] == "true" and r.attributes["out4"] == "true"


def test_format3_fixed_width() -> None:
    (r,) = CODEC.decode(F3, CTX).records
    assert r.fix_time == datetime(2009, 9, 13, 11, 16, 52, tzinfo=UTC) and r.valid
    assert (r.satellites, r.battery, r.odometer) == (4, 3.7, 9000.0)
    assert r.latitude == pytest.approx(36 + 44.9817 / 60) and r.attributes["pdop"] == "3.4"


def test_no_date_frames_have_no_position() -> None:
    zero = old(
        "862170017856731|AA$GPRMC,000000.00,V,0000.0000,N,00000.0000,E,000.0,000.0,000000,,,A*73|00.0|00.0|00.0|"
        "000000001000|20000000000000|13790000|00000000|00000000|00000000|0.0000|0007|8C23"
    )
    assert CODEC.decode(zero, CTX).records == []
    beat = b"$$0025BB8620100372948613E"
    assert CODEC.decode(beat, CTX).kind == "heartbeat" and CODEC.inspect(beat, "tcp").kind == "heartbeat"


@pytest.mark.parametrize("data", [b"$$0030AA123456789012345|XYZ00", old("123|1|2|3"), b"$$", b"$$0"])
def test_malformed(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        CODEC.inspect(data, "tcp")
        CODEC.decode(data, CTX)


# --- framing and detection ---------------------------------------------------------------
def test_framing() -> None:
    stream = F4 + b"\r\n" + F1 + F2 + b"\r\n" + F3
    assert common.frames(CODEC, b"\r\n" + stream) == [F4, F1, F2, F3]
    assert common.frames(CODEC, stream, chunk=1) == [F4, F1, F2, F3]
    common.garbage_is_skipped(CODEC, b"junk", F4)
    # `$$0ddd` caps a frame at 999 bytes and `$$xx` at 255: a frame cannot outgrow max_frame
    framer = CODEC.new_framer()
    framer.feed(b"$$0999AA" + b"1" * 2000)
    assert framer.next_frame() == b"$$0999AA" + b"1" * 991


def test_length_field_limits() -> None:
    framer = CODEC.new_framer()
    framer.feed(b"$$0ABCAA")  # not a decimal length: garbage up to the next $$
    with pytest.raises(ProtocolError):
        framer.next_frame()


def test_detection() -> None:
    for data in (F4, F1, b"\r\n" + F4):
        assert CODEC.detect(data, "tcp") is Detection.YES
    for end in range(1, 12):
        assert CODEC.detect(F4[:end], "tcp") is Detection.MORE
    for other in (
        b"$$A158,79007001520234,AAA,35,40.996370",  # meitrack
        b"$$\x00\x11\x13\x61\x23\x45\x67\x8f\xff\x50\x00",  # meiligao
        b"$$135,866104023192332,29,A01,",  # fifotrack
        b"$GPRMC,1",
    ):
        assert CODEC.detect(other, "tcp") is Detection.NO, other


# --- device ---------------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.866423, 151.19006, speed=57.3, course=123)


def test_device_round_trip() -> None:
    device = TotemDevice("864244026065291")
    data = device.position(FIX)
    assert CODEC.detect(data, "tcp") is Detection.YES and common.frames(CODEC, data) == [data]
    info = CODEC.inspect(data, "tcp")
    assert device.expects_reply(data) and device.check_reply(data, info.reply)
    (r,) = CODEC.decode(data, CTX).records
    assert r.fix_time == FIX.time and r.valid and r.ignition
    assert r.latitude == pytest.approx(FIX.latitude, abs=1e-5) and r.longitude == pytest.approx(FIX.longitude, abs=1e-5)
    assert r.speed == 57 and r.course == 123
    beat = device.heartbeat()
    assert device.check_reply(beat, CODEC.inspect(beat, "tcp").reply)
    assert all(CODEC.decode(f, CTX).records[0].has_position for f in device.batch([FIX, FIX]))
    for alarm in ("sos", "powerCut", "lowBattery", "overspeed", "vibration"):
        assert alarm in CODEC.decode(device.alarm(FIX, alarm), CTX).records[0].alarms
    with pytest.raises(ValueError):
        device.alarm(FIX, "jamming")
