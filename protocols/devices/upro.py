"""Device side of `trackpipe.protocols.upro`: an UPRO `*HQ20` unit that asks for answers (ack = 1)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.readers import KNOTS

HEAD = "HQ20"
IDLE_STATUS = "0100000000"  # ignition on, no alarm
# alarm -> (status digit index, bit) as the decoder reads the B field
ALARM_BITS = {"sos": (5, 0), "vibration": (5, 2), "movement": (5, 3), "overspeed": (6, 2), "tampering": (8, 1)}


class Device(DeviceSession):
    """`BA` location reports and `AH` heartbeats, each asking for `*HQ20Y<type>#`.  UPRO
    has no history flag, so `batch` sends plain reports."""

    id_shape = ("8624", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if not device_id.isdigit():
            raise ValueError("an UPRO device id is digits")

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return self._frame("AH", f"&B{IDLE_STATUS}&T85")

    def position(self, fix: Fix) -> bytes:
        return self._report(fix, IDLE_STATUS)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report(fix, IDLE_STATUS) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_BITS:
            raise ValueError(f"the UPRO status field has no bit for {alarm!r}")
        digit, index = ALARM_BITS[alarm]
        status = list(IDLE_STATUS)
        status[digit] = str(1 << index)
        return self._report(fix, "".join(status))

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith(f"*{HEAD}1".encode())

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        kind = frame.split(b",", 1)[1][:2]
        return reply == f"*{HEAD}Y".encode() + kind + b"#"

    def _report(self, fix: Fix, status: str) -> bytes:
        t = fix.time.astimezone(UTC)
        knots = fix.speed / KNOTS
        flags = (0 if fix.valid else 1) | (2 if fix.latitude >= 0 else 0) | (4 if fix.longitude >= 0 else 0)
        location = (
            f"{t:%H%M%S}{_dm(fix.latitude, 2)}{_dm(fix.longitude, 3)}{flags}"
            f"{min(int(knots / 2), 99):02d}{int(fix.course % 360 // 10):02d}{t:%d%m%y}"
        )
        return self._frame("BA", f"&A{location}&B{status}&F{min(round(knots * 10), 9999):04d}&T85")

    def _frame(self, kind: str, fields: str) -> bytes:
        return f"*{HEAD}1{self.device_id},{kind}{fields}#".encode()


def _dm(value: float, degree_digits: int) -> str:
    """|degrees| as d..d mm mmmm without a dot (minutes x 10000)."""
    units = round(abs(value) * 600_000)
    degrees, rest = divmod(units, 600_000)
    return f"{degrees:0{degree_digits}d}{rest:06d}"
