"""Device side of `trackpipe.protocols.ulbotech`: a T301-style unit (simulator, bench, tests)."""

from __future__ import annotations

from ..base import DeviceSession, Fix
from ..kit import framing
from ..kit.checksums import CRC16_XMODEM
from ..ulbotech import CODES, EPOCH_2000, ESCAPE, FLAG, _binary_reply, _text_reply

ALARM_BITS = {"powerOff": 0, "movement": 1, "overspeed": 2, "geofence": 4, "sos": 10}
IGNITION_ON = 1 << 9
GOOD_HDOP = 90  # 0.9


def _escape(body: bytes) -> bytes:
    return framing.escape(body, ESCAPE, CODES)


class Device(DeviceSession):
    """Binary GPS + status reports (each answered by the server), `*TS01,<imei>#` keep-alives.
    The protocol has no history flag: `batch` sends plain reports."""

    id_shape = ("35", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError("an Ulbotech device id is a 15-digit IMEI")

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return f"*TS01,{self.device_id}#".encode()

    def position(self, fix: Fix) -> bytes:
        return self._report(fix, 0)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report(fix, 0) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_BITS:
            raise ValueError(f"the Ulbotech alarm word has no bit for {alarm!r}")
        return self._report(fix, 1 << ALARM_BITS[alarm])

    def expects_reply(self, frame: bytes) -> bool:
        return True

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame[:1] == bytes((FLAG,)):
            return reply == _binary_reply(frame)
        return reply == _text_reply(frame)

    def _report(self, fix: Fix, alarm_bits: int) -> bytes:
        seconds = int((fix.time - EPOCH_2000).total_seconds())  # type: ignore[operator]
        gps = (
            round(fix.latitude * 1e6).to_bytes(4, "big", signed=True)
            + round(fix.longitude * 1e6).to_bytes(4, "big", signed=True)
            + round(fix.speed).to_bytes(2, "big")
            + round(fix.course % 360).to_bytes(2, "big")
            + (GOOD_HDOP if fix.valid else 9999).to_bytes(2, "big")
        )
        status = IGNITION_ON.to_bytes(2, "big") + alarm_bits.to_bytes(2, "big")
        body = (
            bytes((0x01, 0x01))
            + bytes.fromhex("0" + self.device_id)
            + seconds.to_bytes(4, "big")
            + bytes((0x01, len(gps)))
            + gps
            + bytes((0x03, len(status)))
            + status
        )
        body += CRC16_XMODEM(body).to_bytes(2, "big")
        return bytes((FLAG,)) + _escape(body) + bytes((FLAG,))
