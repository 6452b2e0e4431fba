"""The protocol kit: checksum catalogue against its reference values, framers fed whole
and byte by byte, resync on garbage, size caps, readers."""

from __future__ import annotations

import pytest
from trackpipe.protocols.base import DecodeError, FramingError
from trackpipe.protocols.kit import checksums, readers
from trackpipe.protocols.kit.framing import (
    DelimitedFramer,
    LengthFramer,
    LineFramer,
    ascii_length,
    length_field,
    split_with,
)

CHECK = b"123456789"


@pytest.mark.parametrize("crc", list(checksums.CATALOGUE.values()), ids=list(checksums.CATALOGUE))
def test_crc_catalogue_check_values(crc: checksums.Crc) -> None:
    assert crc(CHECK) == crc.check


def test_simple_sums() -> None:
    assert checksums.crc32(CHECK) == checksums.CRC32_CHECK
    assert checksums.xor8(b"\x01\x02\x04") == 7
    assert checksums.sum8(b"\xff\x02") == 1
    assert checksums.nmea("$GPGLL,5057.970,N,00146.110,E,142451,A*27") == 0x27
    assert checksums.luhn_digit("49015420323751") == 8
    assert checksums.luhn_valid("490154203237518")
    assert not checksums.luhn_valid("490154203237519")


def _all_frames(framer, data: bytes, step: int, junk: list[bytes] | None = None) -> list[bytes]:
    """Frames of `data` fed `step` bytes at a time; garbage reports go to `junk` (or fail)."""
    out = []
    for i in range(0, len(data), step):
        framer.feed(data[i : i + step])
        while True:
            try:
                frame = framer.next_frame()
            except FramingError as exc:
                if junk is None or exc.fatal:
                    raise
                junk.append(exc.discarded)
                continue
            if frame is None:
                break
            out.append(frame)
    return out


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_delimited_multibyte_markers(step: int) -> None:
    data = b"$$A1,x\r\n$$B2,yy\r\n"
    framer = DelimitedFramer(b"$$", b"\r\n", 64, skip=b"")
    assert _all_frames(framer, data, step) == [b"$$A1,x\r\n", b"$$B2,yy\r\n"]


def test_delimited_garbage_keeps_partial_start() -> None:
    framer = DelimitedFramer(b"$$", b"\r\n", 64, skip=b"")
    framer.feed(b"xx$")
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.discarded == b"xx" and not err.value.fatal
    framer.feed(b"$ok\r\n")
    assert framer.next_frame() == b"$$ok\r\n"


def test_delimited_oversized_is_fatal() -> None:
    framer = DelimitedFramer(b"*", b"#", 16)
    framer.feed(b"*" + b"a" * 40)
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.fatal and err.value.reason == "frame too large"


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_line_framer_any_end_byte(step: int) -> None:
    framer = LineFramer(64, ends=b";\n")
    data = b"##,imei:1,A;\r\n123;imei:2,tracker\n"
    assert _all_frames(framer, data, step) == [b"##,imei:1,A;", b"123;", b"imei:2,tracker\n"]


@pytest.mark.parametrize("step", [1, 2, 1000])
def test_length_field_with_magic_and_trailer(step: int) -> None:
    # 78 78 | len | payload(len-?) ... total = len + 5
    framer = LengthFramer(64, 3, length_field(2, 1, 2), magic=b"\x78\x78", trailer=b"\r\n")
    frame = b"\x78\x78\x03\x01\x02\x03\r\n"
    junk: list[bytes] = []
    assert _all_frames(framer, b"\x00\x01" + frame + frame, step, junk) == [frame, frame]
    assert b"".join(junk) == b"\x00\x01"


def test_length_field_resyncs_on_bad_trailer() -> None:
    framer = LengthFramer(64, 3, length_field(2, 1, 2), magic=b"\x78\x78", trailer=b"\r\n")
    good = b"\x78\x78\x03\x01\x02\x03\r\n"
    framer.feed(b"\x78\x78\x03\x01\x02\x03XX" + good)
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert not err.value.fatal
    assert framer.next_frame() == good


def test_length_field_oversized_and_ascii_lengths() -> None:
    framer = LengthFramer(100, 2, length_field(0, 2))
    framer.feed(b"\xff\xff")
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.fatal
    ascii_framer = LengthFramer(100, 4, ascii_length(2, 2, base=16), magic=b"$$")
    assert _all_frames(ascii_framer, b"$$03abc$$00", 1) == [b"$$03abc", b"$$00"]


def test_split_with_rejects_partial_datagram() -> None:
    with pytest.raises(FramingError):
        split_with(LineFramer(64), b"no end")
    assert split_with(LineFramer(64), b"a\nb\n") == [b"a\n", b"b\n"]


def test_reader_bounds_and_values() -> None:
    r = readers.Reader(bytes.fromhex("0102030405060708ff"))
    assert (r.u8(), r.u16(), r.u16_le(), r.remaining) == (1, 0x0203, 0x0504, 4)
    assert r.i32() == 0x060708FF
    with pytest.raises(DecodeError):
        r.u8()
    assert readers.bcd_digits(bytes.fromhex("0123456789012345")) == "0123456789012345"
    with pytest.raises(DecodeError):
        readers.bcd_digits(b"\xab")


def test_coordinates_and_dates() -> None:
    assert readers.ddmm("4807.038", "N") == pytest.approx(48.1173)
    assert readers.ddmm("01131.000", "W") == pytest.approx(-11.516666, abs=1e-6)
    with pytest.raises(DecodeError):
        readers.ddmm("4861.0", "N")
    assert readers.ddmmyy_hhmmss("230394", "123519").isoformat() == "1994-03-23T12:35:19+00:00".replace("1994", "2094")
    assert readers.packed_time(bytes([26, 2, 30, 1, 2, 3])) is None
    assert readers.bcd_time(bytes.fromhex("260101120000")).hour == 12
    assert readers.bits(0b101100, 2, 3) == 0b011


@pytest.mark.parametrize("crc", list(checksums.CATALOGUE.values()), ids=list(checksums.CATALOGUE))
def test_crc_fast_paths_match_the_byte_table(crc: checksums.Crc) -> None:
    """binascii (poly 0x1021) and two-bytes-per-step paths agree with the plain byte table."""
    import random

    rng = random.Random(crc.name)
    for n in range(100):
        data = rng.randbytes(n)
        assert crc(data) == crc._by_bytes(data) == crc(bytearray(data))
