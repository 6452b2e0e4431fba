"""Scale-out, correct (python -m trackpipe.scale, shorter): two workers in one consumer group under
load, a third joining and leaving.  Every position is stored (in the union of the workers' own
stores: what one shared ClickHouse holds), each membership change settles with the raw partitions
split exactly once, and rule state follows a partition to its new worker (one deviceOnline per
device: a lost state would raise a second one, at another arrival time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackpipe.scale import report, run

pytestmark = pytest.mark.e2e

DEVICES = 24


def test_two_workers_and_a_third_joining_and_leaving(tmp_path: Path) -> None:
    outcome = run(rate=150, duration=36, devices=DEVICES, partitions=6, root=tmp_path)
    report(outcome)
    assert [what.split(" (")[0] for what, _ in outcome.changes] == [
        "a and b start",
        "c joins under load",
        "c leaves under load",
    ]
    assert outcome.lost_positions == 0 and outcome.stored_positions == outcome.expected_positions > 4000
    assert all(n > 0 for n in outcome.per_worker.values()), outcome.per_worker  # each worker took a share
    assert outcome.devices_online_once == DEVICES
