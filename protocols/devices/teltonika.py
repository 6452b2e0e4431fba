"""Device side of `trackpipe.protocols.teltonika`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

from collections.abc import Callable

from ..base import DeviceSession, Fix
from ..teltonika import (
    CODEC_8,
    CODEC_8E,
    COORDINATE_SCALE,
    CRC_FIELD_SIZE,
    HEADER_SIZE,
    IO_GREEN_DRIVING,
    IO_IGNITION,
    IO_MOVEMENT,
    IO_OVERSPEED,
    LOGIN_ACCEPT,
    PING_FRAME,
    PREAMBLE,
    PRIORITY_PANIC,
    RECORD_HEAD,
    UDP_HEADER,
    UDP_PACKET_TYPE,
    _udp_ack,
    _udp_parts,
    crc16,
)

# --- device side ------------------------------------------------------------------------
BATCH_RECORDS = 32  # records per simulated packet (1-byte count, 1280-byte packets on FMB)
# alarm -> (event IO id, value); all these FMB IOs are 1 byte wide
IO_ONE_BYTE_EVENTS: dict[str, tuple[int, Callable[[Fix], int]]] = {
    "powerCut": (252, lambda fix: 1),
    "overspeed": (IO_OVERSPEED, lambda fix: min(255, max(1, round(fix.speed)))),
    "tow": (246, lambda fix: 1),
    "accident": (247, lambda fix: 1),
    "jamming": (249, lambda fix: 1),
    "idle": (251, lambda fix: 1),
    "general": (236, lambda fix: 1),
    "hardAcceleration": (IO_GREEN_DRIVING, lambda fix: 1),
    "hardBraking": (IO_GREEN_DRIVING, lambda fix: 2),
    "hardCornering": (IO_GREEN_DRIVING, lambda fix: 3),
    "geofenceEnter": (155, lambda fix: 1),
    "geofenceExit": (155, lambda fix: 0),
}
#: alarms `Device.alarm` can express; FMB units have no standard IO for
#: `vibration` or `lowBattery`, so those raise ValueError
DEVICE_ALARMS = frozenset({"sos", *IO_ONE_BYTE_EVENTS})


class Device(DeviceSession):
    """A Teltonika unit: Codec 8 (default) or 8 Extended, over TCP or UDP."""

    def __init__(self, device_id: str, transport: str = "tcp", codec: int = CODEC_8) -> None:
        super().__init__(device_id, transport)
        if codec not in (CODEC_8, CODEC_8E):
            raise ValueError(f"simulated codec must be 0x08 or 0x8e, not 0x{codec:02x}")
        self.codec = codec
        self._packet_id = 0

    def login(self) -> list[bytes]:
        if self.transport == "udp":
            return []  # the IMEI travels in every datagram
        imei = self.device_id.encode("ascii")
        return [len(imei).to_bytes(2, "big") + imei]

    def heartbeat(self) -> bytes:
        # TCP has the FF ping; UDP has none, so an empty AVL packet keeps the NAT open
        return PING_FRAME if self.transport == "tcp" else self._packet([])

    def position(self, fix: Fix) -> bytes:
        return self._packet([self._record(fix, 0, 0, {IO_IGNITION: 1, IO_MOVEMENT: int(fix.speed > 0)})])

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        # no archive flag exists: the records decode with archive=False
        return [
            self._packet([self._record(fix, 0, 0, {IO_IGNITION: 1}) for fix in fixes[i : i + BATCH_RECORDS]])
            for i in range(0, len(fixes), BATCH_RECORDS)
        ]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm == "sos":
            return self._packet([self._record(fix, PRIORITY_PANIC, 0, {})])
        if alarm not in IO_ONE_BYTE_EVENTS:
            raise ValueError(f"teltonika cannot express alarm {alarm!r} (supported: {sorted(DEVICE_ALARMS)})")
        io_id, value = IO_ONE_BYTE_EVENTS[alarm]
        return self._packet([self._record(fix, 1, io_id, {io_id: value(fix)})])

    def expects_reply(self, frame: bytes) -> bool:
        return frame != PING_FRAME

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame == PING_FRAME:
            return not reply
        if self.transport == "udp":
            packet_id, avl_id, _, body = _udp_parts(frame)
            return reply == _udp_ack(packet_id, avl_id, body[1])
        if frame[:2] != b"\x00\x00":
            return reply == LOGIN_ACCEPT
        return reply == frame[HEADER_SIZE + 1].to_bytes(4, "big")

    # -- encoding --------------------------------------------------------------------
    def _record(self, fix: Fix, priority: int, event_id: int, io: dict[int, int]) -> bytes:
        satellites = max(fix.satellites, 1) if fix.valid else 0
        head = RECORD_HEAD.pack(
            round(fix.time.timestamp() * 1000),
            priority,
            round(fix.longitude / COORDINATE_SCALE),
            round(fix.latitude / COORDINATE_SCALE),
            round(fix.altitude),
            round(fix.course) % 360,
            satellites,
            round(fix.speed),
        )
        wide = self.codec == CODEC_8E
        size = 2 if wide else 1
        ids = b"".join(io_id.to_bytes(size, "big") + value.to_bytes(1, "big") for io_id, value in io.items())
        empty_groups = b"\x00" * size * (4 if wide else 3)  # 2-, 4-, 8-byte (and variable) groups
        counts = event_id.to_bytes(size, "big") + len(io).to_bytes(size, "big") + len(io).to_bytes(size, "big")
        return head + counts + ids + empty_groups

    def _packet(self, records: list[bytes]) -> bytes:
        count = len(records).to_bytes(1, "big")
        body = bytes([self.codec]) + count + b"".join(records) + count
        if self.transport == "udp":
            imei = self.device_id.encode("ascii")
            self._packet_id = (self._packet_id + 1) & 0xFFFF
            length = UDP_HEADER.size - 2 + len(imei) + len(body)  # the length field excludes itself
            header = UDP_HEADER.pack(length, self._packet_id, UDP_PACKET_TYPE, self._packet_id & 0xFF, len(imei))
            return header + imei + body
        return PREAMBLE + len(body).to_bytes(4, "big") + body + crc16(body).to_bytes(CRC_FIELD_SIZE, "big")
