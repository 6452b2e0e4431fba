"""Queclink @Track (gl200): hand-built text and binary reports, replies, framing, detection,
the device round trip.  Corpus records and fuzzing: tests/test_corpus.py, tests/test_fuzz.py."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import gl200
from trackpipe.protocols.base import Context, DecodeError, Detection, Fix, FramingError, ProtocolError
from trackpipe.protocols.devices.gl200 import Device

from tests.protocols import common

CODEC = gl200.CODEC
IMEI = "862894020178276"
SEND = "20240102030405"
WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
FIX_TIME = datetime(2024, 1, 2, 3, 4, 0, tzinfo=UTC)
BLOCK = "1,42.5,181,411.3,-63.169745,-17.776330,20240102030400,0736,0003,6AD4,5BAA,00"
BLOCK2 = "1,10.0,90,400.0,-63.160000,-17.770000,20240102030430,0736,0003,6AD4,5BAA,00"


def text(body: str, head: str = "+RESP:GTFRI", version: str = "270B01", count: str = "00A1") -> bytes:
    return f"{head},{version},{IMEI},{body},{SEND},{count}$".encode()


def decode(frame: bytes, **options: str) -> gl200.Decoded:
    return CODEC.decode(frame, Context(received_at=WHEN, options=options))


def first(frame: bytes, **options: str) -> gl200.Record:
    records = decode(frame, **options).records
    assert records, frame
    return records[0]


# --- text reports ------------------------------------------------------------------------
def test_fri_single_block_gv_tail() -> None:
    frame = text(f"gv300w,12600,10,1,{BLOCK},1234.5,00012:30:00,,,100,220100,,,")
    decoded = decode(frame)
    assert (decoded.kind, decoded.device_id) == ("position", IMEI)
    (r,) = decoded.records
    assert r.fix_time == FIX_TIME and r.valid
    assert (r.latitude, r.longitude) == pytest.approx((-17.776330, -63.169745))
    assert (r.speed, r.course, r.altitude) == (42.5, 181.0, 411.3)
    assert r.power == pytest.approx(12.6)
    assert r.odometer == pytest.approx(1_234_500)
    assert r.battery_level == 100 and r.ignition is True
    assert r.attributes["hours"] == str((12 * 3600 + 30 * 60) * 1000)
    assert r.attributes["in1"] == "false" and r.attributes["out1"] == "false"
    assert r.attributes["type"] == "FRI"
    assert r.attributes["mcc"] == "736" and r.attributes["lac"] == str(0x6AD4)
    assert r.attributes["deviceTime"] == "2024-01-02T03:04:05Z"


def test_fri_several_blocks_one_record_each() -> None:
    frame = text(f"gv300w,12600,10,2,{BLOCK},{BLOCK2},0.0,,,,90,220100,,,")
    records = decode(frame).records
    assert [r.fix_time.second for r in records] == [0, 30]
    assert records[1].battery_level == 90 and records[0].battery_level is None


def test_fri_gl_tail_and_ignore_fix_time() -> None:
    frame = text(f",0,0,1,{BLOCK},0,4100,87,0,1,21.5", version="DE0114")
    r = first(frame)
    assert r.battery_level == 87 and r.battery == pytest.approx(4.1)
    assert r.attributes["temp1"] == "21.5"
    assert first(frame, ignoreFixTime="true").fix_time == WHEN


def test_fri_without_fix_is_status() -> None:
    frame = text(",,0,1,,,,,,,,310,410,51bc,ca1dae6,0,80")
    decoded = decode(frame)
    assert decoded.kind == "status"
    (r,) = decoded.records
    assert not r.has_position and r.fix_time == WHEN and r.battery_level == 80


def test_buffered_report_is_archived() -> None:
    frame = text(f"gv300w,12600,10,1,{BLOCK},0.0,,,,100,220100,,,", head="+BUFF:GTFRI")
    decoded = decode(frame)
    assert decoded.kind == "batch" and decoded.records[0].archive


@pytest.mark.parametrize(
    ("kind", "alarm"),
    [("SOS", "sos"), ("SPD", "overspeed"), ("EPF", "powerCut"), ("EPN", "powerRestored"), ("BPL", "lowBattery"),
     ("TOW", "tow"), ("JDS", "jamming"), ("STT", "movement")],
)  # fmt: skip
def test_generic_alarm_reports(kind: str, alarm: str) -> None:
    frame = text(f",,10,1,{BLOCK},,80", head=f"+RESP:GT{kind}")
    decoded = decode(frame)
    assert decoded.kind == "alarm"
    r = decoded.records[0]
    assert r.alarms == [alarm] and r.has_position and r.battery_level == 80


@pytest.mark.parametrize(
    ("code", "alarm"), [("10", "hardBraking"), ("11", "hardAcceleration"), ("12", "hardCornering")]
)
def test_harsh_behaviour(code: str, alarm: str) -> None:
    assert first(text(f",,{code},1,{BLOCK},2000.0", head="+RESP:GTHBM")).alarms == [alarm]


def test_power_on_off() -> None:
    assert first(f"+RESP:GTPNA,F50201,{IMEI},GL300M,{SEND},0BD5$".encode()).alarms == ["powerOn"]
    r = first(f"+RESP:GTPFA,F50201,{IMEI},GL300M,{SEND},0BD4$".encode())
    assert r.alarms == ["powerOff"] and not r.has_position and r.fix_time == WHEN


def test_ignition_reports() -> None:
    on = first(text(f"gv600m,453966,{BLOCK[:-3]},01,9,00012:00:00,12.5", head="+RESP:GTIGN", version="C2010D"))
    assert on.ignition is True and on.satellites == 9 and on.odometer == pytest.approx(12_500)
    off = first(text(f"gv600m,145,{BLOCK[:-3]},,,0.0", head="+RESP:GTVGF", version="C2010D"))
    assert off.ignition is False and off.has_position


def test_eri_fuel_and_battery() -> None:
    frame = text(
        f"GV350M,00000001,12000,10,1,{BLOCK[:-3]},,0.0,,,100,210100,,1,1,1,01DF", head="+RESP:GTERI", version="F10415"
    )
    r = first(frame)
    assert r.attributes["fuel"] == str(0x01DF) and r.battery_level == 100 and r.power == 12.0


def test_information_report() -> None:
    frame = text("RA82,11,89883030000091225018,41,0,1,12349,,4.15,0,1,0,0,20240328231013,0,0,7,8,9,00,+0000,0",
                 head="+RESP:GTINF", version="6E0202")  # fmt: skip
    decoded = decode(frame)
    assert decoded.kind == "status"
    r = decoded.records[0]
    assert r.power == pytest.approx(12.349) and r.battery == pytest.approx(4.15)
    assert r.attributes["iccid"] == "89883030000091225018" and r.attributes["charge"] == "true"
    assert (r.attributes["adc1"], r.attributes["adc2"], r.attributes["adc3"]) == ("7", "8", "9")


def test_model_option_overrides_version() -> None:
    body = "x,11,8988303,41,0,1,12349,13985,4.15,0,1,0,0,20240328231013,0,0,7,8,9,00"
    assert first(text(body, head="+RESP:GTINF", version="C20113")).attributes["power2"] == "13.985"
    assert "power2" not in first(text(body, head="+RESP:GTINF", version="C20113"), model="gv310lau").attributes


def test_version_report() -> None:
    r = first(f"+RESP:GTVER,1A0401,{IMEI},,GL300,0110,0102,{SEND},11F0$".encode())
    assert r.attributes["versionFw"] == str(0x110) and r.attributes["deviceType"] == "GL300"


def test_driver_id_switch_fatigue_transparent_data() -> None:
    assert first(text(f",,D2C4FBC5,1,1,{BLOCK},5.5,,,,", head="+RESP:GTIDA")).attributes["driverUniqueId"] == "D2C4FBC5"
    assert first(text(f",0,1,{BLOCK}", head="+RESP:GTLSW")).attributes["in1"] == "true"
    dar = first(text(f",1,3,,,{BLOCK},,", head="+RESP:GTDAR"))
    assert dar.alarms == ["fatigueDriving"] and dar.attributes["fatigueDegree"] == "3"
    data = b"Fuel\r\nCOMB,0,94.0,-1.0".hex()
    assert first(text(f",,,1,35,{data}", head="+RESP:GTDTT")).attributes["fuel"] == "94.0"


def test_cells_and_wifi_without_gps() -> None:
    gsm = first(text("STR,0460,0000,18d8,6141,30,,0460,0000,18d8,6142,28,", head="+RESP:GTGSM"))
    assert gsm.attributes["mcc"] == "460" and not gsm.has_position
    wifi = first(text(",2,001122334455,-60,,,,66778899aabb,-70,,,,,,,,75", head="+RESP:GTWIF"))
    assert wifi.battery_level == 75 and wifi.attributes["wifi"].startswith("001122334455:-60")


def test_command_ack_and_heartbeat() -> None:
    ack = f"+ACK:GTRTO,1A0401,{IMEI},,GPS,FFFF,{SEND},11F0$".encode()
    decoded = decode(ack)
    assert decoded.kind == "other" and decoded.records[0].attributes["result"] == "+ACK:GTRTO"
    assert not decoded.records[0].has_position
    hbd = f"+ACK:GTHBD,1A0401,{IMEI},,{SEND},11F0$".encode()
    info = CODEC.inspect(hbd, "tcp")
    assert (info.kind, info.device_id, info.reply) == ("heartbeat", IMEI, b"+SACK:GTHBD,1A0401,11F0$")
    assert decode(hbd).records == []
    assert CODEC.inspect(text(f",,10,1,{BLOCK}"), "tcp").reply is None
    assert gl200.ack_reply(text(f",,10,1,{BLOCK}", count="00A7")) == b"+SACK:00A7$"


def test_frame_without_dollar_or_with_nul() -> None:
    frame = text(f"gv300w,12600,10,1,{BLOCK},0.0,,,,100,220100,,,")
    assert first(frame[:-1]).has_position
    assert first(frame[:-1] + b"\x00").has_position


def test_can_bus_report() -> None:
    mask = f"{1 | 2 | 4 | 0x10 | 0x20 | 0x100 | 1 << 30:08X}"
    frame = text(f",00,1,{mask},WDB9634031L123456,1,H123456,1500,88,P50.0,1,42.5,181,411.3,-63.169745,-17.776330,"
                 "20240102030400,0736,0003,6AD4,5BAA,00", head="+RESP:GTCAN", version="270703")  # fmt: skip
    r = first(frame)
    assert r.attributes["vin"] == "WDB9634031L123456" and r.ignition is True
    assert (r.attributes["obdOdometer"], r.attributes["rpm"], r.attributes["obdSpeed"]) == ("123456", "1500", "88.0")
    assert r.attributes["fuel"] == "50.0"
    assert r.has_position and r.fix_time == FIX_TIME and r.speed == 42.5 and r.valid


def test_obd_report() -> None:
    frame = text(
        "4T1BE46KX7U018210,gv500,0,78FFFF,4T1BE46KX7U018210,1,13411,981B81C0,787,3,43,,921,463,1,10,0300,20,55,,"
        f"1286,{BLOCK},1290.5",
        head="+RESP:GTOBD",
        version="1F0109",
    )
    r = first(frame)
    assert (r.attributes["rpm"], r.attributes["obdSpeed"], r.attributes["temp1"]) == ("787", "3", "43")
    attrs = r.attributes
    assert (attrs["dtcsNumber"], attrs["throttle"], attrs["obdOdometer"]) == ("10", "20", "1290500")
    assert r.has_position and r.fix_time == FIX_TIME


def test_ble_accessory_reports() -> None:
    bid = first(text(f"GV350M,1,0,000A,B80EA11FF800,2934,{BLOCK}", head="+RESP:GTBID", version="C20105"))
    assert bid.attributes["accessoryMac"] == "B80EA11FF800" and bid.attributes["accessoryVoltage"] == "2.934"
    baa = first(text(f",1,2,1,3,0003,BeaconA,001122334455,{BLOCK}", head="+RESP:GTBAA"))
    assert (baa.attributes["accessoryName"], baa.attributes["accessoryMac"]) == ("BeaconA", "001122334455")
    assert baa.has_position


def test_light_sensor_cells_and_serial_data() -> None:
    lsa = first(text(f",1,0,1,{BLOCK},0,1,77,0,1,-3.5", head="+RESP:GTLSA"))
    assert lsa.attributes["lightLevel"] == "1" and lsa.battery_level == 77 and lsa.attributes["temp1"] == "-3.5"
    cells = ",".join(["0460,0000,18d8,6141,30,"] + [",,,,,"] * 6)
    lbs = first(text(f",1,0,66,,0,,,0,{cells}", head="+RESP:GTLBS"))
    assert lbs.battery_level == 66 and lbs.attributes["mcc"] == "460" and not lbs.has_position
    dat = first(text(f"gv300w,1,,,>I:5014|DB|<,{BLOCK[:-3]},00", head="+RESP:GTDAT", version="270B01"))
    assert dat.attributes["data"] == ">I:5014|DB|<" and dat.has_position


# --- binary reports ----------------------------------------------------------------------
def _time7(t: datetime) -> bytes:
    return struct.pack(">HBBBBB", t.year, t.month, t.day, t.hour, t.minute, t.second)


def _fix(hdop: int = 2) -> bytes:
    return (
        bytes([hdop])
        + (425).to_bytes(3, "big")
        + struct.pack(">Hhii", 181, 411, -63_169_745, -17_776_330)
        + _time7(FIX_TIME)
        + struct.pack(">HHHH", 736, 3, 0x6AD4, 0x5BAA)
        + b"\x00"
    )


def _evt(kind: int = 45, extra: bytes = bytes(7), tag: bytes = b"+EVT") -> bytes:
    body = struct.pack(">BIHBHH", kind, 0x00FC1FBF, 0, 0x45, 0x0102, 0x0209) + int(IMEI).to_bytes(8, "big")
    body += struct.pack(">BHBB", 90, 12600, 0x22, 7) + extra + b"\x01" + _fix() + _time7(WHEN) + b"\x00\x01\r\n"
    frame = bytearray(tag + body)
    frame[9:11] = len(frame).to_bytes(2, "big")
    return bytes(frame)


def _rsp(points: int = 2, tag: bytes = b"+RSP") -> bytes:
    body = struct.pack(">BIHBHH", 1, 0x00FC1FBF, 0, 0x45, 0x0102, 0x0209) + int(IMEI).to_bytes(8, "big")
    body += struct.pack(">BHBBB", 90, 12600, 0x22, 7, 0) + bytes([points]) + _fix() * points
    frame = bytearray(tag + body + _time7(WHEN) + b"\x00\x02\r\n")
    frame[9:11] = len(frame).to_bytes(2, "big")
    return bytes(frame)


def _container() -> bytes:
    fix = (
        b"\x08"
        + struct.pack(">iiIHBH", -63_169_745, -17_776_330, 1_704_164_640, 425, 12, 181)
        + (4113).to_bytes(3, "big")
        + b"\x07"
    )
    items = b"\x52" + bytes([len(fix)]) + fix + b"\x61\x05\x00\x0f\xa0\x55\x00"
    record = struct.pack(">IHBB", 1_704_164_645, 1, 1, 3) + items
    record = bytes([len(record) + 1]) + record
    head = b"\x00" + bytes.fromhex("0" + IMEI) + struct.pack(">HHBB", 0x8203, 3, 0, 0)
    frame = bytearray(b"+\x00\x00\x00" + head + record + b"\x00\x01\x00$")
    frame[2:4] = len(frame).to_bytes(2, "big")
    return bytes(frame)


def test_binary_event() -> None:
    frame = _evt()
    assert CODEC.detect(frame, "udp") is Detection.YES
    decoded = decode(frame)
    assert decoded.device_id == IMEI
    (r,) = decoded.records
    assert r.ignition is True and r.battery_level == 90 and r.power == pytest.approx(12.6) and r.satellites == 7
    assert (r.latitude, r.longitude, r.fix_time, r.speed, r.course) == (-17.77633, -63.169745, FIX_TIME, 42.5, 181)
    assert decode(_evt(kind=6, extra=b"\x0f\xa0")).records[0].alarms == ["lowBattery"]
    assert decode(_evt(tag=b"+BVT")).records[0].archive


def test_binary_location_and_buffered() -> None:
    decoded = decode(_rsp(3))
    assert decoded.kind == "position" and len(decoded.records) == 3 and decoded.device_id == IMEI
    assert all(r.valid and r.has_position for r in decoded.records)
    batch = decode(_rsp(1, b"+BSP"))
    assert batch.kind == "batch" and batch.records[0].archive


def test_binary_container() -> None:
    frame = _container()
    assert CODEC.detect(frame, "tcp") is Detection.YES
    assert common.frames(CODEC, frame, chunk=3) == [frame]
    (r,) = decode(frame).records
    assert (r.latitude, r.longitude, r.speed, r.altitude, r.satellites) == (-17.77633, -63.169745, 42.5, 411.3, 7)
    assert r.valid and r.fix_time == FIX_TIME and r.battery == 4.0 and r.battery_level == 0x55
    assert decode(frame).device_id == IMEI


def _information() -> bytes:
    body = (
        struct.pack(">BIH", 7, 0x00FD7F00, 0) + int(IMEI).to_bytes(8, "big") + struct.pack(">BHH", 0x45, 0x0102, 0x0209)
    )
    body += bytes([1, 0, 7, 0]) + _time7(FIX_TIME) + bytes(1 + 1 + 2 + 2 + 2 + 4 + 1)
    body += struct.pack(">BHHB", 1, 12600, 4100, 80) + bytes.fromhex("8935103226313921591f") + bytes(3) + _time7(WHEN)
    frame = bytearray(b"+INF" + body + b"\x00\x03\r\n")
    frame[7:9] = len(frame).to_bytes(2, "big")  # the framer's offset for +INF
    return bytes(frame)


def test_binary_information() -> None:
    decoded = decode(_information())
    assert decoded.kind == "status"
    (r,) = decoded.records
    assert (r.power, r.battery, r.battery_level, r.satellites) == (12.6, 4.1, 80, 7)
    assert r.attributes["charge"] == "true" and r.attributes["iccid"] == "8935103226313921591f"
    assert not r.has_position and r.fix_time == WHEN


def test_binary_compressed_track() -> None:
    seconds = int(FIX_TIME.timestamp())
    full = (1 << 22 | 425 << 9 | 181).to_bytes(3, "big") + struct.pack(">iiI", -63_169_745, -17_776_330, seconds)
    delta = (2 << 38 | (5 & 0x7F) << 30 | (-1 & 0x7F) << 23 | (100 & 0xFFF) << 11 | (-50 & 0x7FF)).to_bytes(5, "big")
    body = struct.pack(">BIHBHH", 100, 0x00FC1FBF, 0, 0x45, 0x0102, 0x0209) + int(IMEI).to_bytes(8, "big")
    body += struct.pack(">BHBBH", 90, 12600, 0x22, 7, 3) + full + delta + b"\x00"
    frame = bytearray(b"+RSP" + body + _time7(WHEN) + b"\x00\x04\r\n")
    frame[9:11] = len(frame).to_bytes(2, "big")
    first_point, second = decode(bytes(frame)).records
    assert (first_point.speed, first_point.course, first_point.fix_time) == (42.5, 181, FIX_TIME)
    assert (second.speed, second.course) == (43.0, 180)
    assert second.longitude == pytest.approx(-63.169645) and second.latitude == pytest.approx(-17.77638)
    assert (second.fix_time - FIX_TIME).total_seconds() == 1


def test_binary_truncated_is_decode_error() -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(_evt()[:40], Context())


# --- framing -----------------------------------------------------------------------------
STREAM_TEXT = text(f"gv300w,12600,10,1,{BLOCK},0.0,,,,100,220100,,,")


def test_framing_mixed_stream_whole_and_trickled() -> None:
    stream = STREAM_TEXT + b"\r\n" + _evt() + _container() + STREAM_TEXT
    want = [STREAM_TEXT, _evt(), _container(), STREAM_TEXT]
    assert common.frames(CODEC, stream) == want
    assert common.frames(CODEC, stream, chunk=1) == want


def test_framing_garbage_then_frame() -> None:
    common.garbage_is_skipped(CODEC, b"junk\xff\xfe", STREAM_TEXT)
    common.garbage_is_skipped(CODEC, b"xx", _evt())


def test_framing_oversized_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"+RESP:GTFRI," + b"1" * (CODEC.max_frame + 10))
    huge = bytearray(_evt())
    huge[9:11] = (CODEC.max_frame + 1).to_bytes(2, "big")
    common.oversized_is_fatal(CODEC, bytes(huge))


def test_datagram_split() -> None:
    assert CODEC.split_datagram(STREAM_TEXT) == [STREAM_TEXT]
    assert CODEC.split_datagram(STREAM_TEXT[:-1]) == [STREAM_TEXT[:-1]]
    assert CODEC.split_datagram(_evt()) == [_evt()]
    with pytest.raises(FramingError):
        CODEC.split_datagram(_evt()[:30])


# --- detection ---------------------------------------------------------------------------
@pytest.mark.parametrize("frame", [STREAM_TEXT, _evt(), _rsp(), _container()], ids=["text", "evt", "rsp", "tlv"])
def test_detection_prefixes_are_more(frame: bytes) -> None:
    assert CODEC.detect(frame, "tcp") is Detection.YES
    for n in range(1, 11):
        assert CODEC.detect(frame[:n], "tcp") is Detection.MORE, frame[:n]


@pytest.mark.parametrize(
    "head",
    [
        b"+RESP:GTINF,359464030073766,8938003990320469804f,18,99,100$",  # GL100/GT300 order
        b"+RESP:GTEST,359231030000010,0,0,0,1,4.3,92,70.0,1,121.354335$",
        b"+SACK:GTHBD,1A0401,11F0$",
        b"+12084014675,162658,4337.174385,N",
        b"*HQ,4970105243,V1,104000,A#",
        b"+RESP:GTFRI,ABC,862894020178276,",
        b"+EVT" + bytes(7),
    ],
)
def test_detection_neighbours_are_no(head: bytes) -> None:
    assert CODEC.detect(head, "tcp") is Detection.NO


# --- device round trip ---------------------------------------------------------------------
def test_device_round_trip() -> None:
    device = Device(IMEI, clock=lambda: WHEN)
    fix = Fix(FIX_TIME, -17.77633, -63.169745, speed=42.5, course=181, altitude=411.3)
    assert device.login() == []
    frames = [device.heartbeat(), device.position(fix), *device.batch([fix, fix]), device.alarm(fix, "sos")]
    ctx = Context(received_at=WHEN)
    decoded = common.device_round_trip(CODEC, device, frames, ctx=ctx, device_id=IMEI, joined=True, chunk=5)
    assert all(device.check_reply(f, b"") for f in frames if not device.expects_reply(f))
    assert not device.check_reply(frames[0], b"+SACK:GTHBD,270B01,FFFF$")
    live = decoded[1].records[0]
    assert (live.fix_time, live.latitude, live.longitude, live.speed, live.course) == (
        FIX_TIME, -17.77633, -63.169745, 42.5, 181,
    )  # fmt: skip
    assert all(r.archive for d in decoded[2:4] for r in d.records)
    assert decoded[4].records[0].alarms == ["sos"]
    with pytest.raises(ValueError):
        device.alarm(fix, "vibration")


def test_garbled_count_field_cannot_drive_a_loop() -> None:
    """Found by the long fuzz: a date where an ERI accessory count belongs once looped ~2e10
    times.  Counts are bounded by the fields left (a DecodeError, or the report without them)."""
    frame = (
        b"+BUFF:GTERI,358803,862364030181926,gv200,00000011,,51,1,1,21.0,98,30.2,38.249517,24.008269,"
        b"20240817131401,0420,0004,75A0,412C,00,84795.4,,,,,01,00,0,,20240817130,,20240817131358,F127$"
    )
    try:
        decoded = CODEC.decode(frame, Context())
    except ProtocolError:
        return
    assert all(r.has_position for r in decoded.records)
