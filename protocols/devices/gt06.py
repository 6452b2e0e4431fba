"""Device side of `trackpipe.protocols.gt06`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

import struct
from datetime import UTC

from ..base import DeviceSession, Fix
from ..gt06 import (
    COORD_SCALE,
    DEVICE_ALARM_CODES,
    GPS_LBS_2,
    GPS_LBS_STATUS_1,
    LOGIN,
    STATUS,
    TRAILER,
    build_frame,
    crc_x25,
)

# ---------------------------------------------------------------- device side


class Device(DeviceSession):
    """A GT06N-like unit: login 0x01, status 0x13, location 0x22, alarm 0x16."""

    TERMINAL_INFO = 0x44  # GPS tracking on, charging
    VOLTAGE_LEVEL = 6
    GSM_SIGNAL = 4
    LANGUAGE = 0x02  # English
    MCC, MNC, LAC, CELL = 460, 0, 0x2866, 0x0F21

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        if len(device_id) != 15 or not device_id.isdigit():
            raise ValueError(f"GT06 needs a 15-digit IMEI, got {device_id!r}")
        super().__init__(device_id, transport)
        self._serial = 0

    def _frame(self, type_: int, content: bytes) -> bytes:
        self._serial = self._serial % 0xFFFF + 1
        return build_frame(type_, content, self._serial)

    def login(self) -> list[bytes]:
        return [self._frame(LOGIN, bytes.fromhex("0" + self.device_id))]

    def heartbeat(self) -> bytes:
        info = bytes([self.TERMINAL_INFO, self.VOLTAGE_LEVEL, self.GSM_SIGNAL, 0, self.LANGUAGE])
        return self._frame(STATUS, info)

    def _gps(self, fix: Fix) -> bytes:
        t = fix.time.astimezone(UTC)
        flags = round(fix.course) % 360 | 0x0400 * (fix.latitude >= 0) | 0x0800 * (fix.longitude < 0)
        flags |= 0x1000 * fix.valid
        return struct.pack(
            ">6BBIIBH",
            t.year - 2000,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            0xC0 | min(fix.satellites, 15),
            round(abs(fix.latitude) * COORD_SCALE),
            round(abs(fix.longitude) * COORD_SCALE),
            min(round(fix.speed), 255),
            flags,
        )

    def _lbs(self) -> bytes:
        return struct.pack(">HBH", self.MCC, self.MNC, self.LAC) + self.CELL.to_bytes(3, "big")

    def _location(self, fix: Fix, reupload: bool) -> bytes:
        trailer = bytes([fix.speed > 0, 0x04 if reupload else 0x00, reupload])
        return self._frame(GPS_LBS_2, self._gps(fix) + self._lbs() + trailer)

    def position(self, fix: Fix) -> bytes:
        return self._location(fix, reupload=False)

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        return [self._location(fix, reupload=True) for fix in fixes]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        if alarm not in DEVICE_ALARM_CODES:
            raise ValueError(f"GT06 cannot express alarm {alarm!r}")
        lbs = self._lbs()
        status = bytes([self.TERMINAL_INFO, self.VOLTAGE_LEVEL, self.GSM_SIGNAL, DEVICE_ALARM_CODES[alarm]])
        return self._frame(GPS_LBS_STATUS_1, self._gps(fix) + bytes([len(lbs) + 1]) + lbs + status + b"\x02")

    def expects_reply(self, frame: bytes) -> bool:
        return len(frame) > 3 and frame[3] in (LOGIN, STATUS, GPS_LBS_STATUS_1)

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        """The server must echo type and serial in a CRC-valid `78 78 05` packet."""
        if len(reply) != 10 or reply[:3] != b"\x78\x78\x05" or reply[-2:] != TRAILER:
            return False
        serial = frame[-6:-4]
        crc_ok = int.from_bytes(reply[6:8], "big") == crc_x25(reply[2:6])
        return reply[3] == frame[3] and reply[4:6] == serial and crc_ok
