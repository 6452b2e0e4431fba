"""Device side of `trackpipe.protocols.suntech`: the reports a universal-firmware unit sends
(ST4300/ST8300 family; simulator, tests)."""

from __future__ import annotations

from datetime import UTC

from ..base import DeviceSession, Fix
from ..suntech import ALERTS, MAX_ID_DIGITS, MIN_ID_DIGITS

#: model, firmware, cell id (hex), mcc, mnc, lac (hex), rssi
UNIT = ("95", "1.0.11", "02F2F402", "334", "20", "0F1D", "45")
#: every field from the model (bit 1) to the alert data (bit 21)
FULL_MASK = "3FFFFF"
ALERT_CODES = {alarm: code for code, alarm in sorted(ALERTS.items(), reverse=True)}


class Device(DeviceSession):
    """A universal-protocol unit: `STT` reports (the live flag is `0` for buffered points),
    `ALV` keep-alives, `ALT` alerts.  Suntech servers never reply."""

    id_shape = ("9", MAX_ID_DIGITS)

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if not device_id.isascii() or not device_id.isdigit() or not MIN_ID_DIGITS <= len(device_id) <= MAX_ID_DIGITS:
            raise ValueError(f"a Suntech device id is {MIN_ID_DIGITS} to {MAX_ID_DIGITS} digits")
        self._index = 0

    def login(self) -> list[bytes]:
        return []

    def heartbeat(self) -> bytes:
        return f"ALV;{self.device_id}\r".encode("ascii")

    def position(self, fix: Fix) -> bytes:
        return self._report("STT", fix, live=True, tail=self._next_index())

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._report("STT", fix, live=False, tail=self._next_index()) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in ALERT_CODES:
            raise ValueError(f"Suntech has no alert id for {alarm!r}")
        return self._report("ALT", fix, live=True, tail=f"{ALERT_CODES[alarm]};0;")

    def _next_index(self) -> str:
        self._index = (self._index + 1) % 10000
        return f"1;0;{self._index}"  # mode, reason, message index

    def _report(self, kind: str, fix: Fix, *, live: bool, tail: str) -> bytes:
        t = fix.time.astimezone(UTC)
        model, firmware, cell, mcc, mnc, lac, rssi = UNIT
        return (
            f"{kind};{self.device_id};{FULL_MASK};{model};{firmware};{1 if live else 0};{t:%Y%m%d};{t:%H:%M:%S};"
            f"{cell};{mcc};{mnc};{lac};{rssi};{fix.latitude:+.6f};{fix.longitude:+.6f};{fix.speed:.2f};"
            f"{fix.course % 360:.2f};{fix.satellites};{1 if fix.valid else 0};00000000;00000000;{tail}\r"
        ).encode("ascii")
