"""Device side of `trackpipe.protocols.tk103`: the frames a TK103 unit sends (simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.coords import to_ddmm
from ..tk103 import BO01_ALARMS, HANDSHAKE, ID_LEN, LOGIN

ALARM_DIGITS = {alarm: digit for digit, alarm in BO01_ALARMS.items()}
# What a unit without a GPS fix reports in its login.
NO_FIX_BLOCK = "000000V0000.0000N00000.0000E000.0000000000.0000000000L00000000"
IDLE_STATUS = "00000000"  # charge, ignition, 3 io nibbles, fuel


class Device(DeviceSession):
    """A GPS103-style TK103 unit: BP00 handshake and BP05 login (both answered), BR00
    reports, BO01 alarms.  The protocol has no flag for buffered points: `batch` sends BR00."""

    id_shape = ("0", ID_LEN)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if len(device_id) != ID_LEN or not device_id.isascii() or not device_id.isdigit():
            raise ValueError("a TK103 device id is 12 digits")
        self._last: Fix | None = None

    def login(self) -> list[bytes]:
        block = self._block(self._last) if self._last else NO_FIX_BLOCK
        return [self._frame(LOGIN + "000" + self.device_id + block)]

    def heartbeat(self) -> bytes:
        return self._frame(HANDSHAKE + "HSO")

    def position(self, fix: Fix) -> bytes:
        self._last = fix
        return self._frame("BR00" + self._block(fix))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._frame("BR00" + self._block(fix)) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_DIGITS:
            raise ValueError(f"TK103 BO01 has no code for {alarm!r}")
        self._last = fix
        return self._frame(f"BO01{ALARM_DIGITS[alarm]}" + self._block(fix))

    def expects_reply(self, frame: bytes) -> bool:
        return frame[13:17] in (HANDSHAKE.encode(), LOGIN.encode())

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        command = frame[13:17].decode("latin-1")
        if command == HANDSHAKE:
            return reply == f"({self.device_id}AP01HSO)".encode()
        if command == LOGIN:
            return reply == f"({self.device_id}AP05)".encode()
        return True

    @staticmethod
    def _block(fix: Fix) -> str:
        t = fix.time.astimezone(UTC)
        speed = min(fix.speed, 999.9)
        return (
            f"{t:%y%m%d}{'A' if fix.valid else 'V'}"
            f"{to_ddmm(fix.latitude, 2)}{'S' if fix.latitude < 0 else 'N'}"
            f"{to_ddmm(fix.longitude, 3)}{'W' if fix.longitude < 0 else 'E'}"
            f"{speed:05.1f}{t:%H%M%S}{fix.course % 360:06.2f}{IDLE_STATUS}L00000000"
        )

    def _frame(self, content: str) -> bytes:
        return f"({self.device_id}{content})".encode("ascii")
