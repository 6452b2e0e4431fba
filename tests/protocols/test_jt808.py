"""JT/T 808: hand-built frames, replies, framing, device round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import reduce
from operator import xor

import pytest
from trackpipe.protocols import jt808
from trackpipe.protocols.base import (
    ChecksumError,
    Context,
    DecodeError,
    Detection,
    Fix,
    FramingError,
    Record,
)
from trackpipe.protocols.devices.jt808 import Device as Jt808Device

from tests.protocols import common

CODEC = jt808.CODEC


def assemble(msg_id: int, terminal: str, serial: int, body: bytes, version: int | None = None) -> bytes:
    """Hand-built frame, independent of the module's encoder."""
    attr = len(body) | (0x4000 if version is not None else 0)
    head = msg_id.to_bytes(2, "big") + attr.to_bytes(2, "big")
    head += (bytes([version]) if version is not None else b"") + bytes.fromhex(terminal) + serial.to_bytes(2, "big")
    content = head + body
    content += bytes([reduce(xor, content, 0)])
    escaped = content.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")
    return b"\x7e" + escaped + b"\x7e"


def location_body(
    alarm: int = 0, status: int = 0x02, lat: int = 22_543_210, lon: int = 114_012_345, extra: bytes = b""
) -> bytes:
    # altitude 50 m, speed 63.5 km/h, course 270, 2024-03-05 18:30:15 (GMT+8)
    body = alarm.to_bytes(4, "big") + status.to_bytes(4, "big") + lat.to_bytes(4, "big") + lon.to_bytes(4, "big")
    return body + bytes.fromhex("0032027b010e") + bytes.fromhex("240305183015") + extra


def decode(data: bytes, **options: str) -> jt808.Decoded:
    return CODEC.decode(data, Context(options=options))


def test_detect_navtelecom_flex_and_prefixes() -> None:
    assert CODEC.detect(b"~A\x01\x00\x00", "tcp") is Detection.NO
    assert CODEC.detect(b"~T\x00\x00\x00\x00", "tcp") is Detection.NO
    whole = assemble(0x0002, "013511221122", 1, b"")
    for cut in range(1, len(whole)):
        assert CODEC.detect(whole[:cut], "tcp") is Detection.MORE
    assert CODEC.detect(whole, "tcp") is Detection.YES
    assert CODEC.detect(whole[:-2] + bytes([whole[-2] ^ 1]) + b"\x7e", "tcp") is Detection.NO
    assert CODEC.detect(b"\x7e\x81\x00", "tcp") is Detection.NO  # downlink id
    assert CODEC.detect(b"(013632651491,ZC20,180716", "tcp") is Detection.NO  # TK103


# ---------------------------------------------------------------- hand-built frames

TERMINAL = "013511221122"


@pytest.mark.parametrize(
    ("alarm", "names"),
    [
        (1 << 0, {"sos"}),
        (1 << 1, {"overspeed"}),
        (1 << 7, {"lowBattery"}),
        (1 << 8, {"powerCut"}),
        (1 << 15, {"vibration"}),
        (1 << 20, {"geofence"}),
        (1 << 29 | 1 << 30, {"accident"}),
        ((1 << 0) | (1 << 5), {"sos", "gpsAntennaCut"}),
    ],
)
def test_alarm_flags(alarm: int, names: set[str]) -> None:
    data = assemble(0x0200, TERMINAL, 9, location_body(alarm=alarm))
    result = decode(data)
    assert result.kind == "alarm"
    assert CODEC.inspect(data, "tcp").kind == "alarm"
    assert set(result.records[0].alarms) == names


def test_location_fields_and_timezone() -> None:
    extra = bytes.fromhex("0104000004d2300119310107")  # odometer 123.4 km, rssi 25, 7 satellites
    data = assemble(0x0200, TERMINAL, 9, location_body(status=0b1111, extra=extra))
    rec = decode(data).records[0]
    assert rec.fix_time == datetime(2024, 3, 5, 10, 30, 15, tzinfo=UTC)  # GMT+8 by default
    assert (rec.latitude, rec.longitude) == (-22.54321, -114.012345)
    assert rec.valid and rec.ignition
    assert (rec.altitude, rec.speed, rec.course) == (50, 63.5, 270)
    assert (rec.odometer, rec.satellites, rec.attributes["rssi"]) == (123_400, 7, "25")
    utc = decode(data, **{"jt808.timezone": "+00:00"}).records[0]
    assert utc.fix_time == datetime(2024, 3, 5, 18, 30, 15, tzinfo=UTC)
    west = decode(data, **{"jt808.timezone": "-03:30"}).records[0]
    assert west.fix_time == datetime(2024, 3, 5, 22, 0, 15, tzinfo=UTC)
    with pytest.raises(DecodeError):
        decode(data, **{"jt808.timezone": "Mars/Olympus"})


def test_carscop_extension() -> None:
    # battery+mileage, odometer 1234 km, battery 4.1 V, area id, rssi 28, reserved
    extra = bytes.fromhex("00000000000004d20029000000001c000000")
    rec = decode(assemble(0x0200, TERMINAL, 3, location_body(extra=extra))).records[0]
    assert (rec.odometer, rec.battery, rec.attributes["rssi"]) == (1_234_000, 4.1, "28")


def test_batch_archive_flag() -> None:
    item = location_body()
    items = (len(item).to_bytes(2, "big") + item) * 2
    blind = decode(assemble(0x0704, TERMINAL, 4, b"\x00\x02\x01" + items))
    normal = decode(assemble(0x0704, TERMINAL, 4, b"\x00\x02\x00" + items))
    assert blind.kind == "batch" and len(blind.records) == 2
    assert all(r.archive for r in blind.records)
    assert not any(r.archive for r in normal.records)


def test_register_reply_exact_bytes() -> None:
    body = bytes(4) + b"MAKER" + b"MODEL".ljust(20, b"\0") + b"ID12345" + b"\x01"
    info = CODEC.inspect(assemble(0x0100, TERMINAL, 0x0005, body), "tcp")
    assert (info.kind, info.device_id) == ("login", "13511221122")
    # 8100, length 14, same terminal id, serial echoed; body: ack serial, result 0, auth code
    assert info.reply == bytes.fromhex("7e8100000e01351122112200050005003133353131323231313232" + "8c7e")


def test_general_reply_exact_bytes() -> None:
    info = CODEC.inspect(assemble(0x0200, TERMINAL, 0x0102, location_body()), "tcp")
    assert info.kind == "position"
    assert info.reply == bytes.fromhex("7e8001000501351122112201020102020000" + "b27e")


def test_reply_2019_header_and_escaping() -> None:
    # serial 0x7e7d must be escaped in the reply, the version byte kept
    terminal = "00000866496077582164"
    info = CODEC.inspect(assemble(0x0002, terminal, 0x7E7D, b"", version=1), "tcp")
    assert (info.kind, info.device_id) == ("heartbeat", "866496077582164")
    content = bytes.fromhex("8001400501" + terminal + "7e7d" + "7e7d000200")
    content += bytes([reduce(xor, content, 0)])
    escaped = content.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")
    assert info.reply == b"\x7e" + escaped + b"\x7e"
    assert b"\x7e" not in info.reply[1:-1]


@pytest.mark.parametrize("msg_id", [0x0102, 0x0506, 0x0003])
def test_other_uplinks_get_general_reply(msg_id: int) -> None:
    info = CODEC.inspect(assemble(msg_id, TERMINAL, 7, b"code" if msg_id == 0x0102 else b""), "tcp")
    reply = jt808.unescape(info.reply[1:-1])
    assert reply[:2] == b"\x80\x01" and reply[12:17] == b"\x00\x07" + msg_id.to_bytes(2, "big") + b"\x00"


def test_location_query_answer_is_not_acknowledged() -> None:
    info = CODEC.inspect(assemble(0x0201, TERMINAL, 7, b"\x00\x05" + location_body()), "tcp")
    assert (info.kind, info.reply) == ("position", None)


def test_bad_checksum() -> None:
    good = assemble(0x0200, TERMINAL, 9, location_body())
    bad = good[:-2] + bytes([good[-2] ^ 0x55]) + b"\x7e"
    with pytest.raises(ChecksumError):
        CODEC.inspect(bad, "tcp")
    with pytest.raises(ChecksumError):
        decode(bad)


def test_oversized_frame_is_fatal() -> None:
    common.oversized_is_fatal(CODEC, b"\x7e\x02\x00" + b"\x00" * CODEC.max_frame)


def test_framing_byte_by_byte_and_garbage() -> None:
    first = assemble(0x0200, TERMINAL, 0x7E7E, location_body())  # escaped serial
    text = b"(740190311185,1,001,ELOCK,3,529439)"
    stream = b"junk" + first + text + assemble(0x0002, TERMINAL, 1, b"")
    frames, garbage = common.frames_and_garbage(CODEC, stream)
    trickled, trickled_garbage = common.frames_and_garbage(CODEC, stream, chunk=1)
    assert trickled == frames
    assert garbage == [b"junk"] and b"".join(trickled_garbage) == b"junk"
    assert frames == [first, text, stream[-len(frames[2]) :]]
    assert decode(frames[0]).records[0].latitude == 22.54321
    assert decode(frames[1]).records[0].attributes["result"] == text.decode()


def test_stray_parenthesis_is_garbage_not_a_text_frame() -> None:
    heartbeat = assemble(0x0002, TERMINAL, 1, b"")
    frames, garbage = common.frames_and_garbage(CODEC, b"(" + b"x" * 600 + heartbeat)
    assert frames == [heartbeat] and b"".join(garbage) == b"(" + b"x" * 600


def test_split_datagram() -> None:
    one, two = assemble(0x0002, TERMINAL, 1, b""), assemble(0x0200, TERMINAL, 2, location_body())
    assert CODEC.split_datagram(one + two) == [one, two]
    with pytest.raises(FramingError):
        CODEC.split_datagram(b"not a frame")


def test_binary_imei_terminal_id() -> None:
    # Jimi units put the first 14 IMEI digits in binary; the Luhn digit completes it
    info = CODEC.inspect(assemble(0x0002, "4eb6fb4afd9e", 1, b""), "tcp")
    assert info.device_id == "865478070102068"


# ---------------------------------------------------------------- device side

FIX = Fix(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), -33.868812, 151.209296, speed=72.5, course=181, altitude=12)


@pytest.mark.parametrize("device_id", ["13511221122", "866496077582164"])
def test_device_round_trip(device_id: str) -> None:
    device = Jt808Device(device_id)
    register, auth = device.login()
    for sent, kind in ((register, "login"), (auth, "login"), (device.heartbeat(), "heartbeat")):
        info = CODEC.inspect(sent, "tcp")
        assert (info.kind, info.device_id) == (kind, device_id)
        assert device.expects_reply(sent) and device.check_reply(sent, info.reply)
    assert not device.check_reply(register, CODEC.inspect(auth, "tcp").reply)

    rec = decode(device.position(FIX)).records[0]
    assert rec.fix_time == FIX.time and rec.valid and not rec.archive
    assert rec.latitude == pytest.approx(FIX.latitude, abs=1e-6)
    assert rec.longitude == pytest.approx(FIX.longitude, abs=1e-6)
    assert (rec.speed, rec.course, rec.altitude, rec.satellites) == (72.5, 181, 12, 8)

    (batch,) = device.batch([FIX, FIX])
    result = decode(batch)
    assert result.kind == "batch" and len(result.records) == 2
    assert all(r.archive and r.fix_time == FIX.time for r in result.records)


@pytest.mark.parametrize("alarm", ["sos", "powerCut", "lowBattery", "vibration", "overspeed"])
def test_device_alarms(alarm: str) -> None:
    data = Jt808Device("13511221122").alarm(FIX, alarm)
    result = decode(data)
    assert result.kind == "alarm" and result.records[0].alarms == [alarm]


# ---------------------------------------------------------------- vendor items, models, other messages


def _tlv(item_id: int, value: bytes) -> bytes:
    return bytes([item_id, len(value)]) + value


def test_vendor_items() -> None:
    extra = (
        _tlv(0x77, bytes.fromhex("01abcdef") + (56).to_bytes(2, "big") + bytes([75, 3]))  # tire 1: 1.4 bar, 25 C
        + _tlv(0x63, bytes.fromhex("112233445566") + (4038).to_bytes(2, "big") + b"1\x00\x10")
        + _tlv(0x2B, bytes.fromhex("04d20929"))  # adc1 12.34, adc2 23.45
        + _tlv(0xF6, bytes.fromhex("0867567041100769"))  # imei
        + _tlv(0xE7, bytes.fromhex("0002000000000000"))  # sos
        + _tlv(0xF7, bytes.fromhex("00000f1a0250"))  # battery 3.866 V, charging, 80 %
        + _tlv(0xFE, bytes.fromhex("7c010400000003"))  # hard acceleration + braking
    )
    rec = decode(assemble(0x0200, TERMINAL, 1, location_body(extra=extra))).records[0]
    assert rec.attributes["tire1Pressure"] == "1.4"
    assert rec.attributes["tire1Temp"] == "25"
    assert rec.attributes["tire1SensorId"] == "abcdef"
    assert rec.attributes["lock1Battery"] == "4.038"
    assert rec.attributes["lock1Seal"] == "true"
    assert (rec.attributes["adc1"], rec.attributes["adc2"]) == ("12.34", "23.45")
    assert rec.attributes["imei"] == "867567041100769"
    assert rec.battery == pytest.approx(3.866)
    assert rec.attributes["charge"] == "true"
    assert rec.battery_level == 80
    assert set(rec.alarms) == {"sos", "hardAcceleration", "hardBraking"}


def test_obd_extension_runs_to_the_end() -> None:
    extra = _tlv(0x30, b"\x17") + bytes([0x80, 0x01, 0xAA]) + _tlv(0x81, b"\x13\x88") + _tlv(0xA0, b"P0101,C0300")
    rec = decode(assemble(0x0200, TERMINAL, 1, location_body(extra=extra))).records[0]
    assert rec.attributes["rpm"] == "5000"
    assert rec.attributes["dtcs"] == "P0101 C0300"


@pytest.mark.parametrize(
    ("model", "alarm", "extra", "expected"),
    [
        ("AL300", 1 << 16, b"", {"movement"}),
        (None, 1 << 16, b"", {"tampering"}),
        ("G-360P", 1 << 0, b"", {"removing"}),
        ("JC371", 0, _tlv(0xE8, bytes.fromhex("0c01")), {"sos"}),
        ("MV710G", 0, _tlv(0x57, bytes.fromhex("0000000000010000")), {"door"}),
        (None, 0, _tlv(0x57, bytes.fromhex("0100000000010000")), {"hardAcceleration"}),
    ],
)
def test_model_overrides(model: str | None, alarm: int, extra: bytes, expected: set[str]) -> None:
    options = {"model": model} if model else {}
    rec = decode(assemble(0x0200, TERMINAL, 1, location_body(alarm=alarm, extra=extra)), **options).records[0]
    assert set(rec.alarms) == expected


def test_model_status_and_items() -> None:
    body = location_body(status=0x02 | 1 << 16, extra=_tlv(0xF8, bytes.fromhex("4936")))
    assert decode(assemble(0x0200, TERMINAL, 1, body), model="MV710G").records[0].attributes["door"] == "true"
    assert decode(assemble(0x0200, TERMINAL, 1, body), model="C5L").records[0].attributes["steps"] == "18742"
    assert decode(assemble(0x0200, TERMINAL, 1, body)).records[0].attributes["temp2"] == "1824.2"


def test_lock_location_5501() -> None:
    # 2021-02-01 06:24:21 UTC, 22 deg 34.8476' N, 113 deg 55.0490' E, fix; 10 knots, course 90
    body = bytes.fromhex("010221062421223484761135504907102d1c06000000074e")
    body += bytes.fromhex("0000000000000300000004")  # no cell, product 3, vibration alarm
    body += _tlv(0x0B, b"\x03689607\x65") + _tlv(0x0C, bytes.fromhex("ff98ffa8007e"))
    content = b"\x55\x01" + len(body).to_bytes(2, "big") + bytes.fromhex(TERMINAL) + b"\x47" + body
    data = b"\x7e" + content + bytes([reduce(xor, content, 0)]) + b"\x7e"
    assert CODEC.detect(data, "tcp") is Detection.YES
    assert CODEC.inspect(data, "tcp").reply is None  # bit 15 clear: no 0x4401 acknowledgement
    result = decode(data)
    assert result.kind == "position"
    rec = result.records[0]
    assert rec.fix_time == datetime(2021, 2, 1, 6, 24, 21, tzinfo=UTC)
    assert rec.latitude == pytest.approx(22 + 34.8476 / 60)
    assert rec.longitude == pytest.approx(113 + 55.0490 / 60)
    assert rec.valid and rec.speed == pytest.approx(18.52) and rec.course == 90
    assert (rec.satellites, rec.odometer, rec.battery_level) == (6, 7000.0, 78)
    assert rec.alarms == ["vibration"]
    assert rec.attributes["unlockResult"] == "101"
    assert rec.attributes["lockPassword"] == "689607"
    assert rec.attributes["tilt"] == "[-104,-88,126]"


def _transparent(payload: bytes) -> Record:
    return decode(assemble(0x0900, TERMINAL, 3, payload)).records[0]


def test_transparent_texts() -> None:
    assert _transparent(b"\x40GTSL|6|1|0|10218094|1|\r\n").attributes["driverUniqueId"] == "10218094"
    assert _transparent(b"\x40hello").attributes["data"] == "hello"
    rec = _transparent(b"\x41$OBD-RT,12.3,800,20,0.00,0.00,88,10.89,31.15,181.68,181,54.26,565.96\r\n")
    assert rec.power == pytest.approx(12.3)
    assert rec.attributes["rpm"] == "800.0"
    assert (rec.attributes["coolantTemp"], rec.attributes["fuelUsed"]) == ("88", "565.96")


def test_transparent_vehicle_data() -> None:
    coordinates = bytes.fromhex("000000020158b91406cb7007")  # fix, 22.591764 N, 114.012167 E
    obd = bytes.fromhex("f0230223150215000201020536020bb8052d016b") + coordinates
    rec = _transparent(obd)
    assert rec.fix_time == datetime(2023, 2, 23, 7, 2, 15, tzinfo=UTC)
    assert (rec.attributes["rpm"], rec.attributes["coolantTemp"]) == ("3000", "67")
    assert rec.latitude == pytest.approx(22.591764) and rec.valid
    dtc = bytes.fromhex("f02302231502150102020001ffffffff000100001457000000020006")
    rec = _transparent(dtc + b"P1457\x00" + coordinates)
    assert rec.attributes["dtcs"] == "P1457" and rec.archive
    events = bytes.fromhex("f0230223150215000203011a00") + coordinates
    assert _transparent(events).alarms == ["hardAcceleration"]


def test_transparent_sensor_samples() -> None:
    head = bytes.fromhex("000000020158b91406cb7007001000000000240112034640")
    sample = bytes.fromhex("00032401120345210c4100f4011c")
    rec = _transparent(b"\x54" + head + sample)
    assert (rec.attributes["lightSensor"], rec.attributes["deviceTemp"], rec.attributes["humidity"]) == (
        "3137",
        "24.4",
        "28.4",
    )
    tags = b"\x53" + head + bytes.fromhex("0100aabbcc001122bd020b04")
    rec = _transparent(tags)
    assert (rec.attributes["tag1Mac"], rec.attributes["tag1Rssi"], rec.attributes["tag1Data"]) == (
        "aabbcc001122",
        "-67",
        "0b04",
    )


def test_acceleration_and_answers() -> None:
    samples = bytes.fromhex("210927151009000e002d80ac210927151010000e002d80ab")
    result = decode(assemble(0x2070, TERMINAL, 4, samples))
    assert result.records[0].attributes["gSensor"] == "[[14,45,-172],[14,45,-171]]"
    assert CODEC.inspect(assemble(0x2070, TERMINAL, 4, samples), "tcp").reply is None
    answer = decode(assemble(0x0701, TERMINAL, 5, (7).to_bytes(4, "big") + b"RELAY,1"))
    assert answer.records[0].attributes["result"] == "RELAY,1"


def test_time_sync_request_reply_at() -> None:
    data = assemble(0x0109, TERMINAL, 6, b"")
    info = CODEC.inspect(data, "tcp")
    assert info.clock_reply and info.reply is None
    reply = CODEC.reply_at(data, "tcp", datetime(2026, 12, 1, 21, 5, 9, tzinfo=UTC))
    assert reply == assemble(0x8109, TERMINAL, 6, bytes.fromhex("07ea0c0115050900"))


def test_alternative_delimiter_e7() -> None:
    terminal = bytes.fromhex("01351122112233")  # 7-byte id in the E7 variant
    body = location_body(extra=bytes.fromhex("3001e7"))  # rssi 0xE7 needs escaping
    content = b"\x02\x00" + len(body).to_bytes(2, "big") + terminal + b"\x00\x3d" + body  # serial 0x003D escapes too
    content += bytes([reduce(xor, content, 0)])
    escaped = content.replace(b"\x3e", b"\x3e\x01").replace(b"\x3d", b"\x3e\x02")
    escaped = escaped.replace(b"\xe6", b"\xe6\x01").replace(b"\xe7", b"\xe6\x02")
    data = b"\xe7" + escaped + b"\xe7"
    assert CODEC.detect(data, "tcp") is Detection.YES
    assert CODEC.detect(data[:8], "tcp") is Detection.MORE
    assert CODEC.detect(b"\xe7\x81\x00", "tcp") is Detection.NO
    frames, garbage = common.frames_and_garbage(CODEC, b"\x01\x02" + data, chunk=3)
    assert frames == [data] and garbage
    info = CODEC.inspect(data, "tcp")
    assert info.device_id == "1351122112233"
    assert info.reply is not None and info.reply[0] == info.reply[-1] == 0xE7
    assert jt808.unescape_alt(info.reply[1:-1])[4:11] == terminal
    rec = decode(data).records[0]
    assert rec.attributes["rssi"] == "231"
    assert rec.latitude == pytest.approx(22.54321)


def test_first_subpackage_decodes_and_later_ones_are_dead_lettered() -> None:
    body = location_body()
    for index in (1, 2):
        attr = len(body) | 0x2000
        content = b"\x02\x00" + attr.to_bytes(2, "big") + bytes.fromhex(TERMINAL) + b"\x00\x01"
        content += (2).to_bytes(2, "big") + index.to_bytes(2, "big") + body
        content += bytes([reduce(xor, content, 0)])
        data = b"\x7e" + content.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02") + b"\x7e"
        assert CODEC.inspect(data, "tcp").reply is not None  # acknowledged either way
        if index == 1:
            assert len(decode(data).records) == 1
        else:
            with pytest.raises(DecodeError) as caught:
                decode(data)
            assert caught.value.reason == "subpackage" and "2/2" in str(caught.value)


def test_logged_unescaped_frame_is_read_literally() -> None:
    # terminal id 4f07788ef87d: a bare 7D as Traccar logs it (the wire would carry 7D 01)
    content = b"\x00\x02\x00\x00" + bytes.fromhex("4f07788ef87d") + b"\x01\x38"
    data = b"\x7e" + content + bytes([reduce(xor, content, 0)]) + b"\x7e"
    assert CODEC.inspect(data, "tcp").device_id == jt808.terminal_id(bytes.fromhex("4f07788ef87d"))


def test_extension_blocks_eb_f3_e6() -> None:
    eb = bytes.fromhex("000400010377") + bytes.fromhex("000300c603")  # fuel1 88.7, battery alarm 3
    f3 = bytes.fromhex("0003020bb8005011") + b"WVWZZZ1JZXW000001"  # rpm 3000, VIN
    e6 = bytes.fromhex("01aabbccddeeffe8803200")  # BLE sensor 1: -24.5 C, 50 %
    extra = _tlv(0xEB, eb) + _tlv(0xF3, f3) + _tlv(0xE6, e6)
    rec = decode(assemble(0x0200, TERMINAL, 1, location_body(extra=extra))).records[0]
    assert (rec.attributes["fuel1"], rec.attributes["batteryAlarm"], rec.alarms) == ("88.7", "3", ["lowBattery"])
    assert (rec.attributes["rpm"], rec.attributes["vin"]) == ("3000", "WVWZZZ1JZXW000001")
    assert float(rec.attributes["temp1"]) == pytest.approx(-24.50196, abs=1e-4)
    assert rec.attributes["humidity1"] == "50.0"
    cells = _tlv(0xEB, bytes.fromhex("01cc0024990a7da0"))  # mcc 460, one cell
    rec = decode(assemble(0x0200, TERMINAL, 1, location_body(extra=cells))).records[0]
    assert (rec.attributes["mcc"], rec.attributes["lac"], rec.attributes["cid"]) == ("460", "9369", "2685")
    assert (
        decode(assemble(0x0200, TERMINAL, 1, location_body(extra=_tlv(0xEB, b"UTC+08:00"))))
        .records[0]
        .attributes["timezone"]
        == "UTC+08:00"
    )


def test_jimi_status_item_e8() -> None:
    e8 = bytes.fromhex("200307010401901c04d8")  # charging, level 4/6, 4.00 V, rssi 28, 12.4 V
    rec = decode(assemble(0x0200, TERMINAL, 1, location_body(extra=_tlv(0xE8, e8))), model="JC371").records[0]
    assert (rec.attributes["charge"], rec.battery_level, rec.battery, rec.power) == ("true", 66, 4.0, 12.4)
    plain = decode(assemble(0x0200, TERMINAL, 1, location_body(extra=_tlv(0xE8, e8[:3])))).records[0]
    assert plain.attributes["lockStatus"] == str(0x200307)


def test_driver_identity_0702() -> None:
    body = (
        bytes.fromhex("0124030518301500")
        + b"\x04JOHN"
        + b"CARD-0001".ljust(20)
        + b"\x03DMV"
        + bytes.fromhex("20301231")
    )
    rec = decode(assemble(0x0702, TERMINAL, 7, body)).records[0]
    assert (rec.attributes["driver"], rec.attributes["cardCode"], rec.attributes["cardAgency"]) == (
        "JOHN",
        "CARD-0001",
        "DMV",
    )
    assert rec.attributes["cardValidity"] == "20301231"
    assert rec.attributes["deviceTime"] == "2024-03-05T10:30:15+00:00"
