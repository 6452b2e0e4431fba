"""Device side of `trackpipe.protocols.osmand`: a Traccar Client / OsmAnd phone (simulator, bench, tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from ..base import DeviceSession, Fix
from ..kit.readers import KNOTS
from ..osmand import OK

# the app's alarm parameter takes Traccar's alarm names as they are
ALARMS = ("sos", "lowBattery", "powerCut", "vibration", "overspeed", "fallDown")
HOST = "trackpipe"


class Device(DeviceSession):
    """HTTP/1.1 GET requests on one keep-alive connection, each answered `200 OK`.  Speed
    goes out in knots as the app sends it; buffered points carry `archive=true`."""

    id_shape = ("4", 8)

    def __init__(self, device_id: str, transport: str = "tcp", *, battery_level: int = 87) -> None:
        super().__init__(device_id, transport)
        if not device_id or any(c in device_id for c in "&=# /?"):
            raise ValueError("an OsmAnd device id is a plain token")
        self.battery_level = battery_level

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        now = int(datetime.now(UTC).timestamp())
        return self._request({"id": self.device_id, "timestamp": now, "batt": self.battery_level})

    def position(self, fix: Fix, **extra: str) -> bytes:
        params: dict[str, object] = {
            "id": self.device_id,
            "timestamp": int(fix.time.timestamp()),
            "lat": f"{fix.latitude:.6f}",
            "lon": f"{fix.longitude:.6f}",
            "speed": f"{fix.speed / KNOTS:.3f}",
            "bearing": f"{fix.course:.1f}",
            "altitude": f"{fix.altitude:.1f}",
            "batt": self.battery_level,
        }
        if not fix.valid:
            params["valid"] = "false"
        params.update(extra)
        return self._request(params)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self.position(fix, archive="true") for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARMS:
            raise ValueError(f"the OsmAnd alarm parameter does not carry {alarm!r}")
        return self.position(fix, alarm=alarm)

    def expects_reply(self, frame: bytes) -> bool:
        return True

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        return reply == OK

    @staticmethod
    def _request(params: dict[str, object]) -> bytes:
        return f"GET /?{urlencode(params)} HTTP/1.1\r\nHost: {HOST}\r\nConnection: keep-alive\r\n\r\n".encode()
