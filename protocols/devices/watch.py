"""Device side of `trackpipe.protocols.watch`: the frames a 3G watch sends (simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..watch import build, parse, reply_content

#: alarms a watch can raise, as the status bit it sets
ALARM_BITS = {
    "sos": 16,
    "lowBattery": 17,
    "geofenceExit": 18,
    "geofenceEnter": 19,
    "removing": 20,
    "fallDown": 21,
    "powerCut": 14,
}


class Device(DeviceSession):
    """A SeTracker-style watch: `LK` link keep-alive, `UD` live, `UD2` blind-area, `AL` alarm."""

    id_shape = ("90", 10)
    VENDOR = "3G"
    BATTERY = 87
    RSSI = 100
    CELLS = "1,1,460,0,9360,4082,131"
    WIFI = "1,home,34:31:c4:c8:a9:22,-67"

    def __init__(self, device_id: str, transport: str = "tcp", vendor: str = VENDOR) -> None:
        if not (device_id.isascii() and device_id.isalnum() and 1 <= len(device_id) <= 20):
            raise ValueError(f"watch ids are 1-20 letters/digits, got {device_id!r}")
        if len(vendor) != 2 or not vendor.isalnum():
            raise ValueError(f"vendor must be two letters/digits, got {vendor!r}")
        super().__init__(device_id, transport)
        self.vendor = vendor
        self.steps = 0

    def _frame(self, content: str) -> bytes:
        return build(self.vendor, self.device_id, content.encode("ascii"))

    def login(self) -> list[bytes]:
        return [self.heartbeat()]

    def heartbeat(self) -> bytes:
        return self._frame(f"LK,{self.steps},0,{self.BATTERY}")

    def _position(self, type_: str, fix: Fix, status: int = 0) -> str:
        t = fix.time.astimezone(UTC)
        lat = f"{abs(fix.latitude):.6f},{'N' if fix.latitude >= 0 else 'S'}"
        lon = f"{abs(fix.longitude):.6f},{'E' if fix.longitude >= 0 else 'W'}"
        return (
            f"{type_},{t:%d%m%y,%H%M%S},{'A' if fix.valid else 'V'},{lat},{lon},"
            f"{fix.speed:.2f},{fix.course:.1f},{fix.altitude:.1f},{fix.satellites},{self.RSSI},"
            f"{self.BATTERY},{self.steps},0,{status:08X},{self.CELLS},{self.WIFI}"
        )

    def position(self, fix: Fix) -> bytes:
        return self._frame(self._position("UD", fix))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._frame(self._position("UD2", fix)) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_BITS:
            raise ValueError(f"a watch cannot express alarm {alarm!r}")
        return self._frame(self._position("AL", fix, 1 << ALARM_BITS[alarm]))

    def expects_reply(self, frame: bytes) -> bool:
        return reply_content(parse(frame).type) is not None

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        header = parse(frame)
        content = reply_content(header.type)
        return content is not None and reply == build(header.vendor, header.device_id, content, header.index)
