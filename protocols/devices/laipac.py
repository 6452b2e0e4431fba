"""Device side of `trackpipe.protocols.laipac`: the sentences a Laipac unit sends (simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.checksums import nmea
from ..kit.coords import to_ddmm
from ..kit.readers import KNOTS
from ..laipac import CONFIG_CODES, DEFAULT_PASSWORD, EVENT_ALARMS

#: alarm name -> event character (the first one Traccar maps to that alarm)
ALARM_EVENTS = {alarm: event for event, alarm in sorted(EVENT_ALARMS.items(), reverse=True)}


def _sentence(body: str) -> bytes:
    return f"{body}*{nmea(body):02X}\r\n".encode("latin-1")


class Device(DeviceSession):
    """An S911-style unit: `$ECHK` heartbeats, `$AVRMC` reports asking for an `$EAVACK`."""

    id_shape = ("9", 8)
    BATTERY_MV = 4076

    def __init__(self, device_id: str, transport: str = "tcp", password: str = DEFAULT_PASSWORD) -> None:
        if not device_id.isascii() or not device_id.isalnum():
            raise ValueError(f"a Laipac id is letters/digits, got {device_id!r}")
        super().__init__(device_id, transport)
        self.password = password

    def _avrmc(self, fix: Fix, status: str, event: str) -> bytes:
        t = fix.time.astimezone(UTC)
        lat = f"{to_ddmm(fix.latitude, 2)},{'N' if fix.latitude >= 0 else 'S'}"
        lon = f"{to_ddmm(fix.longitude, 3)},{'E' if fix.longitude >= 0 else 'W'}"
        return _sentence(
            f"$AVRMC,{self.device_id},{t:%H%M%S},{status},{lat},{lon},{fix.speed / KNOTS:.2f},{fix.course:.2f},"
            f"{t:%d%m%y},{event},{self.BATTERY_MV},0,1,0,0,0D7AB913,020408"
        )

    def login(self) -> list[bytes]:
        return [_sentence(f"$EAVSYS,{self.device_id},8901260882228888888,+15551234567,,V1.50")]

    def heartbeat(self) -> bytes:
        return _sentence(f"$ECHK,{self.device_id},0")

    def position(self, fix: Fix) -> bytes:
        return self._avrmc(fix, "a" if fix.valid else "v", "0")

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        # repeated (not yet acknowledged) reports: status R
        return [self._avrmc(fix, "r", "0") for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_EVENTS:
            raise ValueError(f"Laipac cannot express alarm {alarm!r}")
        return self._avrmc(fix, "a", ALARM_EVENTS[alarm])

    def expects_reply(self, frame: bytes) -> bool:
        text = frame.decode("latin-1")
        if text.startswith("$ECHK"):
            return True
        fields = text.split(",")
        return text.startswith("$AVRMC") and len(fields) > 11 and (fields[3].islower() or fields[11] in CONFIG_CODES)

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        text = frame.decode("latin-1").rstrip("\r\n")
        if text.startswith("$ECHK"):
            return reply == text.encode("latin-1") + b"\r\n"
        fields = text.split(",")
        want = b""
        if fields[3].islower():
            want += _sentence(f"$EAVACK,{fields[11]},{text[text.rfind('*') + 1 :]}")
        if fields[11] in CONFIG_CODES:
            want += _sentence(f"$AVCFG,{self.password},{CONFIG_CODES[fields[11]]}")
        return reply == want
