"""Device side of `trackpipe.protocols.wialon`: a Wialon IPS 2.0 unit (simulator, bench, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..kit.checksums import CRC16_ARC
from ..kit.coords import to_ddmm

# Wialon IPS has no alarm field: the alarm button is the `SOS` parameter (the decoder maps it).
ALARM_PARAMS = {"sos": "SOS:1:1"}
PASSWORD = "NA"
VERSION = "2.0"


def _crc(signed: str) -> str:
    return f"{CRC16_ARC(signed.encode('utf-8')):04X}"


class Device(DeviceSession):
    """A v2.0 unit: `#L#2.0;imei;password;crc` once per TCP connection, `#D#` reports with a
    CRC, `#B#` for buffered points, `#P#` pings.  Over UDP every packet carries `imei#`."""

    id_shape = ("86", 15)

    def login(self) -> list[bytes]:
        if self.transport == "udp":
            return []
        signed = f"{VERSION};{self.device_id};{PASSWORD};"
        return [f"#L#{signed}{_crc(signed)}\r\n".encode()]

    def heartbeat(self) -> bytes:
        return self._packet("P", "")

    def position(self, fix: Fix, params: str = "NA") -> bytes:
        body = self._body(fix, params) + ";"
        return self._packet("D", body + _crc(body))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        body = "|".join(self._body(fix, "NA") for fix in fixes) + "|"
        return [self._packet("B", body + _crc(body))]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALARM_PARAMS:
            raise ValueError(f"no Wialon IPS parameter for {alarm!r}")
        return self.position(fix, ALARM_PARAMS[alarm])

    def expects_reply(self, frame: bytes) -> bool:
        return b"#" in frame

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        kind = frame.split(b"#")[1]
        if kind == b"B":
            body = frame.split(b"#", 2)[2].rstrip(b"\r\n")
            return reply == b"#AB#%d\r\n" % body.count(b"|")
        if kind == b"P":
            return reply == b"#AP#\r\n"
        return reply == b"#A" + kind + b"#1\r\n"

    def _packet(self, kind: str, body: str) -> bytes:
        prefix = f"{VERSION};{self.device_id}" if self.transport == "udp" else ""
        return f"{prefix}#{kind}#{body}\r\n".encode()

    @staticmethod
    def _body(fix: Fix, params: str) -> str:
        t = fix.time.astimezone(UTC)
        return (
            f"{t:%d%m%y};{t:%H%M%S};"
            f"{to_ddmm(fix.latitude, 2)};{'S' if fix.latitude < 0 else 'N'};"
            f"{to_ddmm(fix.longitude, 3)};{'W' if fix.longitude < 0 else 'E'};"
            f"{fix.speed:.1f};{fix.course:.0f};{fix.altitude:.1f};{fix.satellites if fix.valid else 0};"
            f"NA;NA;NA;NA;NA;{params}"
        )
