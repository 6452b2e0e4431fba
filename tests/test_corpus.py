"""One corpus harness for every supported protocol: each record of the shared corpus of
real device captures is replayed as the edge and worker would (`trackpipe.conformance`),
and must come out right -- unless its protocol's known-deviation file
(`protocols/known/<name>.toml`) lists it with a reason, in which case it is a strict
xfail (a deviation that starts passing must be taken off the list)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trackpipe.protocols import registry

from trackpipe import conformance

from . import vectors

SAMPLES = [r for r in vectors.samples() if registry.supported(r["protocol"])]
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("record", SAMPLES, ids=[vectors.sample_id(r) for r in SAMPLES])
def test_record(record: dict) -> None:
    vectors.require()
    out = conformance.replay(record, received_at=RECEIVED)
    reason = conformance.known(record["protocol"]).get(conformance.sample_key(record))
    if reason is not None:
        if out.right:
            pytest.fail(f"listed as a known deviation ({reason}) but now right: take it off the list")
        pytest.xfail(reason)
    assert out.right, f"{out.why} (detected {out.detected}, error {out.error})"


def test_known_files_name_real_records() -> None:
    """Every key of every known-deviation file is a record of the corpus."""
    vectors.require()
    keys = {(registry.get(r["protocol"]).name, conformance.sample_key(r)) for r in SAMPLES}
    for codec in registry.CODECS:
        for key in conformance.known(codec.name):
            assert (codec.name, key) in keys, f"{codec.name}: {key} is no corpus record"


def test_foreign_records_never_claimed() -> None:
    """Over the whole corpus, no record of a protocol we do not support is detected as one of ours."""
    vectors.require()
    claimed = []
    for record in vectors.samples():
        if registry.supported(record["protocol"]):
            continue
        out = conformance.replay(record, received_at=RECEIVED)
        if out.detected is not None:
            claimed.append((vectors.sample_id(record), out.detected))
    assert claimed == []
