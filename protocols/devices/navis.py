"""Device side of `trackpipe.protocols.navis`: a Navtelecom Smart unit speaking NTCB, then FLEX 1.0."""

from __future__ import annotations

import struct
from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.checksums import CRC8_EGTS, xor8
from ..navis import CATALOGUE, FIELD_SIZES, KEEPALIVE, PREFIX

FIELDS = CATALOGUE[0]  # the FLEX 1.0 set (69 fields, 73 bytes) the unit negotiates
BITFIELD = bytes.fromhex("ffff300a08080f8388")
SERVER_ID, DEVICE_NTCB_ID = 1, 0
FLEX_VERSION, STRUCT_VERSION = 0x0A, 0x0A
EVENT_PERIODIC, EVENT_ALARM = 0x0003, 0x0017
POWER_MV, BATTERY_MV = 12600, 4100
# "no data" markers of the OBD fields (decoded as absent)
EMPTY = {52: b"\xff\x7f", 54: b"\xff\xff", 55: b"\x80", 62: b"\xff", 63: b"\xff", 64: b"\xff"}


def ntcb(data: bytes, receiver: int = SERVER_ID, sender: int = DEVICE_NTCB_ID) -> bytes:
    header = PREFIX + struct.pack("<IIH", receiver, sender, len(data)) + bytes((xor8(data),))
    return header + bytes((xor8(header),)) + data


def _crc(data: bytes) -> bytes:
    return data + bytes((CRC8_EGTS(data),))


class Device(DeviceSession):
    """Handshake ``*>S:<IMEI>`` and a ``*>FLEX`` negotiation, then ``~T`` points and ``~A``
    batches; ``7F`` keep-alives.  ``sos`` is the unit's alarm mode (armed-status bit 1), which
    decodes as Traccar's ``general`` alarm: Navtelecom has no finer alarm vocabulary."""

    id_shape = ("86", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError(f"Navtelecom needs a 15-digit IMEI, got {device_id!r}")
        super().__init__(device_id, transport)
        self._index = 0

    def login(self) -> list[bytes]:
        negotiation = b"*>FLEX\xb0" + bytes((FLEX_VERSION, STRUCT_VERSION, 69)) + BITFIELD
        return [ntcb(b"*>S:" + self.device_id.encode()), ntcb(negotiation)]

    def heartbeat(self) -> bytes:
        return bytes((KEEPALIVE,))

    def _record(self, fix: Fix, alarm: bool = False) -> tuple[int, bytes]:
        self._index += 1
        t = int(fix.time.astimezone(UTC).timestamp())
        values = {
            0: struct.pack("<I", self._index),
            1: struct.pack("<H", EVENT_ALARM if alarm else EVENT_PERIODIC),
            2: struct.pack("<I", t),
            3: bytes((0x03 if alarm else 0x01,)),
            7: bytes((min(fix.satellites, 63) << 2 | 2 * fix.valid,)),
            8: struct.pack("<I", t),
            9: struct.pack("<i", round(fix.latitude * 600000)),
            10: struct.pack("<i", round(fix.longitude * 600000)),
            11: struct.pack("<i", round(fix.altitude * 10)),
            12: struct.pack("<f", fix.speed),
            13: struct.pack("<H", round(fix.course) % 360),
            18: struct.pack("<H", POWER_MV),
            19: struct.pack("<H", BATTERY_MV),
            **EMPTY,
        }
        body = b"".join(values.get(i, bytes(FIELD_SIZES[i])) for i in FIELDS.fields)
        return self._index, body

    def position(self, fix: Fix) -> bytes:
        index, body = self._record(fix)
        return _crc(b"~T" + struct.pack("<I", index) + body)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        if not fixes:
            return []
        return [_crc(b"~A" + bytes((len(fixes),)) + b"".join(self._record(fix)[1] for fix in fixes))]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm != "sos":
            raise ValueError(f"Navtelecom units here raise only the alarm mode ('sos'), not {alarm!r}")
        index, body = self._record(fix, alarm=True)
        return _crc(b"~T" + struct.pack("<I", index) + body)

    def expects_reply(self, frame: bytes) -> bool:
        return frame[:1] in (b"@", b"~")

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame[:1] == b"@":
            data = frame[16:]
            if data.startswith(b"*>S"):
                answer = b"*<S"
            elif data.startswith(b"*>FLEX"):
                answer = b"*<FLEX\xb0" + data[7:9]
            else:
                return False
            return reply == ntcb(answer, receiver=DEVICE_NTCB_ID, sender=SERVER_ID)
        if frame[1:2] == b"A":
            return reply == _crc(frame[:3])
        return reply == _crc(frame[:6])
