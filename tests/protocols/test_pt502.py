"""PT502: wrapper framing, position/alarm lines, photo announcements, $FUS, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import pt502
from trackpipe.protocols.base import DecodeError, Detection, Fix, Record
from trackpipe.protocols.devices.pt502 import ALARM_TYPES
from trackpipe.protocols.devices.pt502 import Device as Pt502Device

from tests.protocols import common

CODEC = pt502.CODEC
NOW = datetime(2026, 1, 1, tzinfo=UTC)
POS = (
    b"$POS,0000001,112742.250,A,0900.9050,N,03845.0609,E,13.12,212.34,290421,,,"
    b"A/00010,00000/0,a,0,0/250161300//fd7//\r\n"
)
FUS = b"$FUS865328026243864,510-V1.12,A11-V3.0"


def _wrap(payload: bytes) -> bytes:
    total = len(payload) + 5
    return b"\xbf\xfb\x19" + total.to_bytes(2, "little") + payload


def _one(frame: bytes) -> Record:
    return common.one_record(CODEC, frame, common.ctx(NOW))


def test_detect() -> None:
    for frame in (POS, FUS, _wrap(FUS + b"\r\r"), b"$HDB,20007,134708.000,A,", b"$PHO3821-1,1156802639,022125.000,V,"):
        assert CODEC.detect(frame, "tcp") is Detection.YES, frame
    for end in range(1, 24):
        assert CODEC.detect(POS[:end], "tcp") is Detection.MORE, POS[:end]
    assert CODEC.detect(b"\xbf", "tcp") is Detection.MORE
    assert CODEC.detect(b"\xbf\xfb\x19\x2d\x00", "tcp") is Detection.MORE
    neighbours = (
        b"$GPRMC,10000000001,092313.299,A,2238.8947,N",  # extremtrac
        b"$GPRMC,094907.000,A,6000.5332,N",
        b"$AVRMC,80006405,212645,r,3013.9938",  # laipac
        b"$NRM,WTI,1.0,",  # its
        b"$Header,iTriangle,",
        b"$AV,V2,32",  # arnavi
        b"\xbf\x00",
        b"$\x12\x34\x56",
    )
    for foreign in neighbours:
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


def test_framing() -> None:
    batch = _wrap(POS.rstrip(b"\r\n") + b"\n" + POS.rstrip(b"\r\n") + b"\n")
    want = [POS.rstrip(b"\r\n") + b"\n"] * 2
    assert common.frames(CODEC, batch) == want
    assert common.frames(CODEC, batch, chunk=1) == want
    photo = _wrap(b"$PHD0,8,\xff\xd8\r\n\x00[]$\r\n" + b"\r\n")
    # a line ends at its first CR or LF; the rest of the line break is skipped
    assert common.frames(CODEC, photo + POS + POS) == [photo[5:], POS[:-1], POS[:-1]]
    assert common.frames(CODEC, photo + POS + POS, chunk=3) == [photo[5:], POS[:-1], POS[:-1]]
    common.garbage_is_skipped(CODEC, b"hello", POS[:-1])
    common.oversized_is_fatal(CODEC, b"$POS," + b"1" * CODEC.max_frame)
    common.oversized_is_fatal(CODEC, b"\xbf\xfb\x00\xff\xff$PHD0,")


def test_position_fields() -> None:
    decoded = CODEC.decode(POS, common.ctx(NOW))
    (r,) = decoded.records
    assert (decoded.kind, decoded.device_id) == ("position", "0000001")
    assert r.fix_time == datetime(2021, 4, 29, 11, 27, 42, 250000, tzinfo=UTC) and r.valid
    assert r.latitude == pytest.approx(9 + 0.905 / 60) and r.longitude == pytest.approx(38 + 45.0609 / 60)
    assert r.speed == pytest.approx(13.12 * 1.852) and r.course == 212.34
    assert (r.attributes["input"], r.attributes["output"], r.odometer) == ("2", "0", 250161300)
    assert (r.attributes["adc1"], r.attributes["adc2"]) == ("0", "10")
    assert (r.battery, r.attributes["rssi"], r.satellites) == (15, "13", 7)
    short = _one(b"$POS,6095,233344.000,V,0933.0451,S,06912.3360,W,,,151112,,,N/00000,00000/0/1677600/")
    assert short.speed == 0 and not short.valid and short.latitude < 0 and short.longitude < 0
    assert short.satellites is None
    rfid = _one(b"$POS,1,000000.000,A,0000.0000,N,00000.0000,E,0,0,010120,,/1,0//5/AB12/f00/")
    assert rfid.attributes["driverUniqueId"] == "AB12" and "adc1" not in rfid.attributes


@pytest.mark.parametrize(("type_", "alarm"), sorted(pt502.TYPE_ALARMS.items()))
def test_alarm_types(type_: str, alarm: str) -> None:
    frame = POS.replace(b"$POS", b"$" + type_.encode())
    decoded = CODEC.decode(frame, common.ctx(NOW))
    assert decoded.kind == "alarm" and decoded.records[0].alarms == [alarm]


def test_photo_announcement_and_chunks() -> None:
    pho = POS.replace(b"$POS", b"$PHO3821-1")
    info = CODEC.inspect(pho, "tcp")
    assert (info.kind, info.reply) == ("position", b"#PHD0,960\r\n")
    assert CODEC.inspect(POS.replace(b"$POS", b"$PHO500"), "tcp").reply == b"#PHD0,500\r\n"
    assert CODEC.inspect(POS.replace(b"$POS", b"$PHO0-1"), "tcp").reply is None
    assert CODEC.decode(pho, common.ctx(NOW)).records[0].has_position
    assert pt502.photo_request(960, 3821 - 960) == b"#PHD960,960\r\n"
    chunk = b"$PHD0,8,\xff\xd8\r\n"
    assert CODEC.inspect(chunk, "tcp").kind == "other" and CODEC.decode(chunk, common.ctx(NOW)).records == []


def test_fus() -> None:
    for frame in (FUS, _wrap(FUS + b"\r\r")):
        info = CODEC.inspect(frame, "tcp")
        decoded = CODEC.decode(frame, common.ctx(NOW))
        assert (info.kind, info.device_id) == ("status", "865328026243864")
        (r,) = decoded.records
        assert decoded.device_id == "865328026243864" and not r.has_position
        assert r.attributes == {"versionFw": "510-V1.12", "versionHw": "A11-V3.0"}


@pytest.mark.parametrize(
    "frame",
    [
        b"$POS,0000001,112742,A,0900.9050,N,03845.0609,E,13.12,212.34,290421,,,A/00010,00000/0/1//",
        b"$POS,00x1,112742.000,A,0900.9050,N,03845.0609,E,13.12,212.34,290421,,,A/00010,00000/0/1//",
        b"$POS,1,112742.000,A,0900.9050,Q,03845.0609,E,13.12,212.34,290421,,,A/00010,00000/0/1//",
        b"$POS,1,112742.000,A,0900.9050,N,03845.0609,E,13.12,212.34,290421,,,A/00010,00000/0/x//",
        b"$POS,1,112742.000,A,0900.9050,N,03845.0609,E,13.12,212.34,320421,,,A/00010,00000/0/1//",
        b"$POS,1,112742.000,A,0900.9050,N,03845.0609,E,13.12,212.34,290421,,,A/00010,00000/zz/1//",
        b"$FUSx,1",
        b"POS,1",
    ],
)
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx(NOW))


FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=123.45)


def test_device_round_trip() -> None:
    device = Pt502Device("1151000")
    frames = [*device.login(), device.heartbeat(), device.position(FIX), *device.batch([FIX]), device.photo(FIX, 2000)]
    frames += [device.alarm(FIX, alarm) for alarm in sorted(ALARM_TYPES)]
    framed = lambda frame: frame.rstrip(b"\n")  # noqa: E731
    common.device_round_trip(CODEC, device, frames, ctx=common.ctx(NOW), device_id="1151000", framed=framed)
    (r,) = CODEC.decode(device.position(FIX), common.ctx(NOW)).records
    assert common.at_fix(r, FIX) and r.valid
    assert r.speed == pytest.approx(FIX.speed, abs=0.01) and r.course == FIX.course
    for alarm in ALARM_TYPES:
        assert CODEC.decode(device.alarm(FIX, alarm), common.ctx(NOW)).records[0].alarms == [alarm]
    with pytest.raises(ValueError):
        device.alarm(FIX, "jamming")
