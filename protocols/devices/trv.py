"""Device side of `trackpipe.protocols.trv`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.coords import to_ddmm

ALARM_CODES = {"sos": 1, "fallDown": 5}
CELL = "260,2,2605,16780"


class Device(DeviceSession):
    """A VT202-style ``TRV`` unit: ``AP00`` login (the only frame with the IMEI), ``CP01``
    heartbeats, ``AP01`` points, ``AP10`` alarms; the server acknowledges each with the
    command's letter advanced (``TRVBP01#``).  No buffered-point marker: `batch` sends AP01."""

    id_shape = ("35", 15)

    def __init__(self, device_id: str, transport: str = "tcp", *, battery_level: int = 80) -> None:
        super().__init__(device_id, transport)
        if not device_id.isascii() or not device_id.isdigit() or not 10 <= len(device_id) <= 20:
            raise ValueError(f"a TRV unit id is its IMEI (digits), got {device_id!r}")
        self.battery_level = battery_level

    def login(self) -> list[bytes]:
        return [f"TRVAP00{self.device_id}#".encode("ascii")]

    def heartbeat(self) -> bytes:
        return f"TRVCP01,060000{self.battery_level:03d}10102#".encode("ascii")

    def position(self, fix: Fix) -> bytes:
        return self._report("AP01", fix, None)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report("AP01", fix, None) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_CODES:
            raise ValueError(f"TRV has no alarm code for {alarm!r}")
        return self._report("AP10", fix, ALARM_CODES[alarm])

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith(b"TRV")

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        command = frame[3:7].decode("latin-1")
        return reply == f"TRV{chr(ord(command[0]) + 1)}{command[1:]}#".encode("latin-1")

    def _report(self, command: str, fix: Fix, alarm: int | None) -> bytes:
        t = fix.time.astimezone(UTC)
        body = (
            f"{t:%y%m%d}{'A' if fix.valid else 'V'}"
            f"{to_ddmm(fix.latitude, 2)}{'S' if fix.latitude < 0 else 'N'}"
            f"{to_ddmm(fix.longitude, 3)}{'W' if fix.longitude < 0 else 'E'}"
            f"{min(fix.speed, 999.9):05.1f}{t:%H%M%S}{fix.course % 360:06.2f}"
            f"060{fix.satellites:03d}{self.battery_level:03d}10102,{CELL}"
        )
        if alarm is not None:
            body += f",{alarm:02d}"
        return f"TRV{command}{body}#".encode("ascii")
