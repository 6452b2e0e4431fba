"""The checksum catalogue: every CRC the protocols use, by its catalogue name, plus the
simple sums (XOR, byte sum, NMEA) and the Luhn digit of IMEIs.

`Crc` is the Rocksoft/Williams parameter model (width, poly, init, refin, refout,
xorout); each entry carries its published check value (the CRC of b"123456789"),
and `tests/protocols/test_kit.py` verifies all of them.
"""

from __future__ import annotations

import binascii
import sys
import zlib
from array import array
from dataclasses import dataclass, field

_REV8 = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _reflect(value: int, width: int) -> int:
    out = 0
    for _ in range(width):
        out = (out << 1) | (value & 1)
        value >>= 1
    return out


@dataclass(frozen=True)
class Crc:
    name: str
    width: int
    poly: int
    init: int
    refin: bool
    refout: bool
    xorout: int
    check: int  # CRC of b"123456789"
    _table: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _rinit: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = []
        top = 1 << (self.width - 1)
        mask = (1 << self.width) - 1
        if self.refin:
            rpoly = _reflect(self.poly, self.width)
            for byte in range(256):
                crc = byte
                for _ in range(8):
                    crc = (crc >> 1) ^ rpoly if crc & 1 else crc >> 1
                table.append(crc)
        else:
            for byte in range(256):
                crc = byte << (self.width - 8) if self.width >= 8 else byte
                for _ in range(8):
                    crc = ((crc << 1) ^ self.poly) & mask if crc & top else (crc << 1) & mask
                table.append(crc)
        object.__setattr__(self, "_table", tuple(table))
        object.__setattr__(self, "_rinit", _reflect(self.init, self.width))

    def __call__(self, data: bytes | bytearray | memoryview) -> int:
        if self.width == 16 and self.refin == self.refout:
            if self.poly == 0x1021:
                return self._hqx(data if isinstance(data, bytes) else bytes(data))
            if self.refin:
                return self._by_words(data if isinstance(data, bytes) else bytes(data))
        return self._by_bytes(data)

    def _hqx(self, data: bytes) -> int:
        """Poly 0x1021 through binascii.crc_hqx (C); a reflected variant is the same
        register fed bit-reversed bytes, read back bit-reversed."""
        if not self.refin:
            return binascii.crc_hqx(data, self.init) ^ self.xorout
        crc = binascii.crc_hqx(data.translate(_REV8), self.init)
        return ((_REV8[crc & 0xFF] << 8) | _REV8[crc >> 8]) ^ self.xorout

    def _by_words(self, data: bytes) -> int:
        """A reflected 16-bit CRC two input bytes per step (a 65,536-entry table, built once):
        after 16 shifts the register depends only on (register ^ little-endian word)."""
        words_table = _WORD_TABLES.get(self.name)
        if words_table is None:
            t = self._table
            words_table = array("H", [(t[x & 0xFF] >> 8) ^ t[((x >> 8) ^ t[x & 0xFF]) & 0xFF] for x in range(1 << 16)])
            _WORD_TABLES[self.name] = words_table
        even = len(data) & ~1
        words = array("H")
        words.frombytes(data[:even])
        if sys.byteorder == "big":
            words.byteswap()
        crc = self._rinit
        for word in words:
            crc = words_table[crc ^ word]
        if even != len(data):
            crc = (crc >> 8) ^ self._table[(crc ^ data[-1]) & 0xFF]
        return crc ^ self.xorout

    def _by_bytes(self, data: bytes | bytearray | memoryview) -> int:
        table = self._table
        if self.refin:
            crc = self._rinit
            for byte in data:
                crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
        else:
            shift = self.width - 8
            mask = (1 << self.width) - 1
            crc = self.init
            for byte in data:
                crc = ((crc << 8) & mask) ^ table[((crc >> shift) ^ byte) & 0xFF]
        if self.refin != self.refout:
            crc = _reflect(crc, self.width)
        return crc ^ self.xorout


_WORD_TABLES: dict[str, array] = {}

CRC16_X25 = Crc("CRC-16/X-25", 16, 0x1021, 0xFFFF, True, True, 0xFFFF, 0x906E)  # = CRC-ITU, IBM-SDLC (GT06)
CRC16_CCITT_FALSE = Crc("CRC-16/CCITT-FALSE", 16, 0x1021, 0xFFFF, False, False, 0, 0x29B1)  # IBM-3740
CRC16_XMODEM = Crc("CRC-16/XMODEM", 16, 0x1021, 0, False, False, 0, 0x31C3)
CRC16_KERMIT = Crc("CRC-16/KERMIT", 16, 0x1021, 0, True, True, 0, 0x2189)  # = CCITT (true)
CRC16_MCRF4XX = Crc("CRC-16/MCRF4XX", 16, 0x1021, 0xFFFF, True, True, 0, 0x6F91)
CRC16_MODBUS = Crc("CRC-16/MODBUS", 16, 0x8005, 0xFFFF, True, True, 0, 0x4B37)
CRC16_ARC = Crc("CRC-16/ARC", 16, 0x8005, 0, True, True, 0, 0xBB3D)  # = CRC-16/IBM (Teltonika)
CRC16_BUYPASS = Crc("CRC-16/UMTS", 16, 0x8005, 0, False, False, 0, 0xFEE8)
CRC8_ROHC = Crc("CRC-8/ROHC", 8, 0x07, 0xFF, True, True, 0, 0xD0)
CRC8_SMBUS = Crc("CRC-8/SMBUS", 8, 0x07, 0, False, False, 0, 0xF4)
CRC8_EGTS = Crc("CRC-8/NRSC-5", 8, 0x31, 0xFF, False, False, 0, 0xF7)  # EGTS header CRC
CRC8_MAXIM = Crc("CRC-8/MAXIM-DOW", 8, 0x31, 0, True, True, 0, 0xA1)
CRC32_CHECK = 0xCBF43926

CATALOGUE: dict[str, Crc] = {
    c.name: c
    for c in (
        CRC16_X25,
        CRC16_CCITT_FALSE,
        CRC16_XMODEM,
        CRC16_KERMIT,
        CRC16_MCRF4XX,
        CRC16_MODBUS,
        CRC16_ARC,
        CRC16_BUYPASS,
        CRC8_ROHC,
        CRC8_SMBUS,
        CRC8_EGTS,
        CRC8_MAXIM,
    )
}


def crc32(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/ISO-HDLC (zlib's)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def xor8(data: bytes | bytearray | memoryview) -> int:
    out = 0
    for byte in data:
        out ^= byte
    return out


def sum8(data: bytes | bytearray | memoryview) -> int:
    return sum(data) & 0xFF


def sum16(data: bytes | bytearray | memoryview) -> int:
    return sum(data) & 0xFFFF


def nmea(sentence: bytes | str) -> int:
    """XOR of the characters between a leading `$`/`!` (if any) and `*` (or the end)."""
    raw = sentence.encode("latin-1") if isinstance(sentence, str) else sentence
    if raw[:1] in (b"$", b"!"):
        raw = raw[1:]
    star = raw.find(b"*")
    return xor8(raw if star < 0 else raw[:star])


def luhn_digit(digits: str) -> int:
    """The Luhn check digit that completes `digits` (an IMEI's 15th digit for its first 14)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def luhn_valid(digits: str) -> bool:
    return len(digits) > 1 and digits.isdigit() and luhn_digit(digits[:-1]) == int(digits[-1])
