"""3G watches: hand-built frames from the protocol facts, replies, framing, detection, device round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import watch
from trackpipe.protocols.base import DecodeError, Detection, Fix, FramingError
from trackpipe.protocols.devices.watch import ALARM_BITS
from trackpipe.protocols.devices.watch import Device as WatchDevice

from tests.protocols import common

CODEC = watch.CODEC
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

LK = b"[3G*9705141740*0009*LK,0,0,53]"
UD = (
    b"[SG*8800000015*0087*UD,220414,134652,A,22.571707,N,113.8613968,E,0.1,0.0,100,7,60,90,1000,50,0000,"
    b"4,1,460,0,9360,4082,131,9360,4092,148,9360,4091,143,9360,4153,141]"
)
WEST = b"[3G*6430073509*0060*UD2,241016,081622,V,09.951861,N,-84.1422119,W,0.00,0.0,0.0,0,39,94,0,0,00000000,0]"
INDEXED_AL = (
    b"[ZJ*014111001332708*0075*0064*AL,040418,052156,A,22.536207,N,113.938673,E,0,0,0,5,100,82,1000,50,"
    b"00100000,1,255,460,0,9340,3663,35]"
)


# --- detection -----------------------------------------------------------------------
def test_detect_prefixes_and_neighbours() -> None:
    for frame in (LK, INDEXED_AL):
        head = frame[: frame.index(b"*", frame.index(b"*", 4) + 1)]
        for end in range(0, len(head)):
            assert CODEC.detect(frame[:end], "tcp") is Detection.MORE, frame[:end]
        assert CODEC.detect(frame, "tcp") is Detection.YES
    assert CODEC.detect(b"[3G*9705141740*0002*LK]", "tcp") is Detection.YES
    neighbours = (
        b"[\x80" + b"1234567890" + b"\x00\x10",  # tk102 login
        b"[!1234567890",
        b"[\x01\x02\x03",  # arnavi binary packet
        b"$GPRMC,",
        b"[3G9705141740*",
        b"[3G*97051-41740*",
        b"[3G*9705141740*00G9*LK,",
        b"[3G*9705141740*0009*0001*0002*X",
    )
    for foreign in neighbours:
        assert CODEC.detect(foreign, "tcp") is Detection.NO, foreign


# --- framing -------------------------------------------------------------------------
def test_frames_whole_and_byte_by_byte() -> None:
    stream = LK + b"\r\n" + UD + INDEXED_AL
    assert common.frames(CODEC, stream) == [LK, UD, INDEXED_AL]
    assert common.frames(CODEC, stream, chunk=1) == [LK, UD, INDEXED_AL]
    assert common.frames(CODEC, stream, chunk=5) == [LK, UD, INDEXED_AL]


def test_nested_brackets_in_binary_payload() -> None:
    frame = b"[CS*1234567890*000e*TK,#!AMR[x]]" + b"]"[:0]
    assert common.frames(CODEC, frame + LK) == [frame, LK]


def test_garbage_and_oversize() -> None:
    common.garbage_is_skipped(CODEC, b"GET / HTTP/1.1\r\n", LK)
    common.oversized_is_fatal(CODEC, b"[3G*9705141740*0009*TK," + b"x" * CODEC.max_frame)
    framer = CODEC.new_framer()
    for _ in range(CODEC.max_frame // 1000 + 2):
        framer.feed(b"[" * 1000)
        try:
            framer.next_frame()
        except FramingError as err:
            assert err.fatal
            break
        assert framer.buffered <= CODEC.max_frame + 1000
    else:
        pytest.fail("an unclosed frame was never rejected")


def test_escapes() -> None:
    raw = b"[3G*9705141740*0009*TEMP,36}\x045]"
    assert watch.unescape(raw) == b"[3G*9705141740*0009*TEMP,36,5]"
    assert watch.unescape(b"a}\x07b}") == b"a}\x07b}"  # unknown escape kept
    assert watch.escape(b"}[],*x") == b"}\x01}\x02}\x03}\x04}\x05x"
    assert watch.unescape(watch.escape(b"}[],*x")) == b"}[],*x"
    frame = b"[3G*9705141740*0009*LK,1}\x042,3]"
    assert common.frames(CODEC, frame) == [frame]
    (lk,) = CODEC.decode(frame, common.ctx(NOW)).records
    assert lk.attributes["steps"] == "1" and lk.battery_level == 3


# --- inspect / replies ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("frame", "kind", "reply"),
    [
        (LK, "heartbeat", b"[3G*9705141740*0002*LK]"),
        (b"[SG*8800000015*0002*LK]", "heartbeat", b"[SG*8800000015*0002*LK]"),
        (UD, "position", None),
        (WEST, "batch", None),
        (INDEXED_AL, "alarm", b"[ZJ*014111001332708*0075*0002*AL]"),
        (b"[3G*9705141740*0004*INIT]", "login", b"[3G*9705141740*0006*INIT,1]"),
        (b"[3G*9705141740*0003*TKQ]", "other", b"[3G*9705141740*0003*TKQ]"),
        (b"[3G*9705141740*0004*TKQ2]", "other", b"[3G*9705141740*0004*TKQ2]"),
        (b"[3G*9705141740*0007*PULSE,72]", "status", None),
        (b"[3G*8308406279*0008*rcapture]", "other", None),
        (b"[ZJ*789468050042692*0034*0010*JXTK,0,w,1,6,#!AMR", "other", b"[ZJ*789468050042692*0034*0007*JXTKR,1]"),
    ],
)
def test_inspect(frame: bytes, kind: str, reply: bytes | None) -> None:
    info = CODEC.inspect(frame, "tcp")
    assert (info.kind, info.reply) == (kind, reply)
    assert info.device_id == frame[4 : frame.index(b"*", 4)].decode()


def test_inspect_rejects_non_watch() -> None:
    for bad in (b"", b"[3G]", b"(087073005534BP00HSO)", b"[3G*12*zz*LK]"):
        with pytest.raises(DecodeError):
            CODEC.inspect(bad, "tcp")


# --- decode --------------------------------------------------------------------------
def test_position_fields() -> None:
    decoded = CODEC.decode(UD, common.ctx(NOW))
    assert (decoded.kind, decoded.device_id) == ("position", "8800000015")
    (r,) = decoded.records
    assert r.fix_time == datetime(2014, 4, 22, 13, 46, 52, tzinfo=UTC) and r.valid and not r.archive
    assert r.latitude == pytest.approx(22.571707) and r.longitude == pytest.approx(113.8613968)
    assert (r.speed, r.course, r.altitude, r.satellites, r.battery_level) == (0.1, 0.0, 100.0, 7, 90)
    assert r.attributes["rssi"] == "60" and r.attributes["steps"] == "1000"
    assert r.alarms == []
    network = json.loads(r.attributes["network"])
    assert network["cellTowers"][0] == {"mcc": 460, "mnc": 0, "lac": 9360, "cid": 4082, "rssi": 131}
    assert len(network["cellTowers"]) == 4


def test_west_negative_and_blind_area_archive() -> None:
    (r,) = CODEC.decode(WEST, common.ctx(NOW)).records
    assert r.longitude == pytest.approx(-84.1422119) and r.latitude == pytest.approx(9.951861)
    assert not r.valid and r.archive


def test_wifi_only_record() -> None:
    frame = (
        b"[3G*8800000015*00DD*UD,010120,025946,V,0.0,N,0.0,E,22.0,0,-1,0,100,98,0,0,00000000,0,2,"
        b"eduroam,f4:db:e6:d2:a8:00,-53,guest,78:0c:f0:24:f9:80,-82,5.0]"
    )
    (r,) = CODEC.decode(frame, common.ctx(NOW)).records
    assert r.altitude == -1 and not r.valid
    assert json.loads(r.attributes["network"]) == {
        "wifiAccessPoints": [
            {"macAddress": "f4:db:e6:d2:a8:00", "signalStrength": -53},
            {"macAddress": "78:0c:f0:24:f9:80", "signalStrength": -82},
        ]
    }
    broken = frame.replace(b",0,2,eduroam", b",3,2,eduroam")
    (r2,) = CODEC.decode(broken, common.ctx(NOW)).records
    assert "network" not in r2.attributes and r2.has_position


@pytest.mark.parametrize(("bit", "alarm"), [(b, a) for a, b in sorted(ALARM_BITS.items())] + [(0, "lowBattery")])
def test_status_alarms(bit: int, alarm: str) -> None:
    frame = UD.replace(b",0000,4,1", f",{1 << bit:08X},4,1".encode())
    (r,) = CODEC.decode(frame, common.ctx(NOW)).records
    assert r.alarms == [alarm]


def test_alarm_frames_and_motion() -> None:
    (r,) = CODEC.decode(INDEXED_AL, common.ctx(NOW)).records
    assert r.alarms == ["removing"]
    general = UD.replace(b"*UD,", b"*AL,")
    (g,) = CODEC.decode(general, common.ctx(NOW)).records
    assert g.alarms == ["general"]
    moving = UD.replace(b",0000,4,1", b",00000010,4,1")
    (m,) = CODEC.decode(moving, common.ctx(NOW)).records
    assert m.attributes["motion"] == "true" and m.alarms == []
    custom = UD.replace(b"*UD,", b"*ALCUSTOMER1,")
    assert CODEC.inspect(custom, "tcp").reply == b"[SG*8800000015*0002*AL]"


def test_link_and_health() -> None:
    (lk,) = CODEC.decode(LK, common.ctx(NOW)).records
    assert (lk.battery_level, lk.attributes["steps"], lk.has_position, lk.fix_time) == (53, "0", False, NOW)
    assert CODEC.decode(b"[3G*9705141740*0002*LK]", common.ctx(NOW)).records == []
    cases = {
        b"[CS*8800000015*0008*PULSE,72]": {"heartRate": "72"},
        b"[3G*6005412902*0007*heart,0]": {"heartRate": "0"},
        b"[3G*4700609403*0013*bphrt,120,79,73,,,,]": {"pressureHigh": "120", "pressureLow": "79", "heartRate": "73"},
        b"[ZJ*357653059860416*0007*000c*BLOOD,109,68]": {"pressureHigh": "109", "pressureLow": "68"},
        b"[ZJ*5678901234*0001*0009*TEMP,36.5]": {"temp1": "36.5"},
        b"[3G*2104326058*000E*btemp2,1,35.29]": {"temp1": "35.29"},
        b"[3G*9705141740*000B*oxygen,0,98]": {"bloodOxygen": "98"},
    }
    for frame, attributes in cases.items():
        (r,) = CODEC.decode(frame, common.ctx(NOW)).records
        assert r.attributes == attributes and not r.has_position
    assert CODEC.decode(b"[3G*2104326058*000E*btemp2,0,35.29]", common.ctx(NOW)).records[0].attributes == {}


def test_nothing_to_decode() -> None:
    for frame in (b"[3G*9705141740*0004*INIT]", b"[3G*9705141740*0003*TKQ]", b"[3G*8308406279*0008*rcapture]"):
        assert CODEC.decode(frame, common.ctx(NOW)).records == []


@pytest.mark.parametrize(
    "frame",
    [
        b"[3G*1*0010*UD,220414,134652,A,22.5]",
        b"[3G*1*0010*UD,220414,134652,X,22.571707,N,113.86,E,0,0,0,0,0,0,0,0,0000]",
        b"[3G*1*0010*UD,320414,134652,A,22.571707,N,113.86,E,0,0,0,0,0,0,0,0,0000]",
        b"[3G*1*0010*UD,220414,134652,A,97.571707,N,113.86,E,0,0,0,0,0,0,0,0,0000]",
        b"[3G*1*0010*UD,220414,134652,A,22.571707,Q,113.86,E,0,0,0,0,0,0,0,0,0000]",
        b"[3G*1*0010*UD,220414,134652,A,22.571707,N,113.86,E,x,0,0,0,0,0,0,0,0000]",
        b"[3G*1*0010*LK,a,b,c]",
    ],
)
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx(NOW))


# --- device --------------------------------------------------------------------------
FIX = Fix(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), -12.0462, -77.0428, speed=57.3, course=123.4, altitude=12)


def _round_trip(device: WatchDevice, frame: bytes) -> watch.Decoded:
    (decoded,) = common.device_round_trip(CODEC, device, [frame], ctx=common.ctx(NOW), device_id=device.device_id)
    return decoded


def test_device_round_trip() -> None:
    device = WatchDevice("9031853319")
    (login,) = device.login()
    assert _round_trip(device, login).records[0].battery_level == WatchDevice.BATTERY
    assert device.expects_reply(device.heartbeat())
    decoded = _round_trip(device, device.position(FIX))
    (r,) = decoded.records
    assert decoded.kind == "position" and r.fix_time == FIX.time and r.valid and not r.archive
    assert r.latitude == pytest.approx(FIX.latitude, abs=1e-6)
    assert r.longitude == pytest.approx(FIX.longitude, abs=1e-6)
    assert r.speed == pytest.approx(FIX.speed) and r.course == pytest.approx(FIX.course)
    assert "network" in r.attributes
    batch = device.batch([FIX, FIX])
    assert all(_round_trip(device, f).records[0].archive for f in batch)
    assert not device.check_reply(device.heartbeat(), b"[3G*9031853319*0002*AL]")


@pytest.mark.parametrize("alarm", sorted(ALARM_BITS))
def test_device_alarms(alarm: str) -> None:
    device = WatchDevice("9031853319")
    decoded = _round_trip(device, device.alarm(FIX, alarm))
    assert decoded.kind == "alarm" and decoded.records[0].alarms == [alarm]


def test_device_rejects_what_it_cannot_express() -> None:
    with pytest.raises(ValueError):
        WatchDevice("90-31")
    with pytest.raises(ValueError):
        WatchDevice("9031853319").alarm(FIX, "jamming")
