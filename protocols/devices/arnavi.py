"""Device side of `trackpipe.protocols.arnavi`: a binary ARNAVI unit (header version ``22``)."""

from __future__ import annotations

import struct
from datetime import UTC

from ..arnavi import HEADER, PACKET_END, PACKET_START, RECORD_DATA
from ..base import DeviceSession, Fix
from ..kit.checksums import sum8

VERSION = 0x22  # the header version whose answer needs no server clock
RECORD_PING = 0x00
POWER_MV, BATTERY_MV = 12600, 4100


def _tag(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + value


class Device(DeviceSession):
    """Header once, then ``5B``...``5D`` packets, each acknowledged with ``7B 00 <index> 7D``.

    ``sos`` is the alarm ("call") button, flag bit 1 of tag 6/01: it decodes as the
    ``callButton`` attribute (Traccar raises no alarm for it).  The protocol carries no
    history flag, so batches decode as ordinary points.
    """

    id_shape = ("86", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        if not device_id.isdigit() or len(device_id) > 16:
            raise ValueError(f"an ARNAVI id is an IMEI (digits), got {device_id!r}")
        super().__init__(device_id, transport)
        self._index = 0

    def login(self) -> list[bytes]:
        return [bytes((HEADER, VERSION)) + int(self.device_id).to_bytes(8, "little")]

    def _packet(self, records: list[bytes]) -> bytes:
        self._index = self._index % 255 + 1
        return bytes((PACKET_START, self._index)) + b"".join(records) + bytes((PACKET_END,))

    @staticmethod
    def _record(kind: int, seconds: int, data: bytes) -> bytes:
        stamp = seconds.to_bytes(4, "little")
        return bytes((kind,)) + len(data).to_bytes(2, "little") + stamp + data + bytes((sum8(stamp + data),))

    def _data(self, fix: Fix, flags: int = 0x01) -> bytes:
        sats = 0xFF if not fix.valid else min(fix.satellites, 15)
        motion = bytes((round(fix.course % 360 / 2) % 180, min(max(round(fix.altitude / 10), 0), 255), sats))
        motion += bytes((min(round(fix.speed), 255),))
        data = _tag(3, struct.pack("<f", fix.latitude)) + _tag(4, struct.pack("<f", fix.longitude))
        data += _tag(5, motion) + _tag(1, struct.pack("<HH", BATTERY_MV, POWER_MV))
        data += _tag(6, bytes((0x01, flags)) + b"\x00\x00")
        return self._record(RECORD_DATA, int(fix.time.astimezone(UTC).timestamp()), data)

    def heartbeat(self) -> bytes:
        return self._packet([self._record(RECORD_PING, 0, b"")])

    def position(self, fix: Fix) -> bytes:
        return self._packet([self._data(fix)])

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._packet([self._data(fix) for fix in fixes])] if fixes else []

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm != "sos":
            raise ValueError(f"ARNAVI cannot express alarm {alarm!r} (only the call button: 'sos')")
        return self._packet([self._data(fix, flags=0x03)])

    def expects_reply(self, frame: bytes) -> bool:
        return bool(frame) and frame[0] in (HEADER, PACKET_START)

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame[:1] == bytes((HEADER,)):
            return reply == b"\x7b\x00\x00\x7d"
        return reply == bytes((0x7B, 0x00, frame[1], 0x7D))
