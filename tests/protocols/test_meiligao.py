"""Meiligao: hand-built frames, replies, framing, detection, device round trip."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import meiligao
from trackpipe.protocols.base import ChecksumError, Context, Detection, Fix, FramingError
from trackpipe.protocols.devices.meiligao import Device, sentence

from tests.protocols import common

CODEC = meiligao.CODEC
ID = "14219034096"
IDENT = meiligao.encode_id(ID)
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FIX = Fix(WHEN, -33.8688, 151.2093, speed=18.52, course=90, satellites=7)
CTX = Context("tcp", None, WHEN)
TEXT = (
    "035644.000,A,2232.6083,N,11404.8137,E,10.00,45,010809,,*1C"
    "|1.5|194|0103|0001,00FF|02DE0002D8CDB415|1F|00FD6B79|07|DRIVER"
)


def frame(command: int, data: bytes | str = b"") -> bytes:
    return meiligao.build(IDENT, command, data.encode() if isinstance(data, str) else data)


def decode(data: bytes, **options: str):
    return CODEC.decode(data, Context("tcp", None, WHEN, options))


def test_login_and_heartbeat_replies() -> None:
    login = bytes.fromhex("24240011671440258855405000b24d0d0a")
    info = CODEC.inspect(login, "tcp")
    assert (info.kind, info.device_id) == ("login", "67144025885540")
    reply = info.reply
    assert reply is not None and reply[:4] == b"@@\x00\x12" and reply[4:11] == login[4:11]
    assert reply[11:14] == b"\x40\x00\x01" and reply[-2:] == b"\r\n"
    assert int.from_bytes(reply[14:16], "big") == meiligao.crc(reply[:14])
    beat = CODEC.inspect(frame(meiligao.HEARTBEAT), "tcp")
    assert beat.kind == "heartbeat" and beat.reply == meiligao.build(IDENT, 0x0001, b"\x01", b"@@")
    assert CODEC.decode(login, CTX).records == []


def test_photo_replies() -> None:
    assert CODEC.inspect(frame(0x0800, b"\x05"), "tcp").reply == meiligao.build(IDENT, 0x8801, b"\x05", b"@@")
    assert CODEC.inspect(frame(0x0F80, b"\x05"), "tcp").reply == meiligao.build(IDENT, 0x6688, b"\x05\0\0", b"@@")
    assert CODEC.inspect(frame(meiligao.POSITION, TEXT), "tcp").reply is None


def test_full_position_sentence() -> None:
    (rec,) = decode(frame(meiligao.POSITION, TEXT)).records
    assert rec.fix_time == datetime(2009, 8, 1, 3, 56, 44, tzinfo=UTC) and rec.valid
    assert rec.latitude == pytest.approx(22 + 32.6083 / 60) and rec.longitude == pytest.approx(114 + 4.8137 / 60)
    assert rec.speed == pytest.approx(18.52) and rec.course == 45 and rec.altitude == 194
    a = rec.attributes
    assert a["hdop"] == "1.5" and a["out1"] == "true" and a["out2"] == "true" and a["in1"] == "true"
    assert a["out3"] == "false" and (a["adc1"], a["adc2"]) == ("1", "255")
    assert a["rssi"] == "31" and rec.odometer == 0xFD6B79 and rec.satellites == 7 and a["card"] == "DRIVER"


def test_short_sentence_and_decimal_odometer_with_rfid() -> None:
    (rec,) = decode(frame(meiligao.POSITION, "140603.000,V,0934.2554,S,06913.0966,W,0.00,,301012,,*02")).records
    assert not rec.valid and rec.latitude < 0 and rec.longitude < 0 and rec.course == 0
    text = "101927.000,A,1726.82793,N,07828.19671,E,1.8,6.4,171116,,*2B|1.68|544.2|1000|0000,0000|000028687|00ABCDE"
    (rec,) = decode(frame(meiligao.POSITION, text)).records
    assert rec.odometer == 28687 and rec.attributes["driverUniqueId"] == "00ABCDE" and rec.altitude == 544.2


@pytest.mark.parametrize(("code", "alarm"), sorted(meiligao.ALARMS.items()))
def test_alarm_codes(code: int, alarm: str) -> None:
    data = frame(meiligao.ALARM, bytes((code,)) + TEXT.encode())
    assert CODEC.inspect(data, "tcp").kind == "alarm"
    assert decode(data).records[0].alarms == [alarm]


def test_tk218_alarm_table_and_inputs() -> None:
    assert decode(frame(meiligao.ALARM, b"\x60" + TEXT.encode()), model="TK218").records[0].alarms == ["fatigueDriving"]
    assert decode(frame(meiligao.ALARM, b"\x03" + TEXT.encode())).records[0].attributes["in3"] == "1"
    assert decode(frame(meiligao.ALARM, b"\x34" + TEXT.encode())).records[0].attributes["in4"] == "0"


def test_logged_and_retransmission_are_archive() -> None:
    (rec,) = decode(frame(meiligao.POSITION_LOGGED, bytes(6) + TEXT.encode())).records
    assert rec.archive
    items = b"\x02" + b"\x00" + TEXT.encode() + b"\\" + b"\x00" + TEXT.encode()
    records = decode(frame(meiligao.RETRANSMISSION, items)).records
    assert len(records) == 2 and all(r.archive for r in records)
    assert CODEC.inspect(frame(meiligao.RETRANSMISSION, items), "tcp").kind == "batch"


def test_rfid_frame() -> None:
    cards = struct.pack(">15I", 12345, *([0] * 14))
    (rec,) = decode(frame(meiligao.RFID, cards + b"|120340,280606,2400.0000,N,12100.0000,E")).records
    assert rec.fix_time == datetime(2006, 6, 28, 12, 3, 40, tzinfo=UTC) and rec.latitude == 24
    assert rec.attributes["card1"] == "0000012345" and rec.attributes["driverUniqueId"] == "0000012345"


def test_obd_frames() -> None:
    obd = "10.1,900,56,0.00,19.61,-34,34.26,21.83,7.91,1033,2.69,6.55,0,1,2"
    (rec,) = decode(frame(meiligao.OBD_RT, obd)).records
    assert rec.battery == 10.1 and rec.attributes["rpm"] == "900" and rec.odometer == 1033
    assert rec.attributes["coolantTemp"] == "-34" and rec.attributes["hardBrakingCount"] == "2"
    (rec,) = decode(frame(meiligao.OBD_RTA, "1,2.5,3.5,4,5,6,7,8,9")).records
    assert rec.attributes["totalIdlingTime"] == "3.5" and rec.attributes["totalHarshBrake"] == "9"
    (rec,) = decode(frame(meiligao.DTC, "P0101,C1E88")).records
    assert rec.attributes["dtcs"] == "P0101 C1E88" and not rec.has_position


def test_bad_crc_is_not_acked_and_not_detected() -> None:
    data = bytearray(frame(meiligao.LOGIN))
    data[-3] ^= 0xFF
    with pytest.raises(ChecksumError):
        CODEC.inspect(bytes(data), "tcp")
    assert CODEC.detect(bytes(data), "tcp") is Detection.NO


def test_detection() -> None:
    data = frame(meiligao.POSITION, TEXT)
    for n in range(1, len(data)):
        assert CODEC.detect(data[:n], "tcp") is Detection.MORE, n
    assert CODEC.detect(data, "tcp") is Detection.YES
    assert CODEC.detect(data + frame(meiligao.HEARTBEAT), "udp") is Detection.YES
    assert CODEC.detect(b"$$A123,865001234567890,AAA,35", "tcp") is Detection.NO  # meitrack
    assert CODEC.detect(b"$$B7" + b"x" * 40, "tcp") is Detection.NO  # totem-style hex length
    assert CODEC.detect(b"$$\x00\x11\x12\x34\xf5\xff\xff\xff\xff\x50\x00", "tcp") is Detection.NO  # digit after F
    assert CODEC.detect(b"$$\x00\x11" + b"\xff" * 7 + b"\x50\x00", "tcp") is Detection.NO  # no digits
    assert CODEC.detect(b"$$\x00\x11" + IDENT + b"\x12\x34", "tcp") is Detection.NO  # unknown command


def test_unit_at_at_frame_is_detected_only_whole() -> None:
    data = meiligao.build(IDENT, meiligao.OBD_RT, b"1.0,1,1,1.0,1.0,1,1.0,1.0,1.0,1,1.0,1.0,1,1,1", b"@@")
    assert CODEC.detect(data, "tcp") is Detection.YES
    assert CODEC.detect(data[:20], "tcp") is Detection.NO


def test_framing() -> None:
    a, b = frame(meiligao.LOGIN), frame(meiligao.POSITION, TEXT)
    assert common.frames(CODEC, a + b) == [a, b]
    assert common.frames(CODEC, a + b, chunk=1) == [a, b]
    common.garbage_is_skipped(CODEC, b"\x00\x01junk", a)
    common.oversized_is_fatal(CODEC, b"$$\xff\xff" + IDENT)
    assert CODEC.split_datagram(a + b) == [a, b]
    with pytest.raises(FramingError):
        CODEC.split_datagram(b[:-3])
    # a frame without its CRLF (stripped by an upstream framer) still decodes
    assert decode(b[:-2]).records[0].has_position


def test_device_round_trip() -> None:
    dev = Device(ID)
    frames = [*dev.login(), dev.heartbeat(), dev.position(FIX), dev.alarm(FIX, "sos"), *dev.batch([FIX, FIX])]
    for decoded in common.device_round_trip(CODEC, dev, frames, ctx=CTX, device_id=ID):
        for rec in decoded.records:
            assert rec.fix_time == WHEN and rec.satellites == 7
            assert rec.latitude == pytest.approx(FIX.latitude, abs=1e-5)
            assert rec.longitude == pytest.approx(FIX.longitude, abs=1e-5)
            assert rec.speed == pytest.approx(FIX.speed, abs=0.02)
    assert decode(dev.alarm(FIX, "powerOff")).records[0].alarms == ["powerOff"]
    assert all(decode(f).records[0].archive for f in dev.batch([FIX]))
    assert sentence(FIX).startswith("050607.000,A,3352.1280,S,15112.5580,E")
    with pytest.raises(ValueError):
        dev.alarm(FIX, "vibration")
