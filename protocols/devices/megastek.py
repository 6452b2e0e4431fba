"""Device side of `trackpipe.protocols.megastek`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..base import DeviceSession, Fix
from ..kit.coords import to_ddmm
from ..kit.readers import KNOTS

ALERTS = {
    "sos": "SOS",
    "powerCut": "PSD",
    "lowBattery": "Low Battery",
    "overspeed": "Over Speed",
    "vibration": "Vib",
    "powerOn": "PW ON",
    "geofenceEnter": "Move In",
    "geofenceExit": "Move Out",
}
CELL = "260,02,0A2D,1F2C,20"


class Device(DeviceSession):
    """A GVT900 speaking the length-prefixed ``$MGV002`` format: ``R`` live points, ``S``
    stored ones (uploaded late), the alert text naming alarms; a heartbeat is the unit's
    no-fix ``Timer`` report (empty coordinates: no position).  The server never answers."""

    id_shape = ("35", 15)

    def __init__(
        self,
        device_id: str,
        transport: str = "tcp",
        *,
        battery_level: int = 90,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(device_id, transport)
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError(f"a Megastek unit id is a 15-digit IMEI, got {device_id!r}")
        self.battery_level = battery_level
        self._clock = clock

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        t = self._clock().astimezone(UTC)
        body = (
            f"$MGV002,{self.device_id},GVT900,R,{t:%d%m%y},{t:%H%M%S},V,,,,,00,00,00,99.9,0.000,0.00,,0.0,"
            f"{CELL},0000,0000,0,0,0,,,,,{self.battery_level:03d},Timer;!"
        )
        return f"{len(body):04d}{body}".encode("ascii")

    def position(self, fix: Fix) -> bytes:
        return self._report(fix, "R", "Timer")

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report(fix, "S", "Timer") for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALERTS:
            raise ValueError(f"Megastek has no alert text for {alarm!r}")
        return self._report(fix, "R", ALERTS[alarm])

    def _report(self, fix: Fix, kind: str, alert: str) -> bytes:
        t = fix.time.astimezone(UTC)
        lat = to_ddmm(fix.latitude, 2) + "0"  # ddmm.mmmmm
        lon = to_ddmm(fix.longitude, 3) + "0"
        body = (
            f"$MGV002,{self.device_id},GVT900,{kind},{t:%d%m%y},{t:%H%M%S},{'A' if fix.valid else 'V'},"
            f"{lat},{'S' if fix.latitude < 0 else 'N'},{lon},{'W' if fix.longitude < 0 else 'E'},"
            f"00,{fix.satellites:02d},00,1.00,{fix.speed / KNOTS:.3f},{fix.course % 360:.2f},{fix.altitude:.1f},0.0,"
            f"{CELL},0000,0000,0,0,0,,,,,{self.battery_level:03d},{alert};!"
        )
        return f"{len(body):04d}{body}".encode("ascii")
