"""Every codec fuzzed the same way: random bytes and mutated real captures into detect,
the framer (fed in random chunks), split_datagram, inspect and decode.  Only
`ProtocolError` may come out, and a framer never holds more than its cap plus one chunk.
Seeded, so a failure names an input that reproduces.  Seeds are the codec's corpus captures
plus, where it has a device side, the frames that device sends.  `TRACKPIPE_FUZZ_INPUTS`
sets the inputs per codec (default 300) for a long run.

Then what decode yields goes through the worker's next steps (`tests/fuzz_rows.py`: process,
Avro, the INSERT row builder), from the frames and from real records given odd values."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

import pytest
from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, Context, Decoded, ProtocolError
from trackpipe.streams import quality

from trackpipe import conformance, simulate

from . import fuzz_rows, vectors

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


# -- what decode yields, through the worker's next steps (tests/fuzz_rows.py) -------------------

WORKER_INPUTS = max(1, INPUTS // 30)  # per codec, after its seeds: the worker path is ~50x slower than decode


@pytest.mark.parametrize("codec", registry.CODECS, ids=[c.name for c in registry.CODECS])
def test_fuzz_worker_steps(codec: Codec) -> None:
    """Every seed as captured, then random and mutated frames, through process, the Avro
    encode (same bytes as fastavro) and the INSERT row builder: nothing may stop the worker."""
    rng = random.Random(f"trackpipe-fuzz-worker-{codec.name}")
    steps = fuzz_rows.WorkerSteps()
    for tag, raw in fuzz_rows.frames(codec, _seeds(codec), _mutate, rng, WORKER_INPUTS):
        steps.feed(raw, tag)
    steps.flush()
    assert steps.rows >= steps.inputs  # every frame yields a status row or a dead letter at least
    assert not steps.findings, fuzz_rows.report(steps.findings)
    assert steps.refused == 0, f"{steps.refused} rows the store would refuse (e.g. satellites beyond UInt16)"


def _odd_records(codec: Codec, inputs: int) -> list[tuple[str, Decoded, list[str]]]:
    """(tag, decoded frame with odd values, what was changed), from the codec's seeds."""
    rng = random.Random(f"trackpipe-fuzz-values-{codec.name}")
    decoded = fuzz_rows.decoded_seeds(codec, _seeds(codec))
    if not decoded:
        return []
    return [(f"{codec.name} #{n}", *fuzz_rows.mutate_decoded(rng, rng.choice(decoded))) for n in range(inputs)]


VALUE_INPUTS = max(1, INPUTS // 60)


def test_record_problem_covers_the_worker() -> None:
    """`quality.record_problem` is the guard for decoder values: every mutated record it
    passes (in a frame whose device id is text) goes through the worker without a finding,
    and it passes every record real decoders make of the seeds."""
    steps = fuzz_rows.WorkerSteps()
    refused = passed = 0
    with fuzz_rows.replaying() as replay:
        for codec in registry.CODECS:
            for decoded in fuzz_rows.decoded_seeds(codec, _seeds(codec)):
                assert [quality.record_problem(r) for r in decoded.records] == [None] * len(decoded.records)
            for tag, decoded, notes in _odd_records(codec, VALUE_INPUTS):
                if any(quality.record_problem(r) for r in decoded.records) or not (
                    decoded.device_id is None or quality.is_text(decoded.device_id)
                ):
                    refused += 1
                    continue
                passed += 1
                replay.decoded = decoded
                steps.feed(fuzz_rows.raw_record(fuzz_rows.REPLAY, b"replayed", "tcp"), f"{tag}: {notes}")
    steps.flush()
    assert refused and passed  # the mutations hit both sides of the guard
    assert not steps.findings, fuzz_rows.report(steps.findings)


def test_odd_record_values_through_the_worker() -> None:
    """Real decoded records with odd values (NaN/inf, huge ints, naive times, lone surrogates,
    very long strings, attributes of other types) through process, Avro and the row builder."""
    steps = fuzz_rows.WorkerSteps()
    with fuzz_rows.replaying() as replay:
        for codec in registry.CODECS:
            for tag, decoded, notes in _odd_records(codec, VALUE_INPUTS):
                replay.decoded = decoded
                steps.feed(fuzz_rows.raw_record(fuzz_rows.REPLAY, b"replayed", "tcp"), f"{tag}: {notes}")
    steps.flush()
    assert not steps.findings, fuzz_rows.report(steps.findings)
