"""Device side of `trackpipe.protocols.castel`: an SC (version 4) OBD dongle such as the IDD-213."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from ..base import DeviceSession, Fix
from ..castel import (
    ALARM_CODES,
    ID_LEN,
    SC_ALARM,
    SC_ALARM_REPLY,
    SC_GPS,
    SC_HEARTBEAT,
    SC_HEARTBEAT_REPLY,
    SC_LOGIN,
    SC_LOGIN_REPLY,
    build_frame,
    crc,
)

VERSION = 4
ALARM_EVENTS = {name: code for code, name in ALARM_CODES.items()}


def fix_item(fix: Fix) -> bytes:
    t = fix.time.astimezone(UTC)
    flags = (min(fix.satellites, 15) << 4) | (0x0C if fix.valid else 0)
    flags |= 0x02 if fix.latitude >= 0 else 0
    flags |= 0x01 if fix.longitude >= 0 else 0
    return bytes((t.day, t.month, t.year % 100, t.hour, t.minute, t.second)) + struct.pack(
        "<IIHHB",
        round(abs(fix.latitude) * 3_600_000),
        round(abs(fix.longitude) * 3_600_000),
        round(fix.speed / 0.036),
        round(fix.course % 360 * 10),
        flags,
    )


class Device(DeviceSession):
    """An IDD-213 dongle.  `login()` is empty: the SC login answer (9001) carries the
    server clock, so it cannot be checked byte for byte by the simulator; `login_frame()`
    builds it for tests."""

    id_shape = ("213L", 17)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if not device_id.isascii() or not 0 < len(device_id) <= ID_LEN:
            raise ValueError("a Castel device id is 1-20 ASCII characters")
        self._odometer = 0
        self._alarm_index = 0
        self._clock = datetime.now(UTC)

    def _stat(self, when: datetime) -> bytes:
        seconds = int(when.timestamp())
        return struct.pack("<IIIIIHI", seconds, seconds, self._odometer, 0, 0, 0, 0x040000) + bytes(8)

    def _frame(self, type_: int, content: bytes) -> bytes:
        return build_frame(self.device_id, type_, content, VERSION)

    def login_frame(self, fix: Fix) -> bytes:
        versions = b"IDD-213L V1.1.1\0IDD-213L V1.1.0\0"
        return self._frame(SC_LOGIN, self._stat(fix.time) + b"\x01" + fix_item(fix) + versions)

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return self._frame(SC_HEARTBEAT, self._stat(self._clock))

    def position(self, fix: Fix) -> bytes:
        return self._frame(SC_GPS, b"\x00" + self._stat(fix.time) + b"\x01" + fix_item(fix))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        out = []
        for start in range(0, len(fixes), 10):
            chunk = fixes[start : start + 10]
            items = b"".join(fix_item(f) for f in chunk)
            out.append(self._frame(SC_GPS, b"\x01" + self._stat(chunk[-1].time) + bytes((len(chunk),)) + items))
        return out

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        event = ALARM_EVENTS.get(alarm)
        if event is None:
            raise ValueError(f"Castel SC has no alarm code for {alarm!r}")
        self._alarm_index += 1
        content = (
            struct.pack("<I", self._alarm_index)
            + self._stat(fix.time)
            + b"\x01"
            + fix_item(fix)
            + bytes((1, 1, event))
            + bytes(4)
        )
        return self._frame(SC_ALARM, content)

    def expects_reply(self, frame: bytes) -> bool:
        return frame[:2] == b"@@" and int.from_bytes(frame[25:27], "big") in (SC_LOGIN, SC_HEARTBEAT, SC_ALARM)

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if len(reply) < 31 or reply[:2] != b"@@" or reply[-2:] != b"\r\n":
            return False
        if int.from_bytes(reply[2:4], "little") != len(reply):
            return False
        if crc(reply[:-4]) != int.from_bytes(reply[-4:-2], "little"):
            return False
        if reply[5:25] != frame[5:25]:
            return False
        sent = int.from_bytes(frame[25:27], "big")
        answered = int.from_bytes(reply[25:27], "big")
        want = {SC_LOGIN: SC_LOGIN_REPLY, SC_HEARTBEAT: SC_HEARTBEAT_REPLY, SC_ALARM: SC_ALARM_REPLY}.get(sent)
        if answered != want:
            return False
        if sent == SC_ALARM:
            return reply[27:31] == frame[27:31]
        return True
