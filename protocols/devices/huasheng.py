"""Device side of `trackpipe.protocols.huasheng`: an HS3000-style OBD plug-in.

The unit logs in with its IMEI (the only frame carrying it), then sends handshakes and
position reports; every one of them is answered.  There is no history flag on the wire:
buffered points go as ordinary position reports.
"""

from __future__ import annotations

import struct
from datetime import UTC

from ..base import DeviceSession, Fix
from ..huasheng import (
    ALARMS,
    HSO,
    HSO_REPLY,
    LOGIN,
    LOGIN_REPLY,
    POSITION,
    POSITION_REPLY,
    TLV_FIRMWARE,
    TLV_IMEI,
    build,
    tlv,
    unescape,
)

ALARM_EVENTS = {name: code for code, name in ALARMS.items()}
REPLIES = {LOGIN: LOGIN_REPLY, HSO: HSO_REPLY, POSITION: POSITION_REPLY}


def report(fix: Fix, event: int = 0) -> bytes:
    t = fix.time.astimezone(UTC)
    status = (0x8000 if fix.valid else 0) | 0x4000
    return struct.pack(
        ">HH12siiHHHH",
        status,
        event,
        f"{t:%y%m%d%H%M%S}".encode(),
        round(fix.longitude * 100_000),
        round(fix.latitude * 100_000),
        round(fix.speed),
        round(fix.course) % 360,
        max(0, round(fix.altitude)),
        round(fix.speed),
    ) + tlv(0x0005, bytes((20, 9)) + bytes(4))


class Device(DeviceSession):
    id_shape = ("35", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if not device_id.isascii() or not 0 < len(device_id) <= 20:
            raise ValueError("a HuaSheng device id is an IMEI")
        self._index = 0

    def _frame(self, type_: int, body: bytes = b"") -> bytes:
        self._index += 1
        return build(type_, self._index, body)

    def login(self) -> list[bytes]:
        body = tlv(TLV_FIRMWARE, b"3G1_H1.1_V1.07.T") + tlv(TLV_IMEI, self.device_id.encode())
        return [self._frame(LOGIN, body)]

    def heartbeat(self) -> bytes:
        return self._frame(HSO)

    def position(self, fix: Fix) -> bytes:
        return self._frame(POSITION, report(fix))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self.position(fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        event = ALARM_EVENTS.get(alarm)
        if event is None:
            raise ValueError(f"HuaSheng has no event code for {alarm!r}")
        return self._frame(POSITION, report(fix, event))

    def expects_reply(self, frame: bytes) -> bool:
        return int.from_bytes(unescape(frame)[5:7], "big") in REPLIES

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        sent, got = unescape(frame), unescape(reply)
        if len(got) < 14 or got[0] != 0xC0 or got[-1] != 0xC0 or got[1] != 0x01:
            return False
        if int.from_bytes(got[3:5], "big") != len(got) - 2:
            return False
        want = REPLIES.get(int.from_bytes(sent[5:7], "big"))
        return int.from_bytes(got[5:7], "big") == want and got[9:13] == sent[9:13]
