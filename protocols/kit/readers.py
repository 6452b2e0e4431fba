"""Readers shared by the decoders: a bounds-checked binary cursor, BCD, NMEA-style
coordinates, packed dates, bit fields, strict ASCII number fields.  Every failure is a
`DecodeError` (a dead letter with a reason), never an IndexError or a struct.error."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from ..base import DecodeError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Reader:
    """A cursor over bytes.  Big-endian unless the method name ends in `_le`."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _take(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > self.end:
            raise DecodeError(f"truncated: need {n} bytes at offset {start}, {self.end - start} left")
        self.pos = start + n
        return start

    def bytes(self, n: int) -> bytes:
        start = self._take(n)
        return self.data[start : start + n]

    def rest(self) -> bytes:
        return self.bytes(self.remaining)

    def skip(self, n: int) -> None:
        self._take(n)

    def peek(self, offset: int = 0) -> int:
        i = self.pos + offset
        if i >= self.end:
            raise DecodeError(f"truncated: no byte at offset {i}")
        return self.data[i]

    def sub(self, n: int) -> Reader:
        """A reader over the next `n` bytes (this one skips them)."""
        start = self._take(n)
        return Reader(self.data, start, start + n)

    def uint(self, n: int, byteorder: str = "big", signed: bool = False) -> int:
        start = self._take(n)
        return int.from_bytes(self.data[start : start + n], byteorder, signed=signed)  # type: ignore[arg-type]

    def u8(self) -> int:
        start = self._take(1)
        return self.data[start]

    def i8(self) -> int:
        return self.uint(1, signed=True)

    def u16(self) -> int:
        return self.uint(2)

    def i16(self) -> int:
        return self.uint(2, signed=True)

    def u24(self) -> int:
        return self.uint(3)

    def u32(self) -> int:
        return self.uint(4)

    def i32(self) -> int:
        return self.uint(4, signed=True)

    def u64(self) -> int:
        return self.uint(8)

    def u16_le(self) -> int:
        return self.uint(2, "little")

    def i16_le(self) -> int:
        return self.uint(2, "little", True)

    def u24_le(self) -> int:
        return self.uint(3, "little")

    def u32_le(self) -> int:
        return self.uint(4, "little")

    def i32_le(self) -> int:
        return self.uint(4, "little", True)

    def u64_le(self) -> int:
        return self.uint(8, "little")

    def bcd(self, n: int) -> str:
        """`n` bytes as their 2n hex digits (BCD digits; `F` fillers kept)."""
        return self.bytes(n).hex()

    def ascii(self, n: int) -> str:
        return self.bytes(n).decode("latin-1")

    def until(self, stop: int) -> bytes:
        """Bytes up to (not including) `stop`; the stop byte is consumed."""
        i = self.data.find(bytes((stop,)), self.pos, self.end)
        if i < 0:
            raise DecodeError(f"no {stop:#04x} after offset {self.pos}")
        out = self.data[self.pos : i]
        self.pos = i + 1
        return out


def bcd_digits(raw: bytes) -> str:
    """Packed BCD as a digit string, `F` filler nibbles dropped; DecodeError on other nibbles."""
    digits = raw.hex().rstrip("f").lstrip("f")
    if not digits.isdigit() and digits:
        raise DecodeError(f"not BCD: {raw.hex()}")
    return digits


def bcd_int(raw: bytes) -> int:
    digits = bcd_digits(raw)
    return int(digits) if digits else 0


def twos_complement(value: int, width: int) -> int:
    """An unsigned `width`-bit field read as two's complement (`0xFF` over 8 bits is -1)."""
    return value - (1 << width) if value >> (width - 1) & 1 else value


def sign_magnitude(value: int, width: int) -> int:
    """A `width`-bit field whose top bit is the sign and the rest the magnitude (`0x8005`
    over 16 bits is -5)."""
    top = 1 << (width - 1)
    return -(value & (top - 1)) if value & top else value


_JAVA_BLANKS = "".join(map(chr, range(33)))


def java_trim(text: str) -> str:
    """Java's `String.trim`: every character up to the space (NULs and other control
    characters too) dropped at both ends (fixed-width text fields padded with NUL)."""
    return text.strip(_JAVA_BLANKS)


def bit(value: int, index: int) -> bool:
    return bool(value >> index & 1)


def bits(value: int, start: int, count: int) -> int:
    """`count` bits of `value` from bit `start` (0 = least significant)."""
    return value >> start & ((1 << count) - 1)


def ddmm(text: str | bytes, hemisphere: str | bytes = "", degree_digits: int | None = None) -> float:
    """NMEA `(d)ddmm.mmmm` to signed degrees (`S`/`W` negative; a leading `-` too).  The
    degree digits are those before the last two integer digits unless given."""
    s = text.decode("latin-1") if isinstance(text, bytes) else text
    hem = hemisphere.decode("latin-1") if isinstance(hemisphere, bytes) else hemisphere
    negative = s.startswith("-")
    s = s.lstrip("+-")
    dot = s.find(".")
    whole = len(s) if dot < 0 else dot
    split = whole - 2 if degree_digits is None else degree_digits
    try:
        degrees = int(s[:split]) if split > 0 else 0
        minutes = float(s[split:])
    except ValueError as exc:
        raise DecodeError(f"bad coordinate {text!r}") from exc
    if minutes >= 60 or split < 0:
        raise DecodeError(f"bad coordinate {text!r}")
    value = degrees + minutes / 60
    if negative or hem in ("S", "W", "s", "w"):
        value = -value
    return value


def checked_coordinates(latitude: float, longitude: float) -> tuple[float, float]:
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise DecodeError(f"coordinates out of range: {latitude}, {longitude}")
    return latitude, longitude


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> datetime | None:
    """An aware UTC datetime, or None when the fields are no real instant.  Two-digit
    years are 20yy."""
    if year < 100:
        year += 2000
    try:
        return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def yymmdd_hhmmss(date: str, time: str) -> datetime | None:
    """`YYMMDD` + `hhmmss[.sss]` as UTC (None when not a real instant)."""
    try:
        frac = float("0" + time[6:]) if len(time) > 6 else 0.0
        return utc(
            int(date[0:2]),
            int(date[2:4]),
            int(date[4:6]),
            int(time[0:2]),
            int(time[2:4]),
            int(time[4:6]),
            round(frac * 1e6),
        )
    except ValueError:
        return None


def ddmmyy_hhmmss(date: str, time: str) -> datetime | None:
    """NMEA's reversed `DDMMYY` date + `hhmmss[.sss]`."""
    if len(date) != 6:
        return None
    return yymmdd_hhmmss(date[4:6] + date[2:4] + date[0:2], time)


def packed_time(raw: bytes) -> datetime | None:
    """Six bytes yy mm dd hh mm ss (binary), UTC."""
    if len(raw) < 6:
        return None
    return utc(raw[0], raw[1], raw[2], raw[3], raw[4], raw[5])


def bcd_time(raw: bytes) -> datetime | None:
    """Six BCD bytes yymmddhhmmss, UTC."""
    digits = raw.hex()
    if len(digits) < 12 or not digits[:12].isdigit():
        return None
    return yymmdd_hhmmss(digits[0:6], digits[6:12])


def unix(seconds: float) -> datetime:
    """Seconds since 1970 as UTC; DecodeError when out of datetime's range."""
    try:
        return EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError) as exc:
        raise DecodeError(f"timestamp {seconds} out of range") from exc


def nearest_day(moment: datetime, received: datetime) -> datetime:
    """A time of day put on the receive date, moved to the nearest day: a day back when it
    lies more than 12 h after `received`, a day on when more than 12 h before (a fix
    taken just before midnight and received just after, or the other way round)."""
    if moment - received > timedelta(hours=12):
        return moment - timedelta(days=1)
    if received - moment > timedelta(hours=12):
        return moment + timedelta(days=1)
    return moment


def shift(moment: datetime | None, hours: float) -> datetime | None:
    """A local clock reading `hours` ahead of UTC, back to UTC."""
    return None if moment is None else moment - timedelta(hours=hours)


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")


def decimal(text: str, default: float | None = None) -> float:
    """A strict unsigned decimal field (`12`, `0.5`): ASCII digits and at most one inner
    dot; no sign, exponent, `inf`/`nan`, underscores or blanks, all of which `float()`
    takes.  An empty field is `default` when one is given; anything else is a DecodeError."""
    if not text and default is not None:
        return default
    if not _DECIMAL.fullmatch(text):
        raise DecodeError(f"bad number {text!r}")
    return float(text)


def integer(text: str, default: int | None = None) -> int:
    """A strict unsigned integer field: ASCII digits only (`int()` would also take a sign,
    blanks, underscores and other scripts' digits).  Empty is `default` when given."""
    if not text and default is not None:
        return default
    if not _INTEGER.fullmatch(text):
        raise DecodeError(f"bad integer {text!r}")
    return int(text)


def finite_float(text: str, default: float | None = None) -> float:
    """`float()`'s grammar (exponents, underscores and blanks included) without `inf` and
    `nan`; empty is `default` when one is given, anything else a DecodeError.  New code
    wants the stricter `decimal`."""
    if not text and default is not None:
        return default
    try:
        value = float(text)
    except ValueError as exc:
        raise DecodeError(f"bad number {text!r}") from exc
    if not math.isfinite(value):
        raise DecodeError(f"bad number {text!r}")
    return value


def float_or_none(text: str) -> float | None:
    """Lenient: `float(text)`, None when empty or no number (`inf`, `nan` and `1_0` pass)."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def int_or_none(text: str, base: int = 10) -> int | None:
    """Lenient: `int(text, base)`, None when empty or no number (a sign, blanks and `_` pass)."""
    try:
        return int(text, base) if text else None
    except ValueError:
        return None


KNOTS = 1.852  # km/h per knot
MPH = 1.609344  # km/h per mile per hour
