"""Device side of `trackpipe.protocols.gl200`: the text reports a Queclink unit sends (simulator, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..base import DeviceSession, Fix
from ..gl200 import HEARTBEAT, heartbeat_reply

#: GV300W protocol version (model code 27), firmware 0B01
VERSION = "270B01"
DEVICE_NAME = "gv300w"
#: report type per alarm; each is a plain location report of that type
ALARM_TYPES = {
    "sos": "SOS",
    "overspeed": "SPD",
    "powerCut": "EPF",
    "lowBattery": "BPL",
    "movement": "STT",
    "tow": "TOW",
    "idle": "IDL",
}
POWER_MV = 12_600
STATUS_IGNITION_ON = "220100"  # device status: ignition on, input 1 active, outputs off
MAX_COUNT = 0x10000


def _stamp(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m%d%H%M%S}"


class Device(DeviceSession):
    """A GV300W in text mode: no login (the IMEI is in every report), `+ACK:GTHBD` heartbeats
    answered with `+SACK:GTHBD`, FRI fixed reports, `+BUFF:GTFRI` for points stored while
    offline, alarms as location reports of the matching type (SOS, SPD, EPF, BPL ...)."""

    id_shape = ("86", 15)

    def __init__(
        self,
        device_id: str,
        transport: str = "tcp",
        *,
        battery_level: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(device_id, transport)
        if len(device_id) != 15 or not device_id.isascii() or not device_id.isdigit():
            raise ValueError("a Queclink device id is the 15-digit IMEI")
        self.battery_level = battery_level
        self._clock = clock
        self._count = 0

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return f"{HEARTBEAT},{VERSION},{self.device_id},{DEVICE_NAME},{_stamp(self._clock())},{self._next()}$".encode()

    def position(self, fix: Fix) -> bytes:
        return self._report("+RESP:GTFRI", fix)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report("+BUFF:GTFRI", fix) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_TYPES:
            raise ValueError(f"Queclink has no report type for {alarm!r}")
        return self._report(f"+RESP:GT{ALARM_TYPES[alarm]}", fix)

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith(HEARTBEAT.encode() + b",")

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if not self.expects_reply(frame):
            return True
        fields = frame.decode("ascii").removesuffix("$").split(",")
        return reply == heartbeat_reply(fields[1], fields[-1])

    def _next(self) -> str:
        self._count = (self._count + 1) % MAX_COUNT
        return f"{self._count:04X}"

    def _report(self, head: str, fix: Fix) -> bytes:
        hdop = 1 if fix.valid else 0
        block = (
            f"{hdop},{fix.speed:.1f},{round(fix.course) % 360},{fix.altitude:.1f},"
            f"{fix.longitude:.6f},{fix.latitude:.6f},{_stamp(fix.time)},0460,0000,18D8,6141,00"
        )
        tail = f"0.0,,,,{self.battery_level},{STATUS_IGNITION_ON},,,"
        return (
            f"{head},{VERSION},{self.device_id},{DEVICE_NAME},{POWER_MV},10,1,{block},{tail},"
            f"{_stamp(self._clock())},{self._next()}$"
        ).encode("ascii")
