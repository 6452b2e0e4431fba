"""Every codec fuzzed the same way: random bytes and mutated real captures into detect,
the framer (fed in random chunks), split_datagram, inspect and decode.  Only
`ProtocolError` may come out, and a framer never holds more than its cap plus one chunk.
Seeded, so a failure names an input that reproduces."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, Context, ProtocolError

from trackpipe import conformance

from . import vectors

INPUTS = 300  # per codec: keeps the whole file to a few seconds
CHUNK = 64
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _seeds(codec: Codec) -> list[bytes]:
    own = [
        conformance.payload(r)
        for r in vectors.samples()
        if registry.supported(r["protocol"]) and registry.get(r["protocol"]) is codec
    ]
    return own or [b"\x00" * 16]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and buf:  # flip a byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1 and buf:  # truncate
            del buf[rng.randrange(len(buf)) :]
        elif op == 2:  # insert random bytes
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and buf:  # duplicate a slice
            a = rng.randrange(len(buf))
            buf[a:a] = buf[a : a + rng.randint(1, 32)]
        else:  # a digit or separator where a number was
            if buf:
                buf[rng.randrange(len(buf))] = rng.choice(b"0123456789,.;#*$-")
    return bytes(buf)


def _only_protocol_errors(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except ProtocolError:
        return None


@pytest.mark.parametrize("codec", registry.CODECS, ids=[c.name for c in registry.CODECS])
def test_fuzz_codec(codec: Codec) -> None:
    rng = random.Random(f"trackpipe-fuzz-{codec.name}")
    seeds = _seeds(codec)
    for n in range(INPUTS):
        data = rng.randbytes(rng.randint(0, 200)) if n % 5 == 0 else _mutate(rng, rng.choice(seeds))
        for transport in sorted(codec.transports):
            codec.detect(data, transport)
            ctx = Context(transport, "123456789012345", WHEN, {})
            _only_protocol_errors(codec.inspect, data, transport)
            _only_protocol_errors(codec.decode, data, ctx)
        if "udp" in codec.transports:
            _only_protocol_errors(codec.split_datagram, data)
        if "tcp" in codec.transports:
            framer = codec.new_framer()
            stream = data * rng.randint(1, 3)
            for i in range(0, len(stream), CHUNK):
                framer.feed(stream[i : i + CHUNK])
                while True:
                    try:
                        frame = framer.next_frame()
                    except ProtocolError as exc:
                        if getattr(exc, "fatal", False):
                            break
                        continue
                    if frame is None:
                        break
                    _only_protocol_errors(codec.inspect, frame, "tcp")
                    _only_protocol_errors(codec.decode, frame, Context("tcp", None, WHEN, {}))
                assert framer.buffered <= codec.max_frame + CHUNK, f"{codec.name} framer holds {framer.buffered} bytes"
