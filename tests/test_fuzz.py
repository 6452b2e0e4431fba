"""Every codec fuzzed the same way: random bytes and mutated real captures into detect,
the framer (fed in random chunks), split_datagram, inspect and decode.  Only
`ProtocolError` may come out, and a framer never holds more than its cap plus one chunk.
Seeded, so a failure names an input that reproduces.  Seeds are the codec's corpus captures
plus, where it has a device side, the frames that device sends.  `TRACKPIPE_FUZZ_INPUTS`
sets the inputs per codec (default 300) for a long run."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, Context, ProtocolError

from trackpipe import conformance, simulate

from . import vectors

INPUTS = int(os.environ.get("TRACKPIPE_FUZZ_INPUTS", "300"))  # per codec: 300 keeps the file to seconds
CHUNK = 64
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _seeds(codec: Codec) -> list[bytes]:
    own = [
        conformance.payload(r)
        for r in vectors.samples()
        if registry.supported(r["protocol"]) and registry.get(r["protocol"]) is codec
    ]
    return own + _device_frames(codec) or [b"\x00" * 16]


def _device_frames(codec: Codec) -> list[bytes]:
    """What the codec's simulated device sends (login, heartbeat, position, batch, every alarm)."""
    if codec.name not in simulate.simulated():
        return []
    _, cls, alarms = simulate.load(codec.name)
    fix = simulate.track(1, 0, WHEN)
    out = []
    for transport in sorted(codec.transports):
        device = cls(simulate.device_id(cls, 1), transport)
        out += [*device.login(), device.position(fix), device.heartbeat(), *device.batch([fix, fix])]
        out += [device.alarm(fix, alarm) for alarm in alarms]
    return out


# bytes that move a text parser into its number, separator and hemisphere branches
_TEXT = b"0123456789ABCDEFabcdef,.;:#*$-+/|!()<>=NSEWAVLH \r\n\x00\xb2\xff"
_RUNS = (b",", b",,,,", b"-1.5", b"999999999", b";;", b"\r\n", b"*", b"#")


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
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
        elif op == 4:  # a run of separators or an out-of-range number
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = rng.choice(_RUNS)
        elif op == 5:  # keep the head (magic, length, type), randomize the rest, binary or text
            keep = rng.randint(1, 16)
            size = rng.randint(0, 80)
            buf[keep:] = rng.randbytes(size) if rng.random() < 0.5 else bytes(rng.choices(_TEXT, k=size))
        elif buf:  # a digit, letter or separator where a number was
            buf[rng.randrange(len(buf))] = rng.choice(_TEXT)
    return bytes(buf)


def _only_protocol_errors(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except ProtocolError:
        return None


@pytest.mark.parametrize("codec", registry.CODECS, ids=[c.name for c in registry.CODECS])
def test_truncated_seeds(codec: Codec) -> None:
    """Prefixes of every seed (bare and with a line end), e.g. a frame cut off by the connection."""
    for seed in _seeds(codec):
        for end in range(0, len(seed), max(1, len(seed) // 12)):
            for data in (seed[:end], seed[:end] + b"\r\n"):
                for transport in sorted(codec.transports):
                    codec.detect(data, transport)
                    _only_protocol_errors(codec.inspect, data, transport)
                    _only_protocol_errors(codec.decode, data, Context(transport, None, WHEN, {}))


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
            _only_protocol_errors(codec.reply_at, data, transport, WHEN)
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
