"""Detection through the registry over the whole corpus of real device captures.

`tests/test_corpus.py` replays every record with auto-detection (own samples detected as
their protocol, other protocols' samples never claimed).  Here: no sample is claimed by
two codecs at once (priority order must never be what decides), the first-byte index
keeps the number of codecs asked small, and undecided input is told from unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trackpipe.protocols import registry
from trackpipe.protocols.base import Detection

from . import vectors


def test_no_sample_claimed_by_two_protocols() -> None:
    """First YES wins in the registry; still, no sample should be ambiguous."""
    vectors.require()
    for record in vectors.samples():
        data = vectors.payload(record)
        for transport in ("tcp", "udp"):
            yes = [
                c.name
                for c in registry.CODECS
                if transport in c.transports and c.detect(data, transport) is Detection.YES
            ]
            assert len(yes) <= 1, (vectors.sample_id(record), transport, yes)


def test_unknown_and_undecided() -> None:
    assert registry.detect(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "tcp").unknown  # a TLS hello
    assert registry.detect(b"*", "tcp").more  # could still become Carscop or H02
    assert registry.detect(b"*", "udp").unknown  # a datagram is complete: no waiting
    assert registry.detect(b"", "tcp").more


def test_detection_asks_few_codecs() -> None:
    """The first-byte index (and, on TCP, its two-byte level) keeps detection from asking
    every codec: over the corpus, no connection's first bytes have more than a handful."""
    vectors.require()
    asked = [
        len(registry.candidates(vectors.payload(r), transport="tcp")) for r in vectors.samples() if vectors.payload(r)
    ]
    assert max(asked) <= 12
    assert sum(asked) / len(asked) < 4


def test_prefixes_of_own_samples_are_never_refused() -> None:
    """A device's first TCP segment may be cut anywhere: every prefix of a sample that its
    codec detects must be MORE (or YES), never NO, or the edge would close a good device."""
    vectors.require()
    refused = []
    for record in vectors.samples():
        if not registry.supported(record["protocol"]):
            continue
        codec = registry.get(record["protocol"])
        data = vectors.payload(record)[:256]
        if "tcp" not in codec.transports or codec.detect(data, "tcp") is not Detection.YES:
            continue
        for end in range(1, len(data)):
            if codec.detect(data[:end], "tcp") is Detection.NO:
                refused.append((vectors.sample_id(record), end))
                break
    assert refused == []


def test_two_byte_level_keeps_every_detection() -> None:
    """The TCP second level never drops the codec that the first byte alone would find."""
    vectors.require()
    for record in vectors.samples():
        data = vectors.payload(record)
        if len(data) < 2:
            continue
        narrow = registry.detect(data, "tcp")
        wide = registry.detect(data, "tcp", codecs=registry.candidates(data))
        assert narrow == wide, vectors.sample_id(record)


def test_first_frames_of_simulated_devices_are_detected_at_any_time() -> None:
    """The first frame a device sends on connecting carries its clock and id: whatever their
    bytes (escapes, checksum bytes that look like separators), detection must name its protocol.
    Found this way: ulbotech frames whose time held an escaped F7, atrack CRCs starting with `,`."""
    from trackpipe.simulate import device_id, load, simulated, track

    base = datetime(2026, 1, 1, tzinfo=UTC)
    missed = []
    for name in simulated():
        codec, cls, _ = load(name)
        for i in range(300):
            when = base + timedelta(seconds=i * 3_617 + i % 7)
            for transport in sorted(codec.transports):
                device = cls(device_id(cls, i), transport)
                first = (device.login() or [device.position(track(i, i, when))])[0]
                if registry.detect(first, transport).codec is not codec:
                    missed.append((name, transport, first.hex()))
    assert missed[:5] == []
