"""Helpers shared by the protocol test suites (tests/protocols/test_*.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from trackpipe.protocols.base import Codec, Context, Detection, FramingError, ProtocolError, Record

from tests import vectors


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


def decode_or_protocol_error(codec: Codec, data: bytes, ctx: Context, transport: str = "tcp") -> None:
    """inspect and decode either succeed or raise a ProtocolError, nothing else."""
    for step in (lambda: codec.inspect(data, transport), lambda: codec.decode(data, ctx)):
        try:
            step()
        except ProtocolError:
            pass


def foreign_verdicts(codec: Codec, transports: Iterable[str]) -> Iterator[tuple[str, bytes, str, Detection]]:
    """(sample id, payload, transport, verdict) of `codec.detect` for every corpus sample of another protocol."""
    transports = tuple(transports)
    for record in vectors.samples():
        if record["protocol"] == codec.name:
            continue
        data = vectors.payload(record)
        for transport in transports:
            yield vectors.sample_id(record), data, transport, codec.detect(data, transport)


def foreign_claims(codec: Codec, transports: Iterable[str]) -> list[tuple[str, str, Detection]]:
    """(sample id, transport, verdict) of the samples of other protocols that `codec` detects as its own."""
    return [
        (sample, transport, verdict)
        for sample, _, transport, verdict in foreign_verdicts(codec, transports)
        if verdict is Detection.YES
    ]


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
