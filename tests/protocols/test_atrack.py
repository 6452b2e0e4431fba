"""ATrack: keep-alive, binary and text reports (PROTOCOLS.md section 7), replies, framing, detection, device."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import atrack
from trackpipe.protocols.base import ChecksumError, DecodeError, Detection, Fix
from trackpipe.protocols.devices.atrack import Device as AtrackDevice
from trackpipe.protocols.kit.checksums import CRC16_ARC

from tests.protocols import common

CODEC = atrack.CODEC
UNIT = 352964052096642
KEEPALIVE = bytes.fromhex("fe0200014104d8f196820001")
BINARY = bytes.fromhex(
    "40501e58003301e000014104d8f19682525ecd5d525ee344525ee35effc88815026ab4d70000020000104403de01000b0000000007d007d000"
)
TEXT = (
    b"@P,93D1,419,0,357766091026083,1557178589,1557178590,1557178590,-121899637,37406241,338,230,2809,8,0,0,0,0,"
    b",2000,2000,\r\n"
)


def _record(*, time: int = 1_700_000_000, report: int = 2, message: bytes = b"", custom: bytes = b"") -> bytes:
    head = struct.pack(">IIIiiHB", time, time + 1, time + 2, 24_938_379, 60_169_856, 181, report)
    body = struct.pack(">IHBHBH", 1234, 9, 3, 72, 1, 4100) + b"D42\x00" + struct.pack(">hh", 215, -35)
    return head + body + message + b"\x00" + custom


def _binary(*records: bytes, prefix: bytes = b"@P", seq: int = 0x0102, unit: int = UNIT) -> bytes:
    body = seq.to_bytes(2, "big") + unit.to_bytes(8, "big") + b"".join(records)
    covered = len(body).to_bytes(2, "big") + body
    return prefix + CRC16_ARC(covered).to_bytes(2, "big") + covered


def _text(lines: list[bytes], seq: int = 5, unit: bytes = b"357766091026083") -> bytes:
    body = b"," + b"".join(line + b"\r\n" for line in lines)
    head_tail = b"," + str(seq).encode() + b"," + unit
    rest = head_tail + body
    crc_body = str(len(rest)).encode() + rest
    return b"@P," + f"{CRC16_ARC(crc_body):04X}".encode() + b"," + crc_body


LINE = b"1557178589,1557178590,1557178590,-121899637,37406241,338,230,2809,8,3,55,1,1200,D42,215,-35,,"


# --- detection -----------------------------------------------------------------------
def test_detect() -> None:
    for frame in (KEEPALIVE, BINARY, TEXT, b"$OK\r\n", b"$ERROR=101\r\n", b"$INFO=358683066267395,AX7,Rev\r\n"):
        assert CODEC.detect(frame, "tcp") is Detection.YES
    for frame in (KEEPALIVE, BINARY, TEXT):
        for end in range(1, min(len(frame), 30)):
            assert CODEC.detect(frame[:end], "tcp") is Detection.MORE, frame[:end]
    for foreign in (
        b"@@\x00\x11",
        b"@NTC\x01\x00",
        b"$GPRMC,",
        b"$OKAY",
        b"\xfe\x03",
        BINARY[:-1] + b"\x01",
    ):
        assert CODEC.detect(foreign, "tcp") is Detection.NO
    # not text (G is no hex digit), but `,` may be a binary CRC's high byte: only a whole
    # binary header can refuse it
    assert CODEC.detect(b"@P,12G4,", "tcp") is Detection.MORE


# --- framing -------------------------------------------------------------------------
def test_framing() -> None:
    text = _text([LINE, LINE])
    stream = KEEPALIVE + BINARY + text + b"$OK\r\n" + TEXT
    want = [KEEPALIVE, BINARY, text, b"$OK\r\n"]
    assert common.frames(CODEC, stream)[:4] == want
    assert common.frames(CODEC, stream, chunk=1)[:4] == want
    common.garbage_is_skipped(CODEC, b"\x00\x99junk", BINARY)
    common.oversized_is_fatal(CODEC, b"$OK" + b"x" * CODEC.max_frame)
    common.oversized_is_fatal(CODEC, b"@P,1234,999999,1,2," + bytes(10))
    assert CODEC.split_datagram(BINARY) == [BINARY]


def test_text_length_takes_a_lone_newline() -> None:
    frame = _text([LINE])
    assert common.frames(CODEC, frame + b"\n" + KEEPALIVE) == [frame + b"\n", KEEPALIVE]


# --- replies -------------------------------------------------------------------------
def test_replies() -> None:
    assert CODEC.inspect(KEEPALIVE, "tcp").reply == KEEPALIVE  # echoed
    info = CODEC.inspect(BINARY, "tcp")
    assert (info.kind, info.device_id) == ("position", str(UNIT))
    assert info.reply == b"\xfe\x02" + UNIT.to_bytes(8, "big") + b"\x01\xe0"
    text = CODEC.inspect(_text([LINE], seq=77), "tcp")
    assert text.reply == b"\xfe\x02" + (357766091026083).to_bytes(8, "big") + (77).to_bytes(2, "big")
    assert CODEC.inspect(b"$OK\r\n", "tcp").reply is None
    with pytest.raises(ChecksumError):
        CODEC.inspect(BINARY[:2] + b"\x00\x00" + BINARY[4:], "tcp")


# --- decode --------------------------------------------------------------------------
def test_binary_record() -> None:
    decoded = CODEC.decode(_binary(_record(message=b"hello"), _record(report=9)), common.ctx(alarmMap="9=sos,2="))
    first, second = decoded.records
    assert decoded.device_id == str(UNIT)
    assert first.fix_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC) and first.valid
    assert (first.latitude, first.longitude, first.course, first.speed) == (60.169856, 24.938379, 181.0, 72.0)
    assert first.odometer == 123400 and first.attributes["hdop"] == "0.9" and first.attributes["adc1"] == "4.1"
    assert first.attributes["driverUniqueId"] == "D42" and first.attributes["temp2"] == "-3.5"
    assert first.attributes["message"] == "hello" and not first.alarms
    assert second.alarms == ["sos"] and second.attributes["type"] == "9"


def test_binary_fuel_and_long_date() -> None:
    (fuel,) = CODEC.decode(_binary(_record(message=b"FULS:F=1 t=2 N=1F4")), common.ctx()).records
    assert fuel.attributes["fuel"] == "50"
    (decimal,) = CODEC.decode(_binary(_record(message=b"FULS:F=1 t=2 N=500")), common.ctx(decimalFuel="true")).records
    assert decimal.attributes["fuel"] == "50"
    long_date = struct.pack(">HBBBBB", 2024, 5, 6, 7, 8, 9) + bytes(14)
    rec = long_date + _record()[12:]
    (dated,) = CODEC.decode(_binary(rec), common.ctx(longDate="true")).records
    assert dated.fix_time == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_binary_custom_fields() -> None:
    custom = b"%CI%SA%MV%BV%CN%LC%CE%GQ%IN0\x00" + bytes((11,)) + struct.pack(">HH", 125, 41)
    custom += struct.pack(">I", 24405) + struct.pack(">HI", 0x1234, 777) + bytes((25, 1))
    (rec,) = CODEC.decode(_binary(_record(custom=custom)), common.ctx(custom="true")).records
    assert (rec.satellites, rec.power, rec.battery, rec.ignition) == (11, 12.5, 4.1, True)
    assert (rec.attributes["mcc"], rec.attributes["mnc"], rec.attributes["cid"]) == ("244", "5", "777")
    formed = struct.pack(">HB", 130, 1)
    (rec2,) = CODEC.decode(_binary(_record(custom=formed)), common.ctx(form="%MV%HB")).records
    assert rec2.power == 13.0 and rec2.alarms == ["hardBraking"]


def test_text_report_and_custom_form() -> None:
    decoded = CODEC.decode(_text([LINE, LINE.replace(b"1557178589", b"20190506213629", 1)]), common.ctx())
    first, second = decoded.records
    assert decoded.device_id == "357766091026083"
    assert first.fix_time == datetime(2019, 5, 6, 21, 36, 29, tzinfo=UTC) == second.fix_time
    assert (first.latitude, first.longitude, first.speed, first.odometer) == (37.406241, -121.899637, 55.0, 280900.0)
    assert first.attributes["driverUniqueId"] == "D42" and first.attributes["event"] == "230"
    custom = LINE + b"%CI%SA%MV%HA%CN%CE%LC%GQ,7,124,1,310260,99,12,20"
    (rec,) = CODEC.decode(_text([custom]), common.ctx(custom="true")).records
    assert (rec.satellites, rec.power, rec.alarms) == (7, 12.4, ["hardAcceleration"])
    assert (rec.attributes["mcc"], rec.attributes["mnc"], rec.attributes["lac"]) == ("310", "260", "12")
    (formed,) = CODEC.decode(_text([LINE + b"3,40,x,1"]), common.ctx(form="%AT%BV%SA%MT")).records
    assert (
        formed.altitude == 3
        and formed.battery == 4.0
        and formed.satellites is None
        and formed.attributes["motion"] == "true"
    )


def test_beacons() -> None:
    entry = bytes((10, 0xE0)) + bytes(6) + struct.pack(">h", 2349) + b"\x00"
    (rec,) = CODEC.decode(_text([LINE + entry.hex().encode()]), common.ctx(form="%BC", frameMask="1")).records
    assert rec.attributes["tag1Temp"] == "23.49"
    beacon = b"3:104:" + (struct.pack(">HH", 55, 21) + b"\x40").hex().encode()
    (rec2,) = CODEC.decode(_text([LINE + beacon]), common.ctx(form="%BC")).records
    assert (rec2.attributes["tag1Humidity"], rec2.attributes["tag1Temp"], rec2.attributes["tag1Rssi"]) == (
        "55",
        "21",
        "64",
    )


def test_answers_and_keepalive() -> None:
    info = CODEC.decode(
        b"$INFO=358683066267395,AX7,Rev.0.61 Build.1624,358683066267395,466924131626767,8988,144,0,9,1,12,1,0\r\n",
        common.ctx(),
    )
    (rec,) = info.records
    assert info.device_id == "358683066267395" and rec.attributes["model"] == "AX7" and rec.power == 14.4
    (err,) = CODEC.decode(b"$ERROR=101\r\n", common.ctx()).records
    assert err.attributes["result"] == "$ERROR=101"
    keep = CODEC.decode(KEEPALIVE, common.ctx())
    assert (keep.kind, keep.device_id, keep.records) == ("heartbeat", str(UNIT), [])


def test_photo_chunks() -> None:
    chunk = struct.pack(">IBBH", 1_700_000_000, 0, 2, 3) + b"abc"
    assert CODEC.decode(_binary(chunk, prefix=b"@R"), common.ctx()).records == []
    last = struct.pack(">IBBH", 1_700_000_000, 1, 2, 3) + b"def"
    (rec,) = CODEC.decode(_binary(last, prefix=b"@R"), common.ctx()).records
    assert not rec.has_position and rec.fix_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize("frame", [b"@P", KEEPALIVE[:8], b"$INFO=x,y", b"@P,ZZ,1,2,3,"])
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx())


def test_bad_options() -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(BINARY, common.ctx(frameMask="x"))


# --- device --------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), 25.0330, 121.5654, speed=57, course=123)


def test_device_round_trip() -> None:
    device = AtrackDevice(str(UNIT))
    frames = [
        *device.login(),
        device.heartbeat(),
        device.position(FIX),
        device.alarm(FIX, "sos"),
        *device.batch([FIX, FIX]),
    ]
    assert CODEC.detect(frames[2], "tcp") is Detection.YES
    decoded = common.device_round_trip(CODEC, device, frames, ctx=common.ctx(), joined=True)
    assert all(device.expects_reply(f) for f in frames)
    (rec,) = decoded[2].records
    assert common.at_fix(rec, FIX) and rec.valid and rec.speed == 57 and rec.course == 123
    assert CODEC.decode(frames[3], common.ctx(alarmMap="3=sos")).records[0].alarms == ["sos"]
    assert len(decoded[4].records) == 2
    with pytest.raises(ValueError):
        device.alarm(FIX, "overspeed")


def test_binary_report_whose_crc_starts_with_a_comma() -> None:
    """Seen end to end: a binary `@P` report whose CRC high byte is 0x2C (`,`) looks like the
    `@P,` text form at byte 2; it must still detect, frame, answer and decode as binary."""
    device = AtrackDevice("351234567890123")
    fix = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), 52.2297, 21.0122, speed=40, course=90)
    for _ in range(5000):
        frame = device.position(fix)
        if frame[2] == 0x2C:
            break
    else:
        pytest.fail("no sequence number gave a CRC starting with 0x2C")
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert common.frames(CODEC, frame + frame) == [frame, frame]
    info = CODEC.inspect(frame, "tcp")
    assert info.device_id == "351234567890123" and info.reply
    [record] = CODEC.decode(frame, common.ctx()).records
    assert record.latitude == pytest.approx(52.2297, abs=1e-5)
