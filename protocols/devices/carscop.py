"""Device side of `trackpipe.protocols.carscop`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..base import DeviceSession, Fix
from ..carscop import (
    BUFFERED,
    DEFAULT_SPEED_UNIT,
    DEVICE_ID_LEN,
    HEARTBEAT,
    LOGIN,
    ODOMETER_MARK,
    SPEED_UNITS,
)
from ..kit.coords import to_ddmm

# --- device side ---------------------------------------------------------------------
ALARM_TEXTS = {
    "sos": "SOS",
    "vibration": "Shock Alarm",
    "powerCut": "Power Cut",
    "lowBattery": "Low Battery",
    "overspeed": "Overspeed",
    "geofenceExit": "Geofence Alarm",
    "movement": "Move Alarm",
}
HEARTBEAT_BODY = "HSO"
IDLE_STATE = "00000000"
MAX_KNOTS = 999.9


class Device(DeviceSession):
    """A CCTR-802: id sent once (UB05), header clock in UTC (Plaspy's TIMEZONE+00 set-up),
    speed in `speed_unit` (knots, matching the decoder's default)."""

    id_shape = ("CC80", 15)

    def __init__(
        self,
        device_id: str,
        transport: str = "tcp",
        *,
        speed_unit: str = DEFAULT_SPEED_UNIT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(device_id, transport)
        if len(device_id) != DEVICE_ID_LEN or not device_id.isascii() or not device_id.isalnum():
            raise ValueError("a Carscop device id is 15 ASCII letters or digits")
        if speed_unit not in SPEED_UNITS:
            raise ValueError(f"speed_unit must be one of {sorted(SPEED_UNITS)}")
        self._speed_factor = SPEED_UNITS[speed_unit]
        self._clock = clock
        self._last: Fix | None = None

    def login(self) -> list[bytes]:
        """The id, with the last fix when the unit has one.  Without one a real unit sends
        its firmware's no-fix block (a 2004 time at 0, 0: the ORANGE... captures); the
        simulated unit sends no position at all, so that a fresh simulated device stores
        no bogus point (the decoder reads a bare ``UB05<id>`` as a login without records)."""
        block = self._block(self._last) if self._last else ""
        return [self._frame(self._clock(), LOGIN + self.device_id + block)]

    def heartbeat(self) -> bytes:
        return self._frame(self._clock(), HEARTBEAT + HEARTBEAT_BODY)

    def position(self, fix: Fix) -> bytes:
        self._last = fix
        return self._frame(fix.time, "UD00" + self._block(fix))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._frame(fix.time, BUFFERED + self._block(fix)) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_TEXTS:
            raise ValueError(f"Carscop has no alarm text for {alarm!r}")
        self._last = fix
        return self._frame(fix.time, "UA01" + ALARM_TEXTS[alarm] + self._block(fix))

    def _block(self, fix: Fix) -> str:
        t = fix.time.astimezone(UTC)
        speed = fix.speed / self._speed_factor
        if speed > MAX_KNOTS:
            raise ValueError(f"speed {fix.speed} km/h does not fit the ddd.d field")
        return (
            f"{t:%H%M%S}{'A' if fix.valid else 'V'}"
            f"{to_ddmm(fix.latitude, 2)}{'S' if fix.latitude < 0 else 'N'}"
            f"{to_ddmm(fix.longitude, 3)}{'W' if fix.longitude < 0 else 'E'}"
            f"{speed:05.1f}{t:%y%m%d}{fix.course % 360:06.2f}{IDLE_STATE}{ODOMETER_MARK}000000"
        )

    @staticmethod
    def _frame(header_time: datetime, content: str) -> bytes:
        return f"*{header_time.astimezone(UTC):%y%m%d%H%M%S}{content}^".encode("ascii")
