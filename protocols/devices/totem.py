"""Device side of `trackpipe.protocols.totem`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.coords import to_ddmm
from ..totem import ALARMS_4, ack_4, xor_hex

ALARM_TYPES = {alarm: code for code, alarm in sorted(ALARMS_4.items(), reverse=True)}
POSITION_TYPE = 0xAA
HEARTBEAT_TYPE = 0xBB
VALID_BIT = 1 << 14  # status bit 32-18: fix valid (frames without a second temperature)
IGNITION_BIT = 1 << 30
LAC, CID = 0x27BA, 0x0E57


class Device(DeviceSession):
    """An AT07-style unit speaking the 4-digit-length format (``$$0LLL``): ``AA`` reports,
    alarm reports typed by the alarm code, ``BB`` keep-alives; every frame is acknowledged
    ``$$0014AA<serial>`` + XOR.  The format has no buffered-point marker, so `batch` sends
    ordinary ``AA`` reports."""

    id_shape = ("86", 15)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError(f"a Totem unit id is a 15-digit IMEI, got {device_id!r}")
        self._serial = 0
        self.odometer_km = 0

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return self._frame(HEARTBEAT_TYPE, self.device_id)

    def position(self, fix: Fix) -> bytes:
        return self._report(POSITION_TYPE, fix)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report(POSITION_TYPE, fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_TYPES:
            raise ValueError(f"Totem has no report type for {alarm!r}")
        return self._report(ALARM_TYPES[alarm], fix)

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith(b"$$0")

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        text = frame.decode("latin-1")
        return reply == ack_4(text[-6:-2])

    def _report(self, kind: int, fix: Fix) -> bytes:
        t = fix.time.astimezone(UTC)
        status = IGNITION_BIT | (VALID_BIT if fix.valid else 0)
        self._serial = self._serial % 9999 + 1
        body = (
            f"{status:08X}{t:%y%m%d%H%M%S}4112"  # battery 4.1 V, power 12 V
            f"0000"  # adc1
            f"0250"  # temp1
            f"{LAC:04X}{CID:04X}{fix.satellites:02d}20{round(fix.course) % 360:03d}{min(999, round(fix.speed)):03d}"
            f"01.0{self.odometer_km:07d}"
            f"{to_ddmm(fix.latitude, 2)}{'S' if fix.latitude < 0 else 'N'}"
            f"{to_ddmm(fix.longitude, 3)}{'W' if fix.longitude < 0 else 'E'}"
            f"{self._serial:04d}"
        )
        return self._frame(kind, f"{self.device_id}|{body}")

    @staticmethod
    def _frame(kind: int, content: str) -> bytes:
        length = 2 + 4 + 2 + len(content) + 2
        head = f"$${length:04d}{kind:02X}{content}".encode("ascii")
        return head + xor_hex(head).encode()
