"""Device side of `trackpipe.protocols.eelink`: a TK116-style unit speaking the new (0x12) layout.

Over UDP every datagram is an `EL` envelope with the IMEI, so no login is sent; over TCP
the unit logs in first (the login answer carries the server clock, see `Codec.reply_at`).
Eelink has no history flag: buffered points come as ordinary 0x12 packets.
"""

from __future__ import annotations

import struct

from ..base import DeviceSession, Fix
from ..eelink import (
    ALARMS,
    COORD_SCALE,
    HEARTBEAT,
    LOGIN,
    NORMAL,
    NOT_ANSWERED,
    PACKET_MAGIC,
    UDP_MAGIC,
    WARNING,
    envelope,
    imei_bytes,
    packet,
)

ALARM_CODES: dict[str, int] = {}
for _code, _name in ALARMS.items():
    ALARM_CODES.setdefault(_name, _code)
STATUS_IGNITION_ON = 0b110  # ignition known + on


def location(fix: Fix) -> bytes:
    return struct.pack(
        ">IBiihHHB",
        int(fix.time.timestamp()),
        0x01,
        round(fix.latitude * COORD_SCALE),
        round(fix.longitude * COORD_SCALE),
        round(fix.altitude),
        round(fix.speed),
        round(fix.course) % 360,
        fix.satellites,
    )


class Device(DeviceSession):
    id_shape = ("86", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError("an Eelink device id is a 15-digit IMEI")
        self._index = 0

    def _send(self, type_: int, content: bytes) -> bytes:
        self._index = (self._index + 1) & 0xFFFF
        data = packet(type_, self._index, content)
        return envelope(self.device_id, data) if self.transport == "udp" else data

    def login(self) -> list[bytes]:
        if self.transport == "udp":
            return []
        return [self._send(LOGIN, imei_bytes(self.device_id) + b"\x01\x20")]

    def heartbeat(self) -> bytes:
        return self._send(HEARTBEAT, struct.pack(">H", STATUS_IGNITION_ON))

    def _status(self, fix: Fix) -> bytes:
        return struct.pack(">H", STATUS_IGNITION_ON | (1 if fix.valid else 0))

    def position(self, fix: Fix) -> bytes:
        return self._send(NORMAL, location(fix) + self._status(fix) + struct.pack(">H", 4100))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self.position(fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        code = ALARM_CODES.get(alarm)
        if code is None:
            raise ValueError(f"Eelink has no alarm code for {alarm!r}")
        return self._send(WARNING, location(fix) + bytes((code,)) + self._status(fix))

    @staticmethod
    def _packet_of(frame: bytes) -> bytes:
        return frame[14:] if frame[:2] == UDP_MAGIC else frame

    def expects_reply(self, frame: bytes) -> bool:
        p = self._packet_of(frame)
        return p[:2] == PACKET_MAGIC and p[2] not in NOT_ANSWERED

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        sent = self._packet_of(frame)
        if frame[:2] == UDP_MAGIC:
            if reply[:2] != UDP_MAGIC or reply[6:14] != imei_bytes(self.device_id):
                return False
            reply = reply[14:]
        want = packet(sent[2], int.from_bytes(sent[5:7], "big"))
        if sent[2] == LOGIN:
            return reply[:3] == want[:3] and reply[3:5] == b"\x00\x09" and reply[5:7] == want[5:7]
        return reply == want
