"""Device side of `trackpipe.protocols.its`: an AIS-140 unit (simulator, bench, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix

VENDOR = "TRKPIPE"
FIRMWARE = "1.0AIS"
VEHICLE = "KA01AB1234"
# AIS-140 status codes (Traccar's reading) for the alarms a unit can report
ALARM_STATUS = {
    "sos": "EA",
    "lowBattery": "BL",
    "hardBraking": "HB",
    "hardAcceleration": "HA",
    "overspeed": "OS",
    "tampering": "TA",
    "powerCut": "BD",
}


class Device(DeviceSession):
    """A unit that logs in with `$,01,` (answered `$,1,*`), sends `$,HBT,` heartbeats
    (answered `$HBT*`), live `$NRM` packets (L), history ones (H) and alarms as `$NRM`
    packets whose status names the alarm (EA = emergency, with the emergency flag set)."""

    id_shape = ("86", 15)

    def login(self) -> list[bytes]:
        return [f"$,01,{VENDOR},{FIRMWARE},{self.device_id},{VEHICLE},*".encode()]

    def heartbeat(self) -> bytes:
        return f"$,HBT,{VENDOR},{FIRMWARE},{self.device_id},*".encode()

    def position(self, fix: Fix) -> bytes:
        return self._packet(fix, "NR", "L")

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._packet(fix, "NR", "H") for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_STATUS:
            raise ValueError(f"no AIS-140 status code for {alarm!r}")
        return self._packet(fix, ALARM_STATUS[alarm], "L")

    def expects_reply(self, frame: bytes) -> bool:
        return frame.startswith((b"$,01,", b"$,HBT,"))

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        if frame.startswith(b"$,01,"):
            return reply == b"$,1,*"
        if frame.startswith(b"$,HBT,"):
            return reply == b"$HBT*"
        return True

    def _packet(self, fix: Fix, status: str, history: str) -> bytes:
        t = fix.time.astimezone(UTC)
        emergency = 1 if status == "EA" else 0
        body = (
            f"$NRM,{VENDOR},{FIRMWARE},{status},01,{history},{self.device_id},{VEHICLE},{1 if fix.valid else 0},"
            f"{t:%d%m%Y},{t:%H%M%S},{abs(fix.latitude):.6f},{'S' if fix.latitude < 0 else 'N'},"
            f"{abs(fix.longitude):.6f},{'W' if fix.longitude < 0 else 'E'},"
            f"{fix.speed:.1f},{fix.course:.2f},{fix.satellites},{fix.altitude:.1f},1.10,0.60,AIRTEL,"
            f"1,1,12.8,4.1,{emergency},C,20,404,45,61B4,9AD9,0100,00,000042,0.0,0.0,"
        )
        return (body + "*").encode()
