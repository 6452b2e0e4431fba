"""The protocol kit: checksum catalogue against its reference values, framers fed whole
and byte by byte, resync on garbage, size caps, readers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols.base import DecodeError, FramingError
from trackpipe.protocols.kit import checksums, readers
from trackpipe.protocols.kit.framing import (
    DelimitedFramer,
    LengthFramer,
    LineFramer,
    PairedFramer,
    ascii_length,
    drain,
    drop_leading,
    escape,
    length_field,
    partial_start,
    resync_cut,
    split_with,
    take,
    take_sized,
    unescape,
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


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_length_framer_several_magics_and_minimum(step: int) -> None:
    """Castel-style `@@`/`$$` frames: LE total length at 2, CR LF trailer, a floor on the size."""
    framer = LengthFramer(
        64, 4, length_field(2, 2, adjust=-4, byteorder="little"), magic=(b"@@", b"$$"), trailer=b"\r\n", minimum=8
    )
    a, b = b"@@\x08\x00xy\r\n", b"$$\x09\x00xyz\r\n"
    junk: list[bytes] = []
    assert _all_frames(framer, b"zz$" + a + b + b"$$\x05\x00\r\n" + a, step, junk) == [a, b, a]
    assert b"".join(junk) == b"zz$" + b"$$\x05\x00\r\n"
    framer = LengthFramer(64, 4, length_field(2, 2, adjust=-4, byteorder="little"), magic=(b"@@", b"$$"))
    framer.feed(b"$")
    assert framer.next_frame() is None  # may still become `$$`


def test_resync_cut_and_partial_start_with_several_starts() -> None:
    assert resync_cut(bytearray(b"xx$$..@@"), (b"@@", b"$$")) == 2
    assert resync_cut(bytearray(b"xxx@"), (b"@@", b"$$")) == 3  # the trailing `@` is kept
    assert resync_cut(bytearray(b"xxx"), (b"@@", b"$$")) == 3
    assert resync_cut(bytearray(b"ab$"), b"$$") == resync_cut(bytearray(b"ab$"), (b"$$",)) == 2
    assert partial_start(bytearray(b"@"), (b"@@", b"$$")) and not partial_start(bytearray(b"@x"), (b"@@",))


def test_drop_leading_take_and_take_sized() -> None:
    buf = bytearray(b"\r\n\x00abc")
    assert drop_leading(buf, b"\r\n\x00") and buf == b"abc"
    assert not drop_leading(buf, b"\r\n") and buf == b"abc"
    assert take(buf, 2) == b"ab" and buf == b"c"
    buf = bytearray(b"abcd")
    assert take_sized(buf, 5, 10) is None and buf == b"abcd"
    assert take_sized(buf, 3, 10) == b"abc" and buf == b"d"
    with pytest.raises(FramingError) as err:
        take_sized(buf, 11, 10)
    assert err.value.fatal and not buf


def test_drain_keeps_the_rest_and_reports_the_datagram() -> None:
    framer = LineFramer(64)
    assert drain(framer, b"a\nb\nrest") == [b"a\n", b"b\n"]
    assert framer.take_rest() == b"rest"
    with pytest.raises(FramingError) as err:
        drain(DelimitedFramer(b"*", b"#", 64), b"x*a#", b"\r\nx*a#")
    assert err.value.discarded == b"\r\nx*a#"
    with pytest.raises(FramingError, match="incomplete packet in datagram"):
        split_with(LineFramer(64), b"a\nb", "packet")


def test_byte_stuffing() -> None:
    codes = {0x00: 0x1B, 0xE3: 0xF8}  # GoSafe: 1B 00 = 1B, 1B E3 = F8
    assert escape(b"a\x1bb\xf8c", 0x1B, codes) == b"a\x1b\x00b\x1b\xe3c"
    assert unescape(b"a\x1b\x00b\x1b\xe3c", 0x1B, codes) == b"a\x1bb\xf8c"
    assert unescape(b"a\x1b\x07b\x1b", 0x1B, codes) == b"ab\x1b"  # unknown code dropped, last escape kept
    assert unescape(b"a}\x07b}", ord("}"), {0x01: ord("}")}, keep_unknown=True) == b"a}\x07b}"
    assert unescape(bytearray(b"plain"), 0x1B, codes) == b"plain"
    text = {0x15: ord("("), 0x14: ord(")"), 0x00: ord("=")}  # codes that are themselves no plain bytes
    assert unescape(escape(b"x()=y", ord("="), text), ord("="), text) == b"x()=y"


def test_strict_number_fields() -> None:
    assert readers.decimal("12.50") == 12.5 and readers.decimal("7") == 7.0
    assert readers.decimal("", 0.0) == 0.0
    for bad in ("", "inf", "nan", "1_0", "1e3", "-1", "+1", " 1", "1.", ".5", "\u0661"):
        with pytest.raises(DecodeError):
            readers.decimal(bad)
    assert readers.integer("0042") == 42 and readers.integer("", 3) == 3
    for bad in ("", "-1", "1_0", " 1", "1.0", "\u0661"):
        with pytest.raises(DecodeError):
            readers.integer(bad)


def test_nearest_day() -> None:
    received = datetime(2026, 3, 10, 0, 5, tzinfo=UTC)
    assert readers.nearest_day(datetime(2026, 3, 10, 23, 59, tzinfo=UTC), received).day == 9
    assert readers.nearest_day(datetime(2026, 3, 10, 11, 0, tzinfo=UTC), received).day == 10
    late = datetime(2026, 3, 10, 23, 58, tzinfo=UTC)
    assert readers.nearest_day(datetime(2026, 3, 10, 0, 1, tzinfo=UTC), late).day == 11


def test_signed_fields_and_java_trim() -> None:
    assert readers.twos_complement(0xFF, 8) == -1 and readers.twos_complement(0x7F, 8) == 127
    assert readers.twos_complement(0x400, 11) == -1024 and readers.twos_complement(0xFFFFFFFE, 32) == -2
    assert readers.sign_magnitude(0x8005, 16) == -5 and readers.sign_magnitude(0x0005, 16) == 5
    assert readers.sign_magnitude(0x80000000, 32) == 0 and readers.sign_magnitude(0x80000010, 32) == -16
    assert readers.java_trim("\x00\x00 ab c\t\r\n\x00") == "ab c"
    assert readers.java_trim("\xa0x\xa0") == "\xa0x\xa0"  # only characters up to the space


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_paired_framer_each_start_with_its_end(step: int) -> None:
    """GoSafe/Ulbotech shape: `*`...`#` text and `F8`...`F8` binary, CR/LF between frames."""
    framer = PairedFramer({b"*": b"#", b"\xf8": b"\xf8"}, 64)
    text, binary = b"*GS,1#", b"\xf8\x01#*\x02\xf8"
    junk: list[bytes] = []
    data = b"xy" + text + b"\r\n" + binary + b"z" + text
    assert _all_frames(framer, data, step, junk) == [text, binary, text]
    assert b"".join(junk) == b"xyz"
    framer = PairedFramer({b"*": b"#"}, 8)
    framer.feed(b"*123456789#")
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.fatal and err.value.reason == "frame too large"
