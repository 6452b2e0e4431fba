"""Device side of `trackpipe.protocols.meiligao`: a GT30/VT310-style unit."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.coords import to_ddmm
from ..kit.readers import KNOTS
from ..meiligao import (
    ALARM,
    ALARMS,
    HEARTBEAT,
    LOGIN,
    LOGIN_REPLY,
    POSITION,
    POSITION_LOGGED,
    REPLY_MAGIC,
    build,
    crc,
    encode_id,
)

ALARM_CODES = {name: code for code, name in ALARMS.items()}


def sentence(fix: Fix) -> str:
    t = fix.time.astimezone(UTC)
    return (
        f"{t:%H%M%S}.000,{'A' if fix.valid else 'V'},"
        f"{to_ddmm(abs(fix.latitude), 2)},{'S' if fix.latitude < 0 else 'N'},"
        f"{to_ddmm(abs(fix.longitude), 3)},{'W' if fix.longitude < 0 else 'E'},"
        f"{fix.speed / KNOTS:.2f},{fix.course % 360:.0f},{t:%d%m%y},,*00"
        f"|1.0|{fix.altitude:.0f}|0000|0000,0000|{'0' * 16}|14|00000000|{fix.satellites:02X}"
    )


class Device(DeviceSession):
    """A unit with a 14-digit id (an IMEI without its check digit)."""

    id_shape = ("1421", 14)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        self._ident = encode_id(device_id)

    def _frame(self, command: int, data: bytes = b"") -> bytes:
        return build(self._ident, command, data)

    def login(self) -> list[bytes]:
        return [self._frame(LOGIN)]

    def heartbeat(self) -> bytes:
        return self._frame(HEARTBEAT)

    def position(self, fix: Fix) -> bytes:
        return self._frame(POSITION, sentence(fix).encode("ascii"))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._frame(POSITION_LOGGED, bytes(6) + sentence(f).encode("ascii")) for f in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        code = ALARM_CODES.get(alarm)
        if code is None:
            raise ValueError(f"Meiligao has no alarm code for {alarm!r}")
        return self._frame(ALARM, bytes((code,)) + sentence(fix).encode("ascii"))

    def expects_reply(self, frame: bytes) -> bool:
        return int.from_bytes(frame[11:13], "big") in (LOGIN, HEARTBEAT)

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if len(reply) != 18 or reply[:2] != REPLY_MAGIC or reply[-2:] != b"\r\n":
            return False
        if int.from_bytes(reply[2:4], "big") != 18 or reply[4:11] != self._ident:
            return False
        if crc(reply[:-4]) != int.from_bytes(reply[-4:-2], "big"):
            return False
        sent = int.from_bytes(frame[11:13], "big")
        want = LOGIN_REPLY if sent == LOGIN else HEARTBEAT
        return int.from_bytes(reply[11:13], "big") == want and reply[13] == 1
