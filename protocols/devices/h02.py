"""Device side of `trackpipe.protocols.h02`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..h02 import (
    KNOT_KMH,
    MAX_ID_LEN,
    _is_digits,
)
from ..kit.coords import to_ddmm

# --- device side ---------------------------------------------------------------------
STATUS_IDLE = 0xFFFFFBFF  # no alarm; bit 10 clear (ignition off) as most captures show
ALARM_BIT = {"vibration": 0, "sos": 1, "overspeed": 2, "powerCut": 19}
REPLY_TIME_DIGITS = 14


class Device(DeviceSession):
    """A SinoTrack-style text unit: no login (the id is in every frame), V1 reports, HTBT
    heartbeats with the battery level, alarms as V1 reports with the status bit cleared.
    H02 cannot mark buffered points, so `batch` sends plain V1 reports."""

    id_shape = ("9", 10)

    def __init__(self, device_id: str, transport: str = "tcp", *, battery_level: int = 100) -> None:
        super().__init__(device_id, transport)
        if not _is_digits(device_id) or len(device_id) > MAX_ID_LEN:
            raise ValueError("an H02 device id is up to 20 digits")
        self.battery_level = battery_level

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return f"*HQ,{self.device_id},HTBT,{self.battery_level}#".encode("ascii")

    def position(self, fix: Fix) -> bytes:
        return self._v1(fix, STATUS_IDLE)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._v1(fix, STATUS_IDLE) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_BIT:
            raise ValueError(f"the H02 status word has no bit for {alarm!r}")
        return self._v1(fix, STATUS_IDLE & ~(1 << ALARM_BIT[alarm]))

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith((b"*HQ,%s,V1," % self.device_id.encode(), b"*HQ,%s,HTBT" % self.device_id.encode()))

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        prefix = f"*HQ,{self.device_id},".encode()
        if frame.startswith(prefix + b"HTBT"):
            return reply == prefix + b"HTBT#"
        if frame.startswith(prefix + b"V1,"):
            when = reply.removeprefix(prefix + b"V4,V1,").removesuffix(b"#")
            return reply.endswith(b"#") and len(when) == REPLY_TIME_DIGITS and when.isdigit()
        return True

    def _v1(self, fix: Fix, status: int) -> bytes:
        t = fix.time.astimezone(UTC)
        return (
            f"*HQ,{self.device_id},V1,{t:%H%M%S},{'A' if fix.valid else 'V'},"
            f"{to_ddmm(fix.latitude, 2)},{'S' if fix.latitude < 0 else 'N'},"
            f"{to_ddmm(fix.longitude, 3)},{'W' if fix.longitude < 0 else 'E'},"
            f"{fix.speed / KNOT_KMH:.2f},{round(fix.course) % 360:03d},{t:%d%m%y},{status:08X}#"
        ).encode("ascii")
