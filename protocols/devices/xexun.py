"""Device side of `trackpipe.protocols.xexun`: the lines a TK102/TK103 sends (simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.checksums import nmea
from ..kit.coords import to_ddmm
from ..kit.readers import KNOTS

#: status text per alarm (what the unit writes after the signal field)
ALARM_TEXTS = {"sos": "help me!", "lowBattery": "low battery", "movement": "move!"}
PHONE = "+8613800000000"


class Device(DeviceSession):
    """A TK103 in the basic line form (`GPRMC ... ,F,<status>,imei:<id>,`), as Traccar's default
    framing expects.  No heartbeat exists: `heartbeat` repeats the last position (the unit's
    periodic report); buffered points cannot be marked, so `batch` sends plain reports."""

    id_shape = ("35", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if not device_id.isascii() or not device_id.isdigit() or not 5 <= len(device_id) <= 17:
            raise ValueError("a Xexun device id is the unit's IMEI (digits)")
        self._last: Fix | None = None

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        if self._last is None:
            raise ValueError("a Xexun unit reports positions only: send one first")
        return self._line(self._last, "")

    def position(self, fix: Fix) -> bytes:
        self._last = fix
        return self._line(fix, "")

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._line(fix, "") for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_TEXTS:
            raise ValueError(f"Xexun has no status text for {alarm!r}")
        self._last = fix
        return self._line(fix, ALARM_TEXTS[alarm])

    def _line(self, fix: Fix, status: str) -> bytes:
        t = fix.time.astimezone(UTC)
        sentence = (
            f"GPRMC,{t:%H%M%S}.{t.microsecond // 1000:03d},{'A' if fix.valid else 'V'},"
            f"{to_ddmm(fix.latitude, 2)},{'S' if fix.latitude < 0 else 'N'},"
            f"{to_ddmm(fix.longitude, 3)},{'W' if fix.longitude < 0 else 'E'},"
            f"{fix.speed / KNOTS:.2f},{fix.course % 360:.2f},{t:%d%m%y},,,A"
        )
        signal = "F" if fix.valid else "L"
        return f"{sentence}*{nmea(sentence):02X},{signal},{status},imei:{self.device_id},".encode("ascii")
