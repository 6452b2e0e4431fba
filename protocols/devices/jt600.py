"""Device side of `trackpipe.protocols.jt600`: a JT701-style unit.

Positions go as text ``U01`` (stored ones as ``U03``), both answered ``(S39)``; alarms as a
long-format binary record whose status word carries the alarm bit and asks for an answer
(``(P35)``); the keep-alive is ``(<id>,@JT)``.
"""

from __future__ import annotations

import struct
from datetime import UTC

from ..base import DeviceSession, Fix
from ..jt600 import LONG_STATUS_ALARMS, LONG_STATUS_ALARMS_HIGH, REPLY_P35, REPLY_S39, RESPONSE_BIT
from ..kit.readers import MPH

ALARM_BITS = {name: bit for bit, name in (*LONG_STATUS_ALARMS, *LONG_STATUS_ALARMS_HIGH)}
PROTOCOL_VERSION = 0x11


def bcd_location(fix: Fix) -> bytes:
    """The 17-byte binary location (speed in km/h, 2 BCD digits: capped at 99)."""
    t = fix.time.astimezone(UTC)
    lat, lon = abs(fix.latitude), abs(fix.longitude)
    lat_raw = int(lat) * 1_000_000 + round((lat - int(lat)) * 60 * 10_000)
    lon_raw = int(lon) * 1_000_000 + round((lon - int(lon)) * 60 * 10_000)
    flags = (1 if fix.valid else 0) | (2 if fix.latitude >= 0 else 0) | (4 if fix.longitude >= 0 else 0)
    digits = f"{t:%d%m%y%H%M%S}{lat_raw:08d}{lon_raw:09d}{flags:x}{min(round(fix.speed), 99):02d}"
    return bytes.fromhex(digits) + bytes((round(fix.course % 360 / 2) % 180,))


class Device(DeviceSession):
    id_shape = ("33", 10)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if len(device_id) != 10 or not device_id.isdigit():
            raise ValueError("a JT600 device id is 10 digits")
        self._index = 0

    def _next(self) -> int:
        self._index = self._index % 255 + 1
        return self._index

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return f"({self.device_id},@JT)".encode()

    def _u0x(self, kind: str, fix: Fix) -> bytes:
        t = fix.time.astimezone(UTC)
        return (
            f"({self.device_id},{kind},{t:%d%m%y},{t:%H%M%S},{'T' if fix.valid else 'F'},"
            f"{abs(fix.latitude):.6f},{'S' if fix.latitude < 0 else 'N'},"
            f"{abs(fix.longitude):.6f},{'W' if fix.longitude < 0 else 'E'},"
            f"{fix.speed / MPH:.2f},{round(fix.course) % 360},{fix.satellites},80%,00000000000011,"
            f"10133,5173,22,100,{self._next()})"
        ).encode()

    def position(self, fix: Fix) -> bytes:
        return self._u0x("U01", fix)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._u0x("U03", fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        bit = ALARM_BITS.get(alarm)
        if bit is None:
            raise ValueError(f"JT600 has no status bit for {alarm!r}")
        status = 1 << bit | 1 << RESPONSE_BIT
        tail = struct.pack(">IBIHBHHB", 0, fix.satellites, 0, status, 80, 10133, 5173, 22)
        body = bcd_location(fix) + tail
        head = b"$" + bytes.fromhex(self.device_id) + bytes((PROTOCOL_VERSION, 0x10))
        # long format: the length counts the records and the index byte (whole frame = length + 10)
        return head + struct.pack(">H", len(body) + 1) + body + bytes((self._next(),))

    def expects_reply(self, frame: bytes) -> bool:
        if frame[:1] == b"$":
            return True
        return any(f",{k},".encode() in frame for k in ("U01", "U02", "U03", "U06"))

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame[:1] == b"$":
            return reply == REPLY_P35
        return reply == (b"(S20)" if b",U06," in frame else REPLY_S39)
