"""Aplicom D/E/F/H: hand-built messages (PROTOCOLS.md section 7), framing, detection."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import aplicom
from trackpipe.protocols.base import DecodeError, Detection

from tests.protocols import common

CODEC = aplicom.CODEC
SAMPLE = bytes.fromhex("44c20146b710c158da002100b09f0700c054ca0ea254ca0e9c03be0bf6015d7069070000142a600000000000000001")
IMEI = 359227050776794


def _message(protocol: bytes, body: bytes, selector: int | None = None, imei: int = IMEI) -> bytes:
    flags = 0x80 | (0x40 if selector is not None else 0)
    head = protocol + bytes((flags,)) + imei.to_bytes(7, "big") + len(body).to_bytes(2, "big")
    return head + (selector.to_bytes(3, "big") if selector is not None else b"") + body


def _d_body(event: int = 7) -> bytes:
    body = bytes((event, 0))
    body += b"\x40" + struct.pack(">II", 1_700_000_010, 1_700_000_000)  # validity, device time, fix time
    body += struct.pack(">ii", 60_169_856, 24_938_379) + b"\x09"  # lat, lon, satellites
    body += bytes((72, 90, 45))  # speed, max speed, course/2
    body += b"\x05" + struct.pack(">HHHH", 1, 2, 3, 4)  # inputs, ADC
    body += struct.pack(">HH", 12500, 4100)  # power, battery
    body += b"\x01"  # outputs
    body += struct.pack(">h", 35)  # altitude
    return body


D_SELECTOR = 0x0008 | 0x0004 | 0x0010 | 0x0040 | 0x0020 | 0x8000 | 0x0800


# --- detection -----------------------------------------------------------------------
def test_detect() -> None:
    assert CODEC.detect(SAMPLE, "tcp") is Detection.YES
    assert CODEC.detect(b"359227050776794" + SAMPLE, "tcp") is Detection.YES  # alive digits first
    for end in range(1, len(SAMPLE)):
        assert CODEC.detect(SAMPLE[:end], "tcp") is Detection.MORE
    for foreign in (b"DELETE / HTTP/1.1\r\n", b"HEAD / HTTP/1.1\r\n", b"EL\x00\x10", b"12345;", b"Hello"):
        assert CODEC.detect(foreign, "tcp") is Detection.NO
    assert CODEC.detect(SAMPLE + b"\x99", "tcp") is Detection.NO  # a stray byte after the length
    assert CODEC.transports == frozenset({"tcp"})


# --- framing -------------------------------------------------------------------------
def test_framing() -> None:
    other = _message(b"D", _d_body(), D_SELECTOR)
    stream = b"359227050776794" + SAMPLE + other + SAMPLE
    assert common.frames(CODEC, stream) == [SAMPLE, other, SAMPLE]
    assert common.frames(CODEC, stream, chunk=1) == [SAMPLE, other, SAMPLE]
    common.garbage_is_skipped(CODEC, b"\x00\x01zz", SAMPLE)
    common.oversized_is_fatal(CODEC, b"D\x80" + bytes(7) + b"\xff\xff" + bytes(20))


# --- inspect / decode ----------------------------------------------------------------
def test_inspect_has_no_reply() -> None:
    info = CODEC.inspect(SAMPLE, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("position", str(IMEI), None)
    assert CODEC.inspect(_message(b"F", bytes(3)), "tcp").kind == "status"


def test_d_position() -> None:
    decoded = CODEC.decode(_message(b"D", _d_body(), D_SELECTOR), common.ctx())
    (rec,) = decoded.records
    assert decoded.device_id == str(IMEI)
    assert rec.fix_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC) and rec.valid
    assert (rec.latitude, rec.longitude) == (60.169856, 24.938379)
    assert (rec.speed, rec.course, rec.altitude, rec.power, rec.battery) == (72.0, 90.0, 35.0, 12.5, 4.1)
    assert rec.attributes["satVisible"] == "9" and rec.attributes["adc3"] == "3"
    assert (rec.attributes["input"], rec.attributes["output"]) == ("5", "1")
    assert rec.attributes["deviceTime"] == "2023-11-14T22:13:30"


def test_unit_id_is_mapped_to_an_imei() -> None:
    body = _d_body()
    frame = (
        b"D\x40" + (0x46B710).to_bytes(3, "big") + len(body).to_bytes(2, "big") + D_SELECTOR.to_bytes(3, "big") + body
    )
    assert CODEC.decode(frame, common.ctx()).device_id == "358244015322896"  # TC65 v2.8 base, Luhn-valid


def test_event_data_and_can_option() -> None:
    can = b"\x00\x00\x01" + b"\x07" + b"\x01" + b"\x01" + b"\x00\x00" + bytes(4) + bytes(8)
    can += struct.pack("<hhhh", 1500, 805, 1325, -52) + struct.pack(">I", 0x20D)
    frame = _message(b"D", _d_body(event=119) + can, D_SELECTOR | 0x1000)
    (plain,) = CODEC.decode(frame, common.ctx()).records
    assert plain.attributes["eventData"] == can.hex() and "rpm" not in plain.attributes
    (decoded,) = CODEC.decode(frame, common.ctx(can="true")).records
    assert decoded.attributes["rpm"] == "1500" and decoded.attributes["dieselTemperature"] == "80.5"
    assert decoded.attributes["supplyAirTempDep1"] == "-5.2"


def test_e_f_h_messages() -> None:
    e_body = bytes((5, 0)) + struct.pack(">H", 3) + struct.pack(">I", 1_700_000_000) + bytes((1, 2, 3))
    e_body += struct.pack(">H", 256 * 80)
    (tacho,) = CODEC.decode(_message(b"E", e_body, 0x0008 | 0x0004 | 0x0040), common.ctx()).records
    assert tacho.attributes["obdSpeed"] == "80" and tacho.attributes["driver2State"] == "3"
    assert tacho.fix_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC) and not tacho.has_position
    f_body = bytes((1, 0)) + b"\x00" + struct.pack(">HHH", 1500, 2000, 700) + struct.pack(">I", 123456)
    (fms,) = CODEC.decode(_message(b"F", f_body, 0x0008 | 0x0080), common.ctx()).records
    assert fms.attributes["rpm"] == "1500" and fms.odometer == 123456
    h_body = bytes((2, 0)) + b"\x07" + b"\x00\x0b" + b"\x02\x01" + struct.pack(">HH", 10, 20) + struct.pack(">I", 30)
    (hist,) = CODEC.decode(_message(b"H", h_body, 0), common.ctx()).records
    assert hist.attributes["h1Data"] == "10 20" and hist.attributes["h1Total"] == "30"


def test_concatenated_messages_are_all_decoded() -> None:
    frame = _message(b"D", _d_body(), D_SELECTOR)
    assert len(CODEC.decode(frame + frame, common.ctx()).records) == 2


@pytest.mark.parametrize("frame", [SAMPLE[:20], b"X" + SAMPLE[1:], _message(b"D", _d_body()[:10], D_SELECTOR)])
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx())
