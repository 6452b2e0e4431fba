"""Helpers shared by the protocol test suites (tests/protocols/test_*.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import pytest
from trackpipe.protocols.base import (
    Codec,
    Context,
    Decoded,
    Detection,
    DeviceSession,
    FramingError,
    ProtocolError,
    Record,
)


def frames(codec: Codec, data: bytes, chunk: int | None = None) -> list[bytes]:
    """The frames a fresh framer yields for `data`, fed at once or `chunk` bytes at a time."""
    framer = codec.new_framer()
    out = []
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        framer.feed(data[start : start + step])
        while (frame := framer.next_frame()) is not None:
            out.append(frame)
    return out


def frames_and_garbage(codec: Codec, data: bytes, chunk: int | None = None) -> tuple[list[bytes], list[bytes]]:
    """The frames and the discarded garbage a fresh framer reports for `data` (fed at once or
    `chunk` bytes at a time); a fatal framing error fails the test."""
    framer = codec.new_framer()
    out: list[bytes] = []
    garbage: list[bytes] = []
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        framer.feed(data[start : start + step])
        while True:
            try:
                frame = framer.next_frame()
            except FramingError as exc:
                assert not exc.fatal, exc
                garbage.append(exc.discarded)
                continue
            if frame is None:
                break
            out.append(frame)
    return out, garbage


def ctx(received_at: datetime | None = None, transport: str = "tcp", **options: str) -> Context:
    """A decode context: the edge's receive time, the transport, and the options as keywords."""
    return Context(transport, None, received_at, options)


def one_record(codec: Codec, frame: bytes, context: Context | None = None) -> Record:
    """The one record `frame` decodes to (fails unless exactly one)."""
    records = codec.decode(frame, context or Context()).records
    assert len(records) == 1, records
    return records[0]


def decode_or_protocol_error(codec: Codec, data: bytes, ctx: Context, transport: str = "tcp") -> None:
    """inspect and decode either succeed or raise a ProtocolError, nothing else."""
    for step in (lambda: codec.inspect(data, transport), lambda: codec.decode(data, ctx)):
        try:
            step()
        except ProtocolError:
            pass


def garbage_is_skipped(codec: Codec, garbage: bytes, frame: bytes) -> None:
    """Garbage before a frame is reported (not fatal, exactly the garbage) and the frame follows."""
    framer = codec.new_framer()
    framer.feed(garbage + frame)
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert (err.value.reason, err.value.discarded, err.value.fatal) == ("garbage", garbage, False)
    assert framer.next_frame() == frame


def oversized_is_fatal(codec: Codec, data: bytes) -> None:
    """A framer fed `data` gives up on the connection: fatal 'frame too large'."""
    framer = codec.new_framer()
    framer.feed(data)
    with pytest.raises(FramingError) as err:
        framer.next_frame()
    assert err.value.fatal and err.value.reason == "frame too large"


def attribute(record: Record, key: str, fields: Mapping[str, str]) -> Any:
    """A Traccar attribute of `record`: joined alarms, a Record field (`fields` maps key -> field), or raw."""
    if key == "alarm":
        return ",".join(record.alarms) or None
    if key in fields:
        return getattr(record, fields[key])
    return record.attributes.get(key)


def _same(frame: bytes) -> bytes:
    return frame


def device_round_trip(
    codec: Codec,
    device: DeviceSession,
    sent: Iterable[bytes],
    transport: str = "tcp",
    ctx: Context | None = None,
    *,
    device_id: str | None = None,
    framed: Callable[[bytes], bytes] | None = _same,
    joined: bool = False,
    chunk: int | None = None,
) -> list[Decoded]:
    """What the `device` `sent` goes through the codec as the edge and worker would.  Each frame
    is detected as the codec's own and comes out of a fresh framer (TCP, fed `chunk` bytes at a
    time) or `split_datagram` (UDP) as one frame, `framed(frame)` (any bytes if `framed` is None);
    `joined`: the frames are one TCP stream instead, detected from its start and framed into
    the frames in order.  Then `inspect` names `device_id` (when given) and replies exactly when
    the device expects a reply, with a reply `check_reply` accepts.  Returns each frame's
    decode (with `ctx`), in order, for the caller's protocol-specific asserts."""
    sent = list(sent)
    ctx = ctx or Context(transport)
    expect = framed or _same
    if joined:
        stream = b"".join(sent)
        assert codec.detect(stream, transport) is Detection.YES
        got = frames(codec, stream, chunk)
        assert len(got) == len(sent) and (framed is None or got == [expect(f) for f in sent]), got
    else:
        got = []
        for frame in sent:
            assert codec.detect(frame, transport) is Detection.YES, frame
            one = frames(codec, frame, chunk) if transport == "tcp" else list(codec.split_datagram(frame))
            assert len(one) == 1 and (framed is None or one == [expect(frame)]), (frame, one)
            got += one
    out = []
    for frame, wire in zip(sent, got, strict=True):
        info = codec.inspect(wire, transport)
        if device_id is not None:
            assert info.device_id == device_id, frame
        assert device.expects_reply(frame) == (info.reply is not None), frame
        if info.reply is not None:
            assert device.check_reply(frame, info.reply), (frame, info.reply)
        out.append(codec.decode(wire, ctx))
    return out


def at_fix(record: Record, fix: Any, abs: float = 1e-5) -> bool:
    """`record` is at `fix`'s time and place (to `abs` degrees)."""
    return (
        record.fix_time == fix.time
        and record.latitude == pytest.approx(fix.latitude, abs=abs)
        and record.longitude == pytest.approx(fix.longitude, abs=abs)
    )
