"""Device side of `trackpipe.protocols.taip`: the sentences a TAIP unit sends (simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.checksums import xor8
from ..kit.readers import MPH
from ..taip import GPS_EPOCH

#: alarms a standard TAIP unit reports as REV event codes
ALARM_EVENTS = {"sos": 1, "powerCut": 2}
POSITION_EVENT = 0


class Device(DeviceSession):
    """A Trimble-style unit: `>REV` event reports with GPS-week time, message index for acks."""

    id_shape = ("", 4)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        if not device_id or any(c in device_id for c in ";<>*#=") or not device_id.isascii():
            raise ValueError(f"a TAIP id must be plain text without ;<>*#=, got {device_id!r}")
        super().__init__(device_id, transport)
        self._index = 0

    def _sentence(self, body: str) -> bytes:
        self._index = (self._index + 1) % 0x10000
        text = f">{body};ID={self.device_id};#{self._index:04X};*"
        return f"{text}{xor8(text.encode('latin-1')):02X}<".encode("latin-1")

    @staticmethod
    def _rev(fix: Fix, event: int) -> str:
        elapsed = fix.time.astimezone(UTC) - GPS_EPOCH
        week, day = divmod(elapsed.days, 7)
        lat = round(fix.latitude * 1e5)
        lon = round(fix.longitude * 1e5)
        speed = min(round(fix.speed / MPH), 999)
        source = 2 if fix.valid else 0  # GPS 3-D / no fix
        return (
            f"REV{event:02d}{week:04d}{day}{elapsed.seconds:05d}"
            f"{'-' if lat < 0 else '+'}{abs(lat):07d}{'-' if lon < 0 else '+'}{abs(lon):08d}"
            f"{speed:03d}{round(fix.course) % 360:03d}{source}2"
        )

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        """An altitude report (`RAL`): a keep-alive that carries no position and wants no answer."""
        text = f">RAL00000+00000+00000;ID={self.device_id};*"
        return f"{text}{xor8(text.encode('latin-1')):02X}<".encode("latin-1")

    def position(self, fix: Fix) -> bytes:
        return self._sentence(self._rev(fix, POSITION_EVENT))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self.position(fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_EVENTS:
            raise ValueError(f"TAIP cannot express alarm {alarm!r}")
        return self._sentence(self._rev(fix, ALARM_EVENTS[alarm]))

    def expects_reply(self, frame: bytes) -> bool:
        return b";#" in frame

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        """`>ACK;ID=<id>;#<index>;*hh<` with a valid checksum."""
        start = frame.find(b";#") + 1
        index = frame[start : frame.find(b";", start)]
        text = b">ACK;ID=" + self.device_id.encode("latin-1") + b";" + index + b";*"
        return reply == text + b"%02X<" % xor8(text)
