"""TK103: hand-built frames from the protocol facts, replies, framing, detection, device."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import tk103
from trackpipe.protocols.base import Context, Detection, Fix, FramingError, Record
from trackpipe.protocols.devices.tk103 import ALARM_DIGITS
from trackpipe.protocols.devices.tk103 import Device as Tk103Device

from tests.protocols import common

CODEC = tk103.CODEC
HANDSHAKE = b"(087073005534BP00HSO)"
LOGIN = b"(088046338039BP05000088046338039160727A3354.7768N03540.7258E000.0140309065.1000000000L00BEB0D4+017.3)"
REPORT = b"(088047365460BR00151024A2555.3531S02855.3329E004.7055148276.1701000000L00009AA3)"
COMMA = b"(864768011069660,ZC17,250517,A,3211.7118N,03452.8086E,0.68,115525,208.19,64.50,9)"
BATTERY = b"(013632651491,ZC20,180716,144222,6,392,65535,255)"
QUOTED = b"(86475555555,ZC03,191117,234421,$)Notice:\r\nserial (5805)\r\n$)"
GARBAGE = b"garbage%@#*^$-+<>?$)))$$--"


RECEIVED = datetime(2024, 1, 2, tzinfo=UTC)


def _one(frame: bytes) -> Record:
    return common.one_record(CODEC, frame, common.ctx(RECEIVED))


# --- detection -----------------------------------------------------------------------
def test_detect_prefixes_and_neighbours() -> None:
    for sample, signature in ((HANDSHAKE, 17), (REPORT, 17), (COMMA, 22)):
        for end in range(1, signature):
            assert CODEC.detect(sample[:end], "tcp") is Detection.MORE, sample[:end]
        assert CODEC.detect(sample[:signature], "tcp") is Detection.YES
    assert CODEC.detect(b"(01602009983BR00160830V", "tcp") is Detection.YES  # 11-digit id
    assert CODEC.detect(b"(BALLESTEROS3BR00190408A", "tcp") is Detection.YES
    neighbours = (
        b"(794104004140,1,001,BASE,2,TIME)",  # jt808 text
        b"(3301210003,U01,040812,185302,T,",  # jt600 text
        b"(8054201973,1,168,WLNET,5,2,",  # jt600
        b"(2050018634,ABCD,051124",  # 10-digit id: jt600's shape
        b"(880316890094910BP00XG00",  # topflytech
        b"(864244029498838U1110A15",  # pretrace
        b"(TLN,862107032006249,230218",  # ivt401
        b"(863071010087648,0HK44,00,",  # vtfms
        b"(000000001637868324027912356171116A",  # autograde
        b"(c\x1070\x94V \x84\x004",  # vt200
        b"*HQ,4106011660,V1,",
    )
    for foreign in neighbours:
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


# --- framing -------------------------------------------------------------------------
def test_framing_at_once_and_byte_by_byte() -> None:
    stream = HANDSHAKE + LOGIN + b"\r\n" + REPORT + COMMA + QUOTED + BATTERY
    got = common.frames(CODEC, HANDSHAKE + LOGIN + REPORT + COMMA + QUOTED + BATTERY)
    assert got == [HANDSHAKE, LOGIN, REPORT, COMMA, QUOTED, BATTERY]
    assert common.frames(CODEC, HANDSHAKE + LOGIN, chunk=1) == [HANDSHAKE, LOGIN]
    assert common.frames(CODEC, QUOTED + BATTERY, chunk=3) == [QUOTED, BATTERY]
    assert common.frames(CODEC, stream, chunk=5) == [HANDSHAKE, LOGIN, REPORT, COMMA, QUOTED, BATTERY]


def test_garbage_then_frame() -> None:
    common.garbage_is_skipped(CODEC, GARBAGE, COMMA)
    common.garbage_is_skipped(CODEC, b"a\r\n" + GARBAGE, QUOTED)


def test_oversized_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"(087073005534BR00" + b"0" * CODEC.max_frame)
    common.oversized_is_fatal(CODEC, b"(087073005534ZC03,$" + b")" * CODEC.max_frame)


def test_datagrams() -> None:
    assert CODEC.split_datagram(REPORT) == [REPORT]
    assert CODEC.split_datagram(REPORT + COMMA + b"\r\n") == [REPORT, COMMA]
    assert CODEC.split_datagram(REPORT[:-1]) == [REPORT[:-1]]
    with pytest.raises(FramingError):
        CODEC.split_datagram(b"junk" + REPORT)


# --- inspect -------------------------------------------------------------------------
def test_inspect_replies_kinds_ids() -> None:
    cases = {
        HANDSHAKE: ("heartbeat", "087073005534", b"(087073005534AP01HSO)"),
        LOGIN: ("login", "088046338039", b"(088046338039AP05)"),
        b"(013632651491,BP05,040613,A,2234.0297N,11405.9101E,000.0,040137,178.48)": (
            "login",
            "013632651491",
            b"(013632651491AP05)",
        ),
        REPORT: ("position", "088047365460", None),
        COMMA: ("alarm", "864768011069660", None),
        BATTERY: ("status", "013632651491", None),
    }
    for frame, expected in cases.items():
        info = CODEC.inspect(frame, "tcp")
        assert (info.kind, info.device_id, info.reply) == expected


# --- decode ----------------------------------------------------------------------------
def test_fixed_report_with_status_block() -> None:
    record = _one(REPORT)
    assert record.fix_time == datetime(2015, 10, 24, 5, 51, 48, tzinfo=UTC)
    assert record.valid
    assert (round(record.latitude, 5), round(record.longitude, 5)) == (-25.92255, 28.92222)
    assert (record.speed, record.course, record.ignition, record.odometer) == (4.7, 276.17, True, 0x9AA3)
    assert record.attributes["charge"] == "true" and record.attributes["fuel"] == "0"


def test_login_with_temperature() -> None:
    decoded = CODEC.decode(LOGIN, common.ctx(RECEIVED))
    assert decoded.kind == "login" and decoded.device_id == "088046338039"
    assert decoded.records[0].attributes["temp1"] == "17.3"


def test_comma_variant_altitude_satellites() -> None:
    record = _one(COMMA)
    assert record.fix_time == datetime(2017, 5, 25, 11, 55, 25, tzinfo=UTC)
    assert record.alarms == ["removing"]
    assert (record.speed, record.course, record.altitude, record.satellites) == (0.68, 208.19, 64.5, 9)


@pytest.mark.parametrize(("digit", "alarm"), sorted(tk103.BO01_ALARMS.items()))
def test_bo01_alarms(digit: int, alarm: str) -> None:
    frame = f"(088047365460BO01{digit}151024A2555.3531S02855.3329E004.7055148276.1701000000L00009AA3)".encode()
    assert _one(frame).alarms == [alarm]


def test_bq81_and_codes() -> None:
    frame = b"(044027395704BQ81,ALARM,1,164,151101A2238.5237N11349.4571E0.7031241010.0000,00000000)"
    assert _one(frame).alarms == ["overspeed"]
    base = "(864768011069660,{},250517,A,3211.7118N,03452.8086E,0.68,115525,208.19)"
    assert _one(base.format("ZC13").encode()).alarms == ["powerCut"]
    assert _one(base.format("DW3E").encode()).alarms == ["sos"]
    assert _one(base.format("ZC15").encode()).ignition is True
    assert _one(base.format("DW36").encode()).ignition is False


def test_status_messages() -> None:
    record = _one(BATTERY)
    assert (record.battery_level, record.battery, record.power) == (100.0, 3.92, None)
    assert not record.has_position
    record = _one(b"(087073104337BZ00,740,000,3bf7,0425,3bf7,0bf5,01000000)")
    assert record.attributes == {"mcc": "740", "mnc": "0", "lac": str(0x3BF7), "cid": str(0x0425)}
    record = _one(QUOTED)
    assert record.attributes["result"] == ")Notice:\r\nserial (5805)\r\n"
    assert _one(b"(027023361470BV005J6RW2H53HL066029)").attributes["vin"] == "5J6RW2H53HL066029"
    record = _one(b"(027045009305BP05355227045009305,{413,2,30073,16724}\n{413,2,30073,16730}\n,01000000)")
    assert record.attributes["cid"] == "16724" and record.attributes["cid2"] == "16730"
    record = _one(b"(864555555555555,DW51,200,1,3215,43370,1,58:F3:BB:3B:AA:82*-65*1,151117,154419)")
    assert record.alarms == ["movement"] and record.attributes["wifi1"] == "58:F3:BB:3B:AA:82*-65*1"
    assert record.fix_time == datetime(2017, 11, 15, 15, 44, 19, tzinfo=UTC)


def test_decode_low_option_reports_cleared_bits() -> None:
    assert "door" not in _one(REPORT).attributes
    low = CODEC.decode(REPORT, Context(options={"decodeLow": "true"})).records[0].attributes
    assert (low["door"], low["blocked"], low["hs1"], low["ls3"]) == ("0", "0", "0", "0")


def test_handshake_and_unknown_have_no_records() -> None:
    assert CODEC.decode(HANDSHAKE, common.ctx(RECEIVED)).records == []
    assert CODEC.decode(b"(027028258309BQ86,0,0555,161117005322,01000001)", common.ctx(RECEIVED)).records == []


# --- device ------------------------------------------------------------------------------
def test_device_round_trip() -> None:
    fix = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -33.123456, 151.654321, 42.0, 123.0)
    device = Tk103Device("012345678901")
    frames = [*device.login(), device.heartbeat(), device.position(fix), *device.batch([fix]), device.alarm(fix, "sos")]
    common.device_round_trip(CODEC, device, frames, ctx=common.ctx(RECEIVED))
    record = _one(device.position(fix))
    assert common.at_fix(record, fix)
    assert (record.speed, record.course) == (42.0, 123.0)
    assert _one(device.login()[0]).has_position  # after a fix the login carries it
    for alarm in ALARM_DIGITS:
        assert _one(device.alarm(fix, alarm)).alarms == [alarm]
    with pytest.raises(ValueError):
        device.alarm(fix, "powerCut")
