"""Device side of `trackpipe.protocols.gps103`: the frames a Coban unit sends (simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..gps103 import IMEI_DIGITS, REPLY_LOAD, REPLY_ON, SOS_KEYWORD
from ..kit.coords import to_ddmm
from ..kit.readers import KNOTS

ALARM_KEYWORDS = {
    "sos": SOS_KEYWORD,
    "powerCut": "ac alarm",
    "lowBattery": "low battery",
    "vibration": "sensor alarm",
    "overspeed": "speed",
    "movement": "move",
    "door": "door alarm",
}


class Device(DeviceSession):
    """A Coban TK103B with its time zone set to UTC: `##` login, `<imei>;` heartbeats,
    `tracker` reports.  Coban has no flag for buffered points: `batch` sends plain reports."""

    id_shape = ("86", IMEI_DIGITS)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if len(device_id) != IMEI_DIGITS or not device_id.isascii() or not device_id.isdigit():
            raise ValueError("a GPS103 device id is a 15-digit IMEI")

    def login(self) -> list[bytes]:
        return [f"##,imei:{self.device_id},A;".encode("ascii")]

    def heartbeat(self) -> bytes:
        return f"{self.device_id};".encode("ascii")

    def position(self, fix: Fix) -> bytes:
        return self._report("tracker", fix)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report("tracker", fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_KEYWORDS:
            raise ValueError(f"GPS103 has no keyword for {alarm!r}")
        return self._report(ALARM_KEYWORDS[alarm], fix)

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith(b"##,") or frame.rstrip(b";") == self.device_id.encode() or b",help me," in frame

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame.startswith(b"##,"):
            return reply == REPLY_LOAD
        if frame[:1].isdigit():
            return reply == REPLY_ON
        if b",help me," in frame:
            return reply == f"**,imei:{self.device_id},E;".encode("ascii")
        return True

    def _report(self, keyword: str, fix: Fix) -> bytes:
        t = fix.time.astimezone(UTC)
        ms = t.microsecond // 1000
        return (
            f"imei:{self.device_id},{keyword},{t:%y%m%d%H%M},,F,{t:%H%M%S}.{ms:03d},{'A' if fix.valid else 'V'},"
            f"{to_ddmm(fix.latitude, 2)},{'S' if fix.latitude < 0 else 'N'},"
            f"{to_ddmm(fix.longitude, 3)},{'W' if fix.longitude < 0 else 'E'},"
            f"{fix.speed / KNOTS:.2f},{fix.course % 360:.2f},{fix.altitude:.1f};"
        ).encode("ascii")
