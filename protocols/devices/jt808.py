"""Device side of `trackpipe.protocols.jt808`: the frames a unit sends (simulator, bench, tests)."""

from __future__ import annotations

import struct
from datetime import timezone

from ..base import ChecksumError, DecodeError, DeviceSession, Fix
from ..jt808 import (
    ALARM_FLAG_FOR,
    BATCH_BLIND_AREA,
    DEFAULT_UTC_OFFSET,
    ID_LENGTH_2013,
    ID_LENGTH_2019,
    MSG_AUTH,
    MSG_BATCH,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_PLATFORM_RESPONSE,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    RESULT_SUCCESS,
    STATUS_FIX,
    STATUS_SOUTH,
    STATUS_WEST,
    build_frame,
    parse_frame,
    reply_for,
)

# ---------------------------------------------------------------- device side


def _bcd(number: int, digits: int) -> bytes:
    return bytes.fromhex(f"{number:0{digits}d}")


class Device(DeviceSession):
    """A JT808 terminal.  Ids of up to 12 digits use the 2013 header; longer ones
    (IMEIs) the 2019 header with its 20-digit terminal id.  Times are sent in
    UTC+8 like a factory-default unit."""

    id_shape = ("01", 12)

    MANUFACTURER = b"TRKPP"
    MODEL = b"SIM-808"
    VERSION_2019 = 1

    def __init__(self, device_id: str, transport: str = "tcp") -> None:
        super().__init__(device_id, transport)
        if not device_id.isdigit() or len(device_id) > 2 * ID_LENGTH_2019:
            raise ValueError("a JT808 terminal id is up to 20 digits")
        if len(device_id) <= 2 * ID_LENGTH_2013:
            self.version: int | None = None
            self.terminal = _bcd(int(device_id), 2 * ID_LENGTH_2013)
        else:
            self.version = self.VERSION_2019
            self.terminal = _bcd(int(device_id), 2 * ID_LENGTH_2019)
        self.serial = 0

    def _frame(self, msg_id: int, body: bytes) -> bytes:
        self.serial = (self.serial + 1) & 0xFFFF
        return build_frame(msg_id, self.terminal, self.serial, body, self.version)

    def login(self) -> list[bytes]:
        code = self.device_id.lstrip("0").encode() or b"0"
        if self.version is None:
            register = struct.pack(">HH", 0, 0) + self.MANUFACTURER + self.MODEL.ljust(20, b"\0")
            register += self.device_id.encode()[-7:].rjust(7, b"0") + b"\x00"
            auth = code
        else:
            register = struct.pack(">HH", 0, 0) + self.MANUFACTURER.ljust(11, b"\0") + self.MODEL.ljust(30, b"\0")
            register += self.device_id.encode().ljust(30, b"\0") + b"\x00"
            auth = bytes((len(code),)) + code + self.device_id.encode()[-15:].rjust(15, b"0") + b"1.0".ljust(20, b"\0")
        return [self._frame(MSG_REGISTER, register), self._frame(MSG_AUTH, auth)]

    def heartbeat(self) -> bytes:
        return self._frame(MSG_HEARTBEAT, b"")

    @staticmethod
    def location(fix: Fix, alarm: int = 0) -> bytes:
        status = (STATUS_FIX if fix.valid else 0) | (STATUS_SOUTH if fix.latitude < 0 else 0)
        status |= STATUS_WEST if fix.longitude < 0 else 0
        local = fix.time.astimezone(timezone(DEFAULT_UTC_OFFSET))
        body = struct.pack(
            ">IIIIhHH",
            alarm,
            status,
            round(abs(fix.latitude) * 1e6),
            round(abs(fix.longitude) * 1e6),
            round(fix.altitude),
            round(fix.speed * 10),
            round(fix.course) % 360,
        )
        body += bytes.fromhex(local.strftime("%y%m%d%H%M%S"))
        return body + bytes((0x31, 1, fix.satellites))

    def position(self, fix: Fix) -> bytes:
        return self._frame(MSG_LOCATION, self.location(fix))

    def batch(self, fixes: list[Fix]) -> list[bytes]:
        body = struct.pack(">HB", len(fixes), BATCH_BLIND_AREA)
        for fix in fixes:
            item = self.location(fix)
            body += struct.pack(">H", len(item)) + item
        return [self._frame(MSG_BATCH, body)]

    def alarm(self, fix: Fix, alarm: str) -> bytes:
        flag = ALARM_FLAG_FOR.get(alarm)
        if flag is None:
            raise ValueError(f"JT808 has no alarm flag for {alarm!r}")
        return self._frame(MSG_LOCATION, self.location(fix, flag))

    def expects_reply(self, frame: bytes) -> bool:
        try:
            header, _ = parse_frame(frame)
        except DecodeError:
            return False
        return reply_for(header) is not None

    def check_reply(self, frame: bytes, reply: bytes) -> bool:
        try:
            sent, _ = parse_frame(frame)
            answer, body = parse_frame(reply)
        except (DecodeError, ChecksumError):
            return False
        if answer.terminal != sent.terminal or len(body) < 3:
            return False
        (ack_serial,) = struct.unpack_from(">H", body)
        if sent.msg_id == MSG_REGISTER:
            return answer.msg_id == MSG_REGISTER_RESPONSE and ack_serial == sent.serial and body[2] == RESULT_SUCCESS
        if len(body) < 5:
            return False
        _, ack_id, result = struct.unpack_from(">HHB", body)
        return (
            answer.msg_id == MSG_PLATFORM_RESPONSE
            and ack_serial == sent.serial
            and ack_id == sent.msg_id
            and result == RESULT_SUCCESS
        )
