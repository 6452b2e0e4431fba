"""Device side of `trackpipe.protocols.pt502`: the lines a PT502 sends (simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.coords import to_ddmm
from ..kit.readers import KNOTS
from ..pt502 import MAX_CHUNK, TYPE_ALARMS

#: alarm name -> message type
ALARM_TYPES = {alarm: type_ for type_, alarm in TYPE_ALARMS.items()}


class Device(DeviceSession):
    """A PT502: `$POS` reports, alarm-typed lines, `$PHO` photo announcements."""

    id_shape = ("", 7)
    STATE = "fd7"  # battery 15, rssi 13, 7 satellites

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        if not device_id.isdigit() or len(device_id) > 20:
            raise ValueError(f"a PT502 id is up to 20 digits, got {device_id!r}")
        super().__init__(device_id, transport)
        self.odometer = 0

    def _line(self, type_: str, fix: Fix) -> bytes:
        t = fix.time.astimezone(UTC)
        lat = f"{to_ddmm(fix.latitude, 2)},{'N' if fix.latitude >= 0 else 'S'}"
        lon = f"{to_ddmm(fix.longitude, 3)},{'E' if fix.longitude >= 0 else 'W'}"
        millis = t.microsecond // 1000
        return (
            f"${type_},{self.device_id},{t:%H%M%S}.{millis:03d},{'A' if fix.valid else 'V'},{lat},{lon},"
            f"{fix.speed / KNOTS:.2f},{fix.course:.2f},{t:%d%m%y},,,A/00010,00000/0,0,0,0/"
            f"{self.odometer}//{self.STATE}/\r\n"
        ).encode("ascii")

    def login(self) -> list[bytes]:
        return [f"$FUS{self.device_id},510-V1.12,A11-V3.0\r\n".encode("ascii")]

    def heartbeat(self) -> bytes:
        return f"$FUS{self.device_id},510-V1.12,A11-V3.0\r\n".encode("ascii")

    def position(self, fix: Fix) -> bytes:
        return self._line("POS", fix)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._line("POS", fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_TYPES:
            raise ValueError(f"PT502 cannot express alarm {alarm!r}")
        return self._line(ALARM_TYPES[alarm], fix)

    def photo(self, fix: Fix, size: int) -> bytes:
        """The announcement of a `size`-byte photo (the server then pulls chunks)."""
        return self._line(f"PHO{size}-1", fix)

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith(b"$PHO") and not frame.startswith(b"$PHO0")

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        size = int(frame[4:].split(b",")[0].split(b"-")[0] or b"0")
        return reply == f"#PHD0,{min(size, MAX_CHUNK)}\r\n".encode()
