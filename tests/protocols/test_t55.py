"""Generic NMEA (t55): every sentence type, identification lines, detection as a loose fallback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import t55
from trackpipe.protocols.base import DecodeError, Detection, FramingError, Record

from tests.protocols import common

CODEC = t55.CODEC
NOW = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
RMC = b"$GPRMC,094907.000,A,6000.5332,N,03020.5192,E,1.17,60.26,091111,,*33"
EXTENDED = b"$GPRMC,012006,A,4828.10,N,1353.52,E,10.00,90.00,180915,020.3,E*42,8,123456789012345,1,45,4,0,1"
GGA = b"$GPGGA,235900.000,5355.0314,S,01044.1271,W,1,10,0.7,-46.0,M,0.0,M,0.0,0000"


def _one(frame: bytes) -> Record:
    return common.one_record(CODEC, frame, common.ctx(NOW))


# --- detection -----------------------------------------------------------------------
def test_detect_sentences_and_prefixes() -> None:
    for frame in (RMC, EXTENDED, GGA, b"$PGID,359853000144328*0F", b"IMEI 351467108700000", b"123456789" + GGA):
        assert CODEC.detect(frame + b"\r\n", "tcp") is Detection.YES, frame
        assert CODEC.detect(frame, "udp") is Detection.YES, frame
    for end in range(1, 12):
        assert CODEC.detect(RMC[:end], "tcp") is Detection.MORE, RMC[:end]
        assert CODEC.detect(RMC[:end], "udp") is Detection.NO
    assert CODEC.detect(b"358244017671308", "tcp") is Detection.MORE  # may still be some other protocol
    assert CODEC.detect(b"358244017671308\r\n", "tcp") is Detection.YES
    assert CODEC.detect(b"358244017671308\r\n$GPRMC,", "tcp") is Detection.YES


def test_neighbours_are_not_claimed() -> None:
    neighbours = (
        b"$AVRMC,99999999,164339,A,4351.0542,N,07923.5445,W,0.29,78.66,180703,0,3.727,17,1,0,0*37\r\n",  # laipac
        b"$AV,V2,32",  # arnavi
        b"$POS,1151000,205326.000,A,0901.3037,N,07928.2751,W,48.79,30.55,170814,,,A/00010*0B\r\n",  # pt502
        b"$NRM,WTI,1.0,",  # its
        b"$EPB,EMR,861",
        b"$TEL,",
        b"$MGV002,",
        b"$\x12\x34\x56\x78\x90\x12",  # h02 / jt600 binary
        b"$GPRMC,10000000001,092313.299,A,2238.8947,N,11355.2253,E,0.00,311.19,010307,0,,",  # extremtrac
        b"4100000092A00004\r\nIMEI:354828100002140\r\n",  # futureway
        b"861836051888035$162835.00,A,4139.6460,N,07009.7239,W,,41.53,-25.8,220621",  # mictrack
        b"0137$MGV002,354550050292669,GVT900,R,141215",  # megastek
        b"IMEI,353358011714362,2014/05/22",  # freedom
        b"[3G*9705141740*0009*LK,0,0,53]",
    )
    for foreign in neighbours:
        for transport in ("tcp", "udp"):
            assert CODEC.detect(foreign, transport) is not Detection.YES, foreign
    assert (
        CODEC.detect(b"$GPRMC,092313.299,A,2238.8947,N,11355.2253,E,0.00,311.19,010307,0,,1111,1111", "udp")
        is Detection.NO
    )  # extremtrac's I/O tail


# --- framing -------------------------------------------------------------------------
def test_lines() -> None:
    stream = b"$PGID,359853000144328*0F\r\n" + RMC + b"\r\n" + GGA + b"\n"
    want = [b"$PGID,359853000144328*0F\r\n", RMC + b"\r\n", GGA + b"\n"]
    assert common.frames(CODEC, stream) == want
    assert common.frames(CODEC, stream, chunk=1) == want
    common.oversized_is_fatal(CODEC, b"$GPRMC," + b"1" * CODEC.max_frame)
    assert CODEC.split_datagram(RMC + b"\r\n" + GGA) == [RMC, GGA]
    with pytest.raises(FramingError):
        CODEC.split_datagram(b"\r\n")


# --- decode --------------------------------------------------------------------------
def test_identification_lines() -> None:
    cases = {
        b"$PGID,359853000144328*0F": "359853000144328",
        b"$DEVID,0x0103846677F21422*41": "0x0103846677F21422",
        b"$PCPTI,CradlePoint Test,184453,184453.0,6F*57": "CradlePoint Test",
        b"$PSIWMDID,6Q5161694402B133*2F": "6Q5161694402B133",
        b'$CONNECT,350030950116536,NETWORK,"Ben NL",RO': "350030950116536",
        b"$IMEI=355797031609284": "355797031609284",
        b"IMEI 351467108700000": "351467108700000",
        b"$GPFID,ID123456ABC": "ID123456ABC",
        b"086415031C20": "086415031C20",
    }
    for frame, device_id in cases.items():
        info = CODEC.inspect(frame, "tcp")
        decoded = CODEC.decode(frame + b"\r\n", common.ctx(NOW))
        assert (info.kind, info.device_id, info.reply) == ("login", device_id, None), frame
        assert (decoded.kind, decoded.device_id, decoded.records) == ("login", device_id, [])


def test_rmc() -> None:
    r = _one(RMC)
    assert r.fix_time == datetime(2011, 11, 9, 9, 49, 7, tzinfo=UTC) and r.valid
    assert r.latitude == pytest.approx(60 + 0.5332 / 60) and r.longitude == pytest.approx(30 + 20.5192 / 60)
    assert r.speed == pytest.approx(1.17 * 1.852) and r.course == 60.26
    assert _one(b"$GPRMC,192350.000,V,0000.0000,N,00000.0000,E,,,110318,,*12").speed == 0
    assert _one(b"$IIRMC,192350.000,V,0000.0000,N,00000.0000,E,,,110318,,*12").fix_time.year == 2018
    assert _one(b"$GNRMC,164414.90,A,4650.5156500,N,01246.1059604,E,0.018,,091123,,,A,V*15").fix_time.microsecond == (
        900000
    )


def test_rmc_t55_extension_and_id_prefixes() -> None:
    decoded = CODEC.decode(EXTENDED, common.ctx(NOW))
    (r,) = decoded.records
    assert decoded.device_id == "123456789012345"
    assert (r.satellites, r.ignition, r.battery, r.attributes["fuel"]) == (8, True, 4, "45")
    assert (r.attributes["io1"], r.attributes["io2"]) == ("0", "1")
    assert r.longitude == pytest.approx(13 + 53.52 / 60) and r.speed == pytest.approx(18.52)
    prefixed = {
        b"660420156A0066AA": "660420156A0066AA",
        b"990000561287964,": "990000561287964",
        b"4711/022789000688081/": "022789000688081",
    }
    for prefix, device_id in prefixed.items():
        assert CODEC.decode(prefix + RMC, common.ctx(NOW)).device_id == device_id
        assert CODEC.inspect(prefix + RMC, "tcp").device_id == device_id


def test_gga_gll_use_the_receive_date() -> None:
    r = _one(GGA)
    assert r.fix_time == datetime(2025, 12, 31, 23, 59, tzinfo=UTC)  # yesterday: 23:59 is ahead of 00:05
    assert r.latitude < 0 and r.longitude < 0 and r.valid and r.satellites == 10 and r.altitude == -46
    assert r.attributes["hdop"] == "0.7"
    assert not _one(GGA.replace(b",1,10,", b",0,10,")).valid
    gll = _one(b"$GNGLL,4650.5156500,N,01246.1059604,E,000414.90,A,A*77")
    assert gll.fix_time == datetime(2026, 1, 1, 0, 4, 14, 900000, tzinfo=UTC) and gll.valid


def test_other_sentences() -> None:
    rma = _one(b"$GPRMA,A,5000.00,S,00500.00,E,,,10.0,180.,11.,E*7")
    assert rma.fix_time == NOW and rma.valid and rma.latitude == -50 and rma.speed == pytest.approx(18.52)
    tr = _one(b"$TRCCR,20140111000000.000,A,60.000000,-60.000000,1.00,2.00,3.00,50,*3a")
    assert tr.fix_time == datetime(2014, 1, 11, tzinfo=UTC) and tr.longitude == -60 and tr.battery == 50
    assert tr.speed == pytest.approx(1.852) and tr.altitude == 3
    iop = _one(b"$GPIOP,01000000,00000000,0.00,0.00,0.00,0.00,4.69,4.24*49")
    assert (iop.power, iop.battery, iop.has_position) == (4.69, 4.24, False)
    txt = CODEC.decode(b"$GPTXT,NET,1003,A1,-53,232 01*77", common.ctx(NOW))
    assert txt.device_id == "1003" and txt.kind == "status"
    assert txt.records[0].attributes == {"operator": "A1", "rssi": "-53", "mcc": "232", "mnc": "1"}
    pubx = CODEC.decode(
        b"$PUBX,00,130209.00,3650.51159,N,01346.10602,E,785.947,D3,4.1,5.2,0.163,87.43,-0.054,7.0,0.88,"
        b"1.21,0.88,24,01012,0*6D",
        common.ctx(NOW),
    )
    (p,) = pubx.records
    assert pubx.device_id == "01012" and p.satellites == 24 and p.altitude == 785.947 and p.valid
    assert p.speed == 0.163 and p.attributes["accuracy"] == "4.1"
    qze = CODEC.decode(b"QZE,868994033976700,35,28062020,113553,22.13673,114.57263,10,22,A,1", common.ctx(NOW))
    (q,) = qze.records
    assert qze.device_id == "868994033976700" and q.fix_time == datetime(2020, 6, 28, 11, 35, 53, tzinfo=UTC)
    assert (q.speed, q.course, q.ignition, q.attributes["event"]) == (10, 22, True, "35")


def test_wmcs() -> None:
    frame = (
        b"$ID,355826017981316,666,370,ALARM,0x00004000,IOP,M,48,GPSET,V,D,160517,T,161628,S,0:0,"
        b"La,51.64175,N,Lo,2.21816,W,H,21.47,V,12.0,DD,100"
    )
    decoded = CODEC.decode(frame, common.ctx(NOW))
    (w,) = decoded.records
    assert decoded.device_id == "355826017981316" and not w.valid
    assert w.fix_time == datetime(2017, 5, 16, 16, 16, 28, tzinfo=UTC)
    assert (w.latitude, w.longitude, w.course, w.speed) == (51.64175, -2.21816, 21.47, 12.0)
    assert w.attributes["alarmCode"] == "0x00004000" and w.attributes["totalDistance"] == "100.0"


@pytest.mark.parametrize(
    "frame",
    [
        b"$GPRMC,0949,A,6000.5332,N,03020.5192,E,1.17,60.26,091111,,*33",
        b"$GPRMC,094907.000,X,6000.5332,N,03020.5192,E,1.17,60.26,091111,,*33",
        b"$GPRMC,094907.000,A,6000.5332,Q,03020.5192,E,1.17,60.26,091111,,*33",
        b"$GPRMC,094907.000,A,6000.5332,N,03020.5192,E,1.17,60.26,321311,,*33",
        b"$GPRMC,094907.000,A,6099.5332,N,03020.5192,E,1.17,60.26,091111,,*33",
        b"$GPRMC,094907.000,A,6000.5332,N,03020.5192,E,nan,60.26,091111,,*33",
        b"$GPGGA,000000,4807.038,N",
        b"$XYZ,1,2,3",
        b"junk$GPRMC,",
        b"",
    ],
)
def test_malformed(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(frame, common.ctx(NOW))
