"""Device side of `trackpipe.protocols.atrack`: an AK11-like unit sending binary ``@P`` reports."""

from __future__ import annotations

import struct
from datetime import UTC

from ..atrack import KEEPALIVE
from ..base import DeviceSession, Fix
from ..kit.checksums import CRC16_ARC

# The report id the unit puts on an SOS (panic input) report.  ATrack report ids are set up
# per installation; the server turns them into alarms with option ``alarmMap`` (``3=sos``).
REPORT_IDS = {"sos": 3}
REPORT_TIMED = 2


class Device(DeviceSession):
    """Keep-alive on connect and as heartbeat; every frame is acknowledged with ``FE 02`` +
    unit id + sequence.  Batches are the same records several to a frame (no history flag)."""

    id_shape = ("35", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        if not device_id.isdigit() or len(device_id) > 16:
            raise ValueError(f"an ATrack unit id is the IMEI (digits), got {device_id!r}")
        super().__init__(device_id, transport)
        self._unit = int(device_id)
        self._seq = 0

    def _next(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _keepalive(self) -> bytes:
        return KEEPALIVE + self._unit.to_bytes(8, "big") + self._next().to_bytes(2, "big")

    def login(self) -> list[bytes]:
        return [self._keepalive()]

    def heartbeat(self) -> bytes:
        return self._keepalive()

    @staticmethod
    def _record(fix: Fix, report: int) -> bytes:
        t = int(fix.time.astimezone(UTC).timestamp())
        head = struct.pack(">IIIiiHB", t, t, t, round(fix.longitude * 1e6), round(fix.latitude * 1e6), 0, report)
        head = head[:20] + struct.pack(">H", round(fix.course) % 360) + head[22:]
        body = struct.pack(">IHBHBH", 0, 9, 0, min(round(fix.speed), 0xFFFF), 0, 0)
        return head + body + b"\x00" + struct.pack(">hh", 2000, 2000) + b"\x00"

    def _report(self, records: list[bytes]) -> bytes:
        body = self._next().to_bytes(2, "big") + self._unit.to_bytes(8, "big") + b"".join(records)
        covered = len(body).to_bytes(2, "big") + body
        return b"@P" + CRC16_ARC(covered).to_bytes(2, "big") + covered

    def position(self, fix: Fix) -> bytes:
        return self._report([self._record(fix, REPORT_TIMED)])

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report([self._record(fix, REPORT_TIMED) for fix in fixes])] if fixes else []

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in REPORT_IDS:
            raise ValueError(f"ATrack units here report only {sorted(REPORT_IDS)}, not {alarm!r}")
        return self._report([self._record(fix, REPORT_IDS[alarm])])

    def expects_reply(self, frame: bytes) -> bool:
        return True

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame[:2] == KEEPALIVE:
            return reply == frame[:12]
        return reply == KEEPALIVE + frame[8:16] + frame[6:8]
