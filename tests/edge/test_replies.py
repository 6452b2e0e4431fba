"""Replies that depend on the server's clock: the codec builds them, the edge supplies the time."""

from __future__ import annotations

from datetime import UTC, datetime

from trackpipe.edge.server import Edge
from trackpipe.protocols import gt06
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from trackpipe.config import Settings

NOW = datetime(2026, 11, 24, 13, 14, 15, tzinfo=UTC)


def test_gt06_time_request_gets_the_edge_clock() -> None:
    edge = Edge(Settings(), publisher=None, clock=lambda: NOW)  # type: ignore[arg-type]
    request = gt06.build_frame(gt06.TIME_REQUEST, b"", 7)
    info = gt06.CODEC.inspect(request, "tcp")
    assert info.clock_reply and info.reply is None
    reply = edge.reply(gt06.CODEC, request, info, "tcp")
    assert reply == gt06.time_reply(NOW)
    # 78 78 0B 8A yy mm dd hh mm ss ...: the time is in the reply, in UTC
    assert reply is not None and reply[4:10] == bytes([26, 11, 24, 13, 14, 15])


def test_ordinary_replies_do_not_read_the_clock() -> None:
    def clock() -> datetime:
        raise AssertionError("the clock must not be read for a plain ack")

    edge = Edge(Settings(), publisher=None, clock=clock)  # type: ignore[arg-type]
    login = Gt06Device("359000000000001", "tcp").login()[0]
    info = gt06.CODEC.inspect(login, "tcp")
    assert info.reply is not None and not info.clock_reply
    assert edge.reply(gt06.CODEC, login, info, "tcp") == info.reply
