"""H02: corpus samples, hand-assembled text and binary frames (PROTOCOLS.md 3a/3b/5), device round trip."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import h02
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix, FramingError, Record
from trackpipe.protocols.devices.h02 import Device as H02Device

from tests import vectors
from tests.protocols import common

CODEC = h02.CODEC
SAMPLES = vectors.samples("h02")

V1 = b"*HQ,2705171109,V1,213324,A,5002.5849,N,01433.7822,E,10.00,045,140613,FFFFFBFF#"
# the same unit's binary report (corpus line 254), 32 bytes
BINARY = bytes.fromhex("2427051711092133391406135002584900014337822e000000ffffffffff0000")
# 45-byte variant (corpus line 250)
BINARY_45 = bytes.fromhex("24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f")
HTBT = b"*HQ,135790246811220,HTBT,100#"
NBR = b"*HQ,1451316451,NBR,112315,724,10,2,2,215,2135,123,215,2131,121,011215,FFFFFFFF#"


# --- detection -----------------------------------------------------------------------
def test_detect_prefixes() -> None:
    for end in range(1, len(b"*HQ,2705171109,V1")):
        assert CODEC.detect(V1[:end], "tcp") is Detection.MORE, V1[:end]
    assert CODEC.detect(V1[: len(b"*HQ,2705171109,V1,")], "tcp") is Detection.YES
    assert CODEC.detect(b"*hq,356327081001239,VP1,V", "tcp") is Detection.YES
    assert CODEC.detect(b"*HQ,135790246811220,HT", "tcp") is Detection.MORE
    for end in range(1, 32):
        assert CODEC.detect(BINARY[:end], "tcp") is Detection.MORE
    assert CODEC.detect(BINARY, "tcp") is Detection.YES


@pytest.mark.parametrize(
    "head",
    [
        b"*HQ2000905300036,AB1&A17024649",  # upro: no comma after the maker
        b"*ET,135790246811221,DW,A,0A090D",  # easytrack: *XX,id, then a non-H02 type
        b"*ET,135790246811221,D",
        b"*161101144927UD00144927",  # carscop
        b"*HQ,12a4,V1,",
        b"$GPRMC,092313.299,A,2238.8947,N",
        b"$\x41\x06\x01\x16\x60\x32\x45\x43",  # 32:45:43 is no time of day
        BINARY[:9] + b"\x32" + BINARY[10:],  # day 32
    ],
)
def test_detect_rejects(head: bytes) -> None:
    assert CODEC.detect(head, "tcp") is Detection.NO


# --- framing -------------------------------------------------------------------------
def test_text_and_binary_interleaved() -> None:
    stream = V1 + b"\r\n" + BINARY + HTBT + b"\n" + BINARY + NBR + b"\r\n"
    expected = [V1, BINARY, HTBT, BINARY, NBR]
    assert common.frames(CODEC, stream) == expected
    assert common.frames(CODEC, stream, chunk=1) == expected
    assert common.frames(CODEC, stream, chunk=5) == expected


def test_long_binary_frames_latch_the_connection() -> None:
    stream = BINARY_45 + BINARY_45 + V1 + BINARY_45
    assert common.frames(CODEC, stream) == [BINARY_45, BINARY_45, V1, BINARY_45]
    framer = CODEC.new_framer()
    framer.feed(BINARY_45 + BINARY_45[:20])
    assert framer.next_frame() == BINARY_45
    assert framer.next_frame() is None
    for byte in BINARY_45[20:]:  # decided once: byte-by-byte no longer matters
        assert framer.next_frame() is None
        framer.feed(bytes([byte]))
    assert framer.next_frame() == BINARY_45


def test_garbage_before_a_frame_is_reported_and_skipped() -> None:
    common.garbage_is_skipped(CODEC, b"\x00\xffjunk", V1)


def test_text_without_hash_is_fatal_past_max_frame() -> None:
    common.oversized_is_fatal(CODEC, b"*HQ,2705171109,V1," + b"0" * CODEC.max_frame)


def test_datagrams() -> None:
    long_binary = bytes.fromhex(
        "2421305109380127171003170520046500100286297e003085ffffdfffff03440069129344006400001151415a20"
    )
    assert CODEC.split_datagram(V1 + b"\r\n") == [V1]
    assert CODEC.split_datagram(V1 + HTBT) == [V1, HTBT]
    assert CODEC.split_datagram(BINARY + V1) == [BINARY, V1]
    assert CODEC.split_datagram(long_binary) == [long_binary]  # a 46-byte variant keeps its tail
    for bad in (b"", b"\r\n", V1[:-1], BINARY[:20], b"junk" + V1):
        with pytest.raises(FramingError):
            CODEC.split_datagram(bad)


# --- replies -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("frame", "reply"),
    [
        (HTBT, b"*HQ,135790246811220,HTBT#"),
        (b"*HQ,135790246811220,HTBT#", b"*HQ,135790246811220,HTBT#"),
        (b"*HQ,4106011660,V0,124552#", b"*HQ,4106011660,V0#"),
        # the V4 answer carries the frame's own date/time (inspect has no clock)
        (V1, b"*HQ,2705171109,V4,V1,20130614213324#"),
        (
            b"*TH,2020916012,V1,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFF#",
            b"*HQ,2020916012,V4,V1,20020922050316#",
        ),
        (NBR, b"*HQ,1451316451,V4,NBR,20151201112315#"),
        (b"*HQ,,V1,173212,A,2225.78879,S,02829.19021,E,0.00,0,290418,FFFFFBFF#", None),  # no id
        (b"*HQ,353505510948929,V1,,V,,N,,E,0.00,0,,FFFFF7FF#", None),  # no date/time
        (b"*TH,2020916012,V4,S17,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFF#", None),
        (b"*HQ,1700086468,LINK,180902,15,0,84,0,0,240517,FFFFFBFF#", None),
        (BINARY, None),
    ],
)
def test_replies(frame: bytes, reply: bytes | None) -> None:
    assert CODEC.inspect(frame, "tcp").reply == reply


def test_inspect_kinds_and_ids() -> None:
    cases = {
        V1: ("position", "2705171109"),
        HTBT: ("heartbeat", "135790246811220"),
        NBR: ("status", "1451316451"),
        BINARY: ("position", "2705171109"),
        b"*HQ,5226073533,SMS,OK#": ("other", "5226073533"),
        b"$" + bytes.fromhex("3554880201196950") + BINARY[6:29] + bytes(10): ("position", "355488020119695"),
    }
    for frame, (kind, device_id) in cases.items():
        info = CODEC.inspect(frame, "tcp")
        assert (info.kind, info.device_id) == (kind, device_id)
    for bad in (b"*HQ,27051x1109,V1#", b"*H1,2705171109,V1#", b"HQ,1,V1#", b"*HQ,1,V1", b"$" + bytes(31), b"$\x27\x05"):
        with pytest.raises(DecodeError):
            CODEC.inspect(bad, "tcp")


# --- decoding ------------------------------------------------------------------------
def _v1_with_status(status: str) -> Record:
    frame = f"*HQ,2705171109,V1,213324,A,5002.5849,N,01433.7822,E,0.00,000,140613,{status}#".encode()
    (record,) = CODEC.decode(frame, common.ctx()).records
    return record


@pytest.mark.parametrize(
    ("status", "alarms"),
    [
        ("FFFFFFFF", []),
        ("FFFFFFFE", ["vibration"]),
        ("FFFFFFFD", ["sos"]),
        ("FFFBFFFF", ["sos"]),
        ("FFFFFFFB", ["overspeed"]),
        ("FFF7FFFF", ["powerCut"]),
        ("FFF7FFFC", ["vibration", "sos", "powerCut"]),
    ],
)
def test_status_word_alarms(status: str, alarms: list[str]) -> None:
    record = _v1_with_status(status)
    assert record.alarms == alarms
    assert record.attributes["status"] == str(int(status, 16))


def test_status_word_ignition_and_frame_kind() -> None:
    assert _v1_with_status("FFFFFFFF").ignition is True
    assert _v1_with_status("FFFFFBFF").ignition is False
    assert CODEC.decode(V1.replace(b"FFFFFBFF", b"FFFFFFFD"), common.ctx()).kind == "alarm"
    assert CODEC.decode(V1, common.ctx()).kind == "position"


def test_v1_fields() -> None:
    (record,) = CODEC.decode(V1, common.ctx()).records
    assert record.fix_time == datetime(2013, 6, 14, 21, 33, 24, tzinfo=UTC)
    assert record.valid
    assert record.latitude == pytest.approx(50 + 2.5849 / 60)
    assert record.longitude == pytest.approx(14 + 33.7822 / 60)
    assert record.speed == pytest.approx(10 * 1.852)  # knots on the wire
    assert record.course == 45
    assert not record.archive


@pytest.mark.parametrize(
    ("latitude", "hemisphere", "expected"),
    [
        ("2212.8745", "N", 22 + 12.8745 / 60),
        ("809.0010", "S", -(8 + 9.001 / 60)),
        ("38.6508", "S", -38.6508 / 60),
        ("-23-35.3408", "S", -(23 + 35.3408 / 60)),
        ("-23-3.3408", "N", 23 + 3.3408 / 60),
        ("22128745", "N", 22 + 12.8745 / 60),
    ],
)
def test_text_coordinate_formats(latitude: str, hemisphere: str, expected: float) -> None:
    frame = f"*HQ,1,V1,121557,A,{latitude},{hemisphere},00000.0000,E,0,0,241115,FFFFFFFF#".encode()
    (record,) = CODEC.decode(frame, common.ctx()).records
    assert record.latitude == pytest.approx(expected)


def test_binary_fields() -> None:
    decoded = CODEC.decode(BINARY_45, common.ctx())
    (record,) = decoded.records
    assert decoded.device_id == "4106000826"
    assert record.fix_time == datetime(2015, 8, 31, 21, 53, 21, tzinfo=UTC)
    assert record.valid
    assert record.latitude == pytest.approx(4 + 41.939 / 60)
    assert record.longitude == pytest.approx(-(74 + 4.183 / 60))  # flags 6: north, west
    assert record.battery_level == 100  # battery byte 6 = full
    assert record.alarms == ["sos"]  # status FFFFFBFD: bit 1 cleared
    assert record.attributes["data"] == "ff0015060000002c02dc0c000000001f"
    south_east_invalid = BINARY[:21] + bytes([BINARY[21] & 0xF0 | 0x8]) + BINARY[22:]
    (record,) = CODEC.decode(south_east_invalid, common.ctx()).records
    assert record.latitude < 0 < record.longitude and not record.valid


@pytest.mark.parametrize(("raw", "percent"), [(0, None), (1, 0), (3, 20), (4, 60), (6, 100), (55, 55), (0xF3, 3)])
def test_binary_battery_byte(raw: int, percent: int | None) -> None:
    (record,) = CODEC.decode(BINARY[:16] + bytes([raw]) + BINARY[17:], common.ctx()).records
    assert record.battery_level == percent


def test_status_reports() -> None:
    (nbr,) = CODEC.decode(NBR, common.ctx()).records
    assert not nbr.has_position and nbr.fix_time == datetime(2015, 12, 1, 11, 23, 15, tzinfo=UTC)
    assert (nbr.attributes["mcc"], nbr.attributes["mnc"]) == ("724", "10")
    assert nbr.attributes["cellTowers"] == "215,2135,123;215,2131,121"
    (link,) = CODEC.decode(b"*HQ,1700086468,LINK,180902,15,7,84,10,2,240517,FFFFFBFF#", common.ctx()).records
    assert (link.satellites, link.battery_level, link.attributes["rssi"], link.attributes["steps"]) == (
        7,
        84,
        "15",
        "10",
    )
    heartbeat = CODEC.decode(HTBT, Context(received_at=datetime(2024, 1, 1, tzinfo=UTC)))
    assert heartbeat.kind == "heartbeat"
    assert heartbeat.records[0].battery_level == 100 and not heartbeat.records[0].has_position
    assert heartbeat.records[0].fix_time == datetime(2024, 1, 1, tzinfo=UTC)
    assert CODEC.decode(b"*HQ,135790246811220,HTBT#", common.ctx()).records == []


@pytest.mark.parametrize(
    "frame",
    [
        b"*HQ,2705171109,V1,213324,A,5002.5849,N,01433.7822,E,1x,045,140613,FFFFFBFF#",
        b"*HQ,2705171109,V1,213324,A,9502.5849,N,01433.7822,E,0,045,140613,FFFFFBFF#",
        b"*HQ,2705171109,V1,213324,A,5072.5849,N,01433.7822,E,0,045,140613,FFFFFBFF#",
        b"*HQ,2705171109,NBR,112315,724,10,2,9,215,2135,123,011215,FFFFFFFF#",
        b"*HQ,2705171109,NBR,112315,724,10,2,1,215,2135,123,011215,FFFFFFFG#",
        b"*HQ,1700086468,LINK,180902,15,x,84,0,0,240517,FFFFFBFF#",
        b"*HQ,2705171109#",
        BINARY[:12] + b"\x9a" + BINARY[13:],
        b"$" + bytes(10),
    ],
)
def test_malformed_frames(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx())


# --- device --------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.45694, -70.64827, speed=83.4, course=271.0)


def test_device_round_trip() -> None:
    device = H02Device("4106011660")
    frame = device.position(FIX)
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert common.frames(CODEC, frame + b"\r\n") == [frame]
    decoded = CODEC.decode(frame, common.ctx())
    (record,) = decoded.records
    assert (decoded.kind, decoded.device_id) == ("position", "4106011660")
    assert record.fix_time == FIX.time and record.valid and not record.alarms
    assert record.latitude == pytest.approx(FIX.latitude, abs=1e-5)
    assert record.longitude == pytest.approx(FIX.longitude, abs=1e-5)
    assert record.speed == pytest.approx(FIX.speed, abs=0.005 * 1.852)
    assert record.course == FIX.course


def test_device_session() -> None:
    device = H02Device("135790246811220", battery_level=87)
    assert device.login() == []
    beat = device.heartbeat()
    assert CODEC.decode(beat, common.ctx()).records[0].battery_level == 87
    for frame in (beat, device.position(FIX)):
        reply = CODEC.inspect(frame, "tcp").reply
        assert device.expects_reply(frame) and reply is not None and device.check_reply(frame, reply)
    assert not device.check_reply(beat, b"*HQ,135790246811220,V4,HTBT#")
    batch = device.batch([FIX, FIX])
    assert len(batch) == 2 and not any(CODEC.decode(f, common.ctx()).records[0].archive for f in batch)


@pytest.mark.parametrize("alarm", ["sos", "vibration", "overspeed", "powerCut"])
def test_device_alarms(alarm: str) -> None:
    decoded = CODEC.decode(H02Device("4106011660").alarm(FIX, alarm), common.ctx())
    assert decoded.kind == "alarm" and decoded.records[0].alarms == [alarm]


def test_device_rejects_what_it_cannot_express() -> None:
    with pytest.raises(ValueError):
        H02Device("41060-11660")
    with pytest.raises(ValueError):
        H02Device("4106011660").alarm(FIX, "lowBattery")


# --- robustness ----------------------------------------------------------------------


def test_framer_survives_random_streams() -> None:
    rng = random.Random(3)
    for _ in range(200):
        framer = CODEC.new_framer()
        framer.feed(bytes(rng.choice(b"*$#\r\nHQ,0123") for _ in range(rng.randrange(300))))
        for _ in range(400):
            try:
                if framer.next_frame() is None:
                    break
            except FramingError:
                continue
        assert framer.buffered < 300
