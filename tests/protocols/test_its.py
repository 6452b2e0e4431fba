"""ITS / AIS-140: hand-built packets of each layout, replies, framing, detection, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import its
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix
from trackpipe.protocols.devices.its import Device

from tests.protocols import common

CODEC = its.CODEC
CTX = Context(received_at=datetime(2026, 1, 1, tzinfo=UTC))

NRM = (
    b"$NRM,ROADRPA,3.5AIS,NR,01,L,869867036940288,KA01,1,04012020,094901,23.18731933,N,77.45079633,E,12.5,90.00,13,"
    b"545.6,1.10,0.60,Idea,1,1,13.2,4.1,0,C,31,404,78,62E1,5799,29,62E1,579B,23,0100,00,000042,1234.5,0B,*"
)
HISTORY_ALARM = (
    b"$,CP,ATL,1.4D3,EA,10,H,868728037717441,,1,29032019,225913,28.534016,S,77.268936,W,0.0,48.00,0,0.0,1.2,0.7,"
    b"Idea,0,1,12.6,3.9,1,O,22,404,4,1aa,4b0b,0111,00,221332,*"
)
EPB = b"$,EPB,EMR,861359034100626,SP,14072020112020,A,28.359959,N,076.927566,E,260.93,0.1,0.0,G,MH12,*"
LOGIN = b"$,01,XYZ123,0.0.1,861359034137271,MH12AB1234,*"
LGN = b"$,LGN,MARK,000000000,358980100077446,V0.0.1,AIS140,19.804487,N,75.225876,E,*"
HBT = b"$,HBT,VENDOR,1.0,861359034137271,*"
HEALTH = b"$,02,XYZ123,0.0.1,861359034137271,100,30,00.0,00005,00600,1000,01,00.1,00.0,"


def test_tracking_packet() -> None:
    decoded = CODEC.decode(NRM, CTX)
    assert (decoded.kind, decoded.device_id) == ("position", "869867036940288")
    (r,) = decoded.records
    a = r.attributes
    assert r.fix_time == datetime(2020, 1, 4, 9, 49, 1, tzinfo=UTC) and r.valid
    assert (r.latitude, r.longitude, r.speed, r.course, r.satellites, r.altitude) == (
        23.18731933,
        77.45079633,
        12.5,
        90.0,
        13,
        545.6,
    )
    assert (r.ignition, r.power, r.battery) == (True, 13.2, 4.1)
    assert (a["pdop"], a["hdop"], a["operator"], a["charge"], a["emergency"]) == ("1.1", "0.6", "Idea", "true", "false")
    assert (a["mcc"], a["mnc"], a["lac"], a["cid"], a["rssi"]) == ("404", "78", str(0x62E1), str(0x5799), "31")
    assert (a["input"], a["output"], a["event"]) == ("4", "0", "1")
    assert r.odometer == 1234500.0


def test_history_alarm_and_hemispheres() -> None:
    decoded = CODEC.decode(HISTORY_ALARM, CTX)
    assert decoded.kind == "alarm"
    (r,) = decoded.records
    assert r.archive and r.alarms == ["sos"] and r.attributes["event"] == "10"
    assert r.latitude == -28.534016 and r.longitude == -77.268936


@pytest.mark.parametrize(
    ("status", "alarm", "ignition"),
    [
        ("BL", "lowBattery", True),
        ("HB", "hardBraking", True),
        ("OS", "overspeed", True),
        ("BD", "powerCut", True),
        ("IN", None, True),
        ("IF", None, False),
        ("TA", "tampering", True),
        ("BR", "powerRestored", True),
    ],
)
def test_status_codes(status: str, alarm: str | None, ignition: bool) -> None:
    frame = NRM.replace(b",NR,01,", f",{status},01,".encode())
    if status == "IF":
        frame = frame.replace(b",Idea,1,1,", b",Idea,0,1,")
    (r,) = CODEC.decode(frame, CTX).records
    assert r.alarms == ([alarm] if alarm else [])
    assert r.ignition is ignition


def test_emergency_packet() -> None:
    decoded = CODEC.decode(EPB, CTX)
    assert decoded.kind == "alarm"
    (r,) = decoded.records
    assert r.alarms == ["sos"] and r.valid
    assert r.fix_time == datetime(2020, 7, 14, 11, 20, 20, tzinfo=UTC)
    assert (r.altitude, r.speed) == (260.93, 0.1)


def test_split_date_fields_and_zero_date() -> None:
    frame = (
        b"$,04,XYZ123,0.0.1,TA,16,L,861359034100626,MH12AB1234,1,12,11,2018,08,53,08,018.489645,N,073.855972,E,"
        b"000.0,220.04,12,593.0,01.13,00.75,AIRTEL,1,1,00.0,4.1,1,C,18,404,90,0c23,781a,1000,01,000006,f906c65c,"
    )
    (r,) = CODEC.decode(frame, CTX).records
    assert r.fix_time == datetime(2018, 11, 12, 8, 53, 8, tzinfo=UTC) and r.alarms == ["tampering"]
    zero = frame.replace(b"12,11,2018,08,53,08", b"00,00,0000,00,00,00")
    assert CODEC.decode(zero, CTX).records[0].fix_time == CTX.received_at


def test_logins_health_heartbeat_and_replies() -> None:
    assert CODEC.inspect(LOGIN, "tcp").reply == b"$,1,*"
    assert CODEC.inspect(HBT, "tcp").reply == b"$HBT*"
    info = CODEC.inspect(LGN, "tcp")
    assert info.clock_reply and info.kind == "login" and info.device_id == "358980100077446"
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert CODEC.reply_at(LGN, "tcp", now) == b"$LGN04032026050607*"
    assert CODEC.inspect(NRM, "tcp").reply is None
    for frame, kind in ((LOGIN, "login"), (LGN, "login"), (HBT, "heartbeat"), (HEALTH, "status")):
        decoded = CODEC.decode(frame, CTX)
        assert decoded.kind == kind and decoded.records == [] and decoded.device_id is not None


def test_detection() -> None:
    for frame in (NRM, HISTORY_ALARM, EPB, LOGIN, LGN, HBT, HEALTH):
        assert CODEC.detect(frame, "tcp") is Detection.YES, frame
    for end in (1, 5, 20, 30):
        assert CODEC.detect(NRM[:end], "tcp") is Detection.MORE
    foreign = (
        b"$GPRMC,082202.0,A,5006.747329,N,01416.512315,E,0.0,,131018,1.2,E,A*2E",
        b"$nor,L,868325023006341,14022017,103947,1,2836.6542,N,07706.2504,E,0.0,0.0,0.0",  # TMG
        b"$MGV002,869152024446923,869152024446923,S,240816,151631,A,5053.83335,N",  # Megastek
        b"$$AE869152024446923|AA$GPRMC",
        b"$\x12\x34\x56\x78\x90\x12\x34\x56",
        b"$POS,12345,174200.000,A,",
    )
    for data in foreign:
        assert CODEC.detect(data, "tcp") is Detection.NO, data


def test_framing() -> None:
    crlf = b"$Header,iTriangle1,KA01G1234,864495034434610,1_36T,AIS140,0.000000,N,0.000000,E*5E\r\n"
    capture = crlf + NRM + LOGIN + b"$,,868728037717441,1.4D3,VERSION1.0,28.633717,N,77.222702,E" + HBT
    expected = [crlf, NRM, LOGIN, b"$,,868728037717441,1.4D3,VERSION1.0,28.633717,N,77.222702,E", HBT]
    assert common.frames(CODEC, capture) == expected
    assert common.frames(CODEC, b"$,CP,ATL,1.4D3,EA,10,H,868728037717441,,1,\xbc*") == [
        b"$,CP,ATL,1.4D3,EA,10,H,868728037717441,,1,\xbc*"
    ]
    common.garbage_is_skipped(CODEC, b"junk", NRM)
    common.oversized_is_fatal(CODEC, b"$NRM," + b"1" * CODEC.max_frame)


def test_malformed() -> None:
    for bad in (
        b"$NRM,ROADRPA,3.5AIS,NR,01,L,869867036940288,KA01,1,04012020,094901,23.1,X,77.4,E,*",
        b"$NRM,ROADRPA,3.5AIS,NR,01,L,869867036940288,KA01,1,BADDATE,094901,23.1,N,77.4,E,*",
        b"$NRM,ROADRPA,3.5AIS,NR,01,L,869867036940288,KA01,1,04012020,094901,93.1,N,77.4,E,*",
        b"NRM",
    ):
        with pytest.raises(DecodeError):
            CODEC.decode(bad, CTX)


FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), 12.976593, -77.549782, speed=57.3, course=123, altitude=80)


def test_device_round_trip() -> None:
    device = Device("861000000000007")
    frames = [*device.login(), device.heartbeat(), device.position(FIX), device.alarm(FIX, "sos"), *device.batch([FIX])]
    decoded = common.device_round_trip(CODEC, device, frames, ctx=CTX, device_id=device.device_id)
    (r,) = decoded[-3].records
    assert common.at_fix(r, FIX) and r.valid
    assert r.speed == pytest.approx(57.3)
    assert decoded[-2].records[0].alarms == ["sos"]
    assert decoded[-1].records[0].archive
    with pytest.raises(ValueError):
        device.alarm(FIX, "tow")
