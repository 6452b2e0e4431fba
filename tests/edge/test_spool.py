"""The edge spool's file format and release rules (no Kafka here: the keeper that publishes spooled
records again is tested against the real broker in tests/e2e/test_broker_crash.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from trackpipe.edge.spool import Spool, SpoolError, read_segment


def _spool(tmp_path: Path, **kw: object) -> Spool:
    spool = Spool(tmp_path / "spool", **kw)  # type: ignore[arg-type]
    assert spool.open() == []
    return spool


def test_records_round_trip_through_a_segment(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.record("tracker.raw", 2, 41, b"dev-1", b"\x00frame\xff")
    spool.record("tracker.deadletter", 0, 7, None, b"")
    spool.flush()
    (path,) = spool.take_all()
    entries = list(read_segment(path))
    assert [(e.topic, e.partition, e.offset, e.key, e.value) for e in entries] == [
        ("tracker.raw", 2, 41, b"dev-1", b"\x00frame\xff"),
        ("tracker.deadletter", 0, 7, None, b""),
    ]
    spool.close()


def test_nothing_is_on_disk_before_flush(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.record("t", 0, 0, b"k", b"v" * 100)
    (segment,) = (tmp_path / "spool").glob("*.spool")
    assert segment.stat().st_size == 0
    spool.flush()
    assert segment.stat().st_size == spool.bytes > 100
    spool.close()


def test_a_torn_last_entry_is_skipped(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for offset in range(3):
        spool.record("t", 0, offset, b"k", b"value-%d" % offset)
    spool.flush()
    (path,) = spool.take_all()
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # killed inside the write of the third entry
    assert [e.offset for e in read_segment(path)] == [0, 1]
    path.write_bytes(data + b"\x05\x00")  # a length prefix cut short
    assert [e.offset for e in read_segment(path)] == [0, 1, 2]
    spool.close()


def test_segments_released_only_when_committed_past_every_partition(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.record("raw", 0, 10, b"a", b"x")
    spool.record("raw", 1, 5, b"b", b"x")
    spool.roll()
    spool.record("raw", 0, 11, b"a", b"x")
    spool.roll()
    assert spool.segments == 2
    assert spool.release({("raw", 0): 11}) == 0  # partition 1 not committed at all
    assert spool.release({("raw", 0): 11, ("raw", 1): 5}) == 0  # committed 5 = offset 5 not consumed yet
    assert spool.release({("raw", 0): 11, ("raw", 1): 6}) == 1  # first segment; offset 11 not yet
    assert spool.segments == 1
    assert spool.release({("raw", 0): 12, ("raw", 1): 6}) == 1
    assert spool.segments == 0 and spool.bytes == 0
    assert list((tmp_path / "spool").glob("*.spool")) == [spool._current.path]  # type: ignore[union-attr]
    spool.close()


def test_the_current_segment_rolls_by_age_and_size(tmp_path: Path) -> None:
    spool = _spool(tmp_path, roll_seconds=0.05, roll_bytes=1000)
    spool.record("t", 0, 0, b"k", b"v")
    spool.flush()
    spool.release({})
    assert spool.segments == 1  # too young to roll
    time.sleep(0.06)
    spool.release({})
    assert len(spool._closed) == 1  # rolled: released once committed
    for offset in range(1, 20):
        spool.record("t", 0, offset, b"k", b"v" * 100)
    spool.flush()
    assert len(spool._closed) == 2  # over roll_bytes
    spool.close()


def test_an_earlier_runs_segments_are_handed_back_on_open(tmp_path: Path) -> None:
    first = _spool(tmp_path)
    first.record("t", 3, 99, b"k", b"kept")
    first.flush()
    first.close()  # the edge stopped (or was killed) with a record not yet stored
    second = Spool(tmp_path / "spool")
    left = second.open()
    assert [[e.value for e in read_segment(p)] for p in left] == [[b"kept"]]
    second.record("t", 3, 100, b"k", b"new")
    second.flush()
    assert second._current.path not in left  # type: ignore[union-attr]
    for path in left:
        second.discard(path)
    second.close()
    assert [p.name for p in (tmp_path / "spool").glob("*.spool")] == [second._current.path.name]  # type: ignore[union-attr]


def test_an_empty_segment_is_removed_on_close(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.close()
    assert list((tmp_path / "spool").glob("*.spool")) == []


def test_a_second_edge_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    first = _spool(tmp_path)
    with pytest.raises(SpoolError, match="in use by another edge"):
        Spool(tmp_path / "spool").open()
    first.close()
    again = Spool(tmp_path / "spool")
    again.open()
    again.close()


def test_full_when_over_the_bound(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_bytes=500)
    for offset in range(3):
        spool.record("t", 0, offset, b"k", b"v" * 100)
    assert not spool.full
    for offset in range(3, 6):
        spool.record("t", 0, offset, b"k", b"v" * 100)
    assert spool.full  # pending bytes count too
    spool.flush()
    spool.roll()
    spool.release({("t", 0): 6})
    assert not spool.full
    spool.close()


def test_orphan_spools_are_taken_over_by_one_slot_each(tmp_path: Path) -> None:
    """Spool directories of slots an earlier run had (or of a single-process edge) go to exactly
    one process of this run; a directory still held by a running edge is left to it."""
    from trackpipe.config import Settings

    for name in ("spool", "spool-0", "spool-1", "spool-2", "spool-3", "spool-4"):
        (tmp_path / name).mkdir()
    (tmp_path / "spool-x").mkdir()  # not a slot's
    two = [Settings(data_dir=tmp_path, edge_slot=k, edge_processes=2) for k in (0, 1)]
    assert [s.spool_dir.name for s in two] == ["spool-0", "spool-1"]
    assert [p.name for p in two[0].orphan_spools()] == ["spool", "spool-2", "spool-4"]
    assert [p.name for p in two[1].orphan_spools()] == ["spool-3"]
    single = Settings(data_dir=tmp_path)
    assert single.spool_dir.name == "spool"
    assert [p.name for p in single.orphan_spools()] == ["spool-0", "spool-1", "spool-2", "spool-3", "spool-4"]


def test_adopted_spool_segments_are_returned_and_a_held_one_is_left(tmp_path: Path) -> None:
    old, held = tmp_path / "spool-2", tmp_path / "spool-3"
    earlier = Spool(old)
    earlier.open()
    earlier.record("t", 0, 7, b"k", b"v")
    earlier.close()
    holder = Spool(held)
    holder.open()
    holder.record("t", 0, 8, b"k", b"w")
    holder.flush()
    try:
        spool = Spool(tmp_path / "spool-0", adopt=(old, held))
        left = spool.open()
        assert [e.value for p in left for e in read_segment(p)] == [b"v"]
        assert all(p.parent == old for p in left)
        spool.close()
    finally:
        holder.close()
