"""Device side of `trackpipe.protocols.t800x`: the frames a T880x unit (``23 23`` header) sends."""

from __future__ import annotations

import struct
from datetime import UTC

from ..base import DeviceSession, Fix
from ..t800x import ALARM, GPS, HEARTBEAT, LOGIN, PREFIX_LEN

HEADER = b"##"
# device alarm codes (decoded by `t800x.ALARMS_1`)
ALARM_CODES = {"powerCut": 1, "lowBattery": 2, "sos": 3, "overspeed": 4, "vibration": 8}
ALARM_AT = 22  # body offset of the alarm code in a 23 23 position
LOGIN_BODY = bytes.fromhex("140197625020")  # software / hardware versions, as a unit sends them


def _bcd(value: int, digits: int) -> bytes:
    return bytes.fromhex(f"{value:0{digits}d}"[-digits:])


class Device(DeviceSession):
    """A T8803-like unit: login and heartbeats are acknowledged, alarms too (with their code)."""

    id_shape = ("86", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError(f"T800x needs a 15-digit IMEI, got {device_id!r}")
        super().__init__(device_id, transport)
        self._index = 0
        self._imei = bytes.fromhex("0" + device_id)

    def _frame(self, kind: int, body: bytes) -> bytes:
        self._index = (self._index + 1) & 0xFFFF
        size = PREFIX_LEN + len(body)
        return HEADER + bytes((kind,)) + size.to_bytes(2, "big") + self._index.to_bytes(2, "big") + self._imei + body

    def login(self) -> list[bytes]:
        return [self._frame(LOGIN, LOGIN_BODY)]

    def heartbeat(self) -> bytes:
        return self._frame(HEARTBEAT, b"")

    def _body(self, fix: Fix, alarm: int) -> bytes:
        t = fix.time.astimezone(UTC)
        status = 0x40 * fix.valid | min(fix.satellites, 31)
        head = struct.pack(">HHBHH", 30, 600, 30, 500, 20)  # intervals, compensations, rssi
        flags = bytes((status, 0, 0, 0, 0)) + b"\x00\x00" + struct.pack(">H", 0x4000)  # ignition on
        adc = b"\xff\xff\xff\xff"
        tail = bytes((alarm, 0)) + struct.pack(">I", 0) + _bcd(90, 2)
        when = bytes.fromhex(f"{t:%y%m%d%H%M%S}")
        gps = struct.pack("<fff", fix.altitude, fix.longitude, fix.latitude)
        motion = _bcd(round(fix.speed * 10), 4) + struct.pack(">H", round(fix.course) % 360)
        return head + flags + adc + tail + when + gps + motion + _bcd(1240, 4)

    def position(self, fix: Fix) -> bytes:
        return self._frame(GPS, self._body(fix, 0))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        """Stored points: the protocol has no history flag, so they decode as live points."""
        return [self._frame(GPS, self._body(fix, 0)) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_CODES:
            raise ValueError(f"T800x cannot express alarm {alarm!r} (supported: {sorted(ALARM_CODES)})")
        return self._frame(ALARM, self._body(fix, ALARM_CODES[alarm]))

    def expects_reply(self, frame: bytes) -> bool:
        return len(frame) > 2 and frame[2] in (LOGIN, HEARTBEAT, ALARM)

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        """Header, type, length, index ``00 01`` (``23 23`` units) and the IMEI, plus the alarm code."""
        alarm = frame[PREFIX_LEN + ALARM_AT] if frame[2] == ALARM else 0
        size = 16 if alarm else 15
        want = frame[:3] + size.to_bytes(2, "big") + b"\x00\x01" + frame[7:PREFIX_LEN]
        return reply == want + (bytes((alarm,)) if alarm else b"")
