"""Detection through the registry over the whole corpus of real device captures.

Each protocol's own suite checks that its codec says YES to its samples (with its
documented exceptions: malformed captures, clone frames without CRC).  Here: the
registry's order never hands a sample to the wrong protocol, and no sample of the
~259 other protocols is claimed by ours."""

from __future__ import annotations

import pytest
from trackpipe.protocols import registry
from trackpipe.protocols.base import Detection

from . import vectors

OURS = {c.name for c in registry.CODECS}


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_foreign_samples_never_detected_as_ours(transport: str) -> None:
    vectors.require()
    claimed, checked = [], 0
    for record in vectors.samples():
        if record["protocol"] in OURS or record["encoding"] == "http":
            continue
        checked += 1
        verdict = registry.detect(vectors.payload(record), transport)
        if verdict.codec is not None:
            claimed.append((vectors.sample_id(record), verdict.codec.name))
    assert checked > 2000
    assert claimed == []


def test_registry_detects_each_sample_as_its_own_protocol() -> None:
    vectors.require()
    wrong, checked = [], 0
    for record in vectors.samples():
        if record["protocol"] not in OURS:
            continue
        codec = registry.get(record["protocol"])
        data = vectors.payload(record)
        for transport in sorted(codec.transports):
            if codec.detect(data, transport) is not Detection.YES:
                continue  # the protocol's own suite accounts for these
            checked += 1
            verdict = registry.detect(data, transport)
            if verdict.codec is not codec:
                wrong.append((vectors.sample_id(record), transport, verdict.codec and verdict.codec.name))
    assert checked > 300
    assert wrong == []


def test_no_sample_claimed_by_two_protocols() -> None:
    """First YES wins in the registry; still, no sample should be ambiguous."""
    vectors.require()
    for record in vectors.samples():
        if record["protocol"] not in OURS:
            continue
        data = vectors.payload(record)
        for transport in ("tcp", "udp"):
            yes = [c.name for c in registry.CODECS if c.detect(data, transport) is Detection.YES]
            assert len(yes) <= 1, (vectors.sample_id(record), transport, yes)


def test_unknown_and_undecided() -> None:
    assert registry.detect(b"GET / HTTP/1.1\r\n", "tcp").unknown
    assert registry.detect(b"*", "tcp").more  # could still become Carscop or H02
    assert registry.detect(b"*", "udp").unknown  # a datagram is complete: no waiting
    assert registry.detect(b"", "tcp").more


def test_detection_asks_few_codecs() -> None:
    """The first-byte index keeps detection from asking every codec: over the corpus, no
    connection's first byte has more than a handful of candidates."""
    vectors.require()
    asked = [len(registry.candidates(vectors.payload(r))) for r in vectors.samples() if vectors.payload(r)]
    assert max(asked) <= max(8, len(registry.CODECS) // 4)
    assert sum(asked) / len(asked) < 4
