"""Device side of `trackpipe.protocols.meitrack`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

import struct
from datetime import UTC

from ..base import DeviceSession, Fix
from ..meitrack import CCC_RECORD, EVENT_ALARMS, EVENT_TRACK, build_frame, ccc_reply, checksum, y2000_seconds

ALARM_EVENTS = {alarm: event for event, alarm in sorted(EVENT_ALARMS.items(), reverse=True)}
FLAGS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz"
CELL = "260|2|0A2D|00001F2C"
MCC, MNC, LAC, CID = 260, 2, 0x0A2D, 0x1F2C


class Device(DeviceSession):
    """An MVT380-style unit: AAA text reports (event 35 = track by interval, alarm events by
    code), buffered points as one binary CCC frame (acknowledged with the point count), an
    AAC request as heartbeat (acknowledged ``@@z27,...``).  No login: the IMEI is in every frame."""

    id_shape = ("86", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError(f"a Meitrack unit id is a 15-digit IMEI, got {device_id!r}")
        self._sequence = 0
        self.odometer = 0  # metres
        self.runtime = 0  # seconds

    def _flag(self) -> str:
        flag = FLAGS[self._sequence % len(FLAGS)]
        self._sequence += 1
        return flag

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return build_frame(self._flag(), self.device_id, b"AAC,1")

    def position(self, fix: Fix) -> bytes:
        return self._aaa(fix, EVENT_TRACK)

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_EVENTS:
            raise ValueError(f"Meitrack has no event code for {alarm!r}")
        return self._aaa(fix, ALARM_EVENTS[alarm])

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        body = b"CCC," + struct.pack("<HHI", 0x0102, CCC_RECORD, 0) + b"".join(self._ccc_point(f) for f in fixes)
        return [build_frame(self._flag(), self.device_id, body)]

    def expects_reply(self, frame: bytes) -> bool:
        command = self._command(frame)
        return command in (b"CCC", b"AAC")

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        command = self._command(frame)
        if not (reply.startswith(b"@@") and reply.endswith(b"\r\n") and reply[-5:-4] == b"*"):
            return False
        if reply[-4:-2].decode("latin-1") != checksum(reply[:-4]):
            return False
        if command == b"CCC":
            count = (len(frame) - frame.index(b",CCC,") - 5 - 8 - 5) // CCC_RECORD
            return reply == ccc_reply(chr(frame[2]), self.device_id, count)
        if command == b"AAC":
            return reply.split(b"*")[0] == f"@@z27,{self.device_id},AAC,1".encode()
        return False

    @staticmethod
    def _command(frame: bytes) -> bytes:
        parts = frame.split(b",", 3)
        return parts[2][:3] if len(parts) > 2 else b""

    def _aaa(self, fix: Fix, event: int) -> bytes:
        t = fix.time.astimezone(UTC)
        body = (
            f"AAA,{event},{fix.latitude:.6f},{fix.longitude:.6f},{t:%y%m%d%H%M%S},{'A' if fix.valid else 'V'},"
            f"{fix.satellites},20,{fix.speed:.1f},{round(fix.course) % 360},1.0,{round(fix.altitude)},"
            f"{self.odometer},{self.runtime},{CELL},0000,4.10|12.60|3.30|3.30|3.30,,,3,0000"
        )
        return build_frame(self._flag(), self.device_id, body.encode("ascii"))

    def _ccc_point(self, fix: Fix) -> bytes:
        return struct.pack(
            "<BiiIBBBHHHHIIHHHHHHHHI",
            EVENT_TRACK,
            round(fix.latitude * 1e6),
            round(fix.longitude * 1e6),
            y2000_seconds(fix.time.astimezone(UTC)),
            1 if fix.valid else 0,
            fix.satellites,
            20,
            round(fix.speed),
            round(fix.course) % 360,
            10,
            max(0, round(fix.altitude)),
            self.odometer,
            self.runtime,
            MCC,
            MNC,
            LAC,
            CID,
            0,
            0,
            410,
            1260,
            0,
        )
