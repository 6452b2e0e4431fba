"""The guards `streams.quality` holds against values outside `Record`'s types (a decoder bug):
zoneless fix times, coordinates no double holds, and `record_problem` for every field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from trackpipe.protocols.base import Decoded, Record
from trackpipe.streams import quality
from trackpipe.streams.quality import DEFAULT_FILTERS, position_problem, record_problem, time_problem

from .. import fuzz_rows

RECEIVED = fuzz_rows.RECEIVED
FIX = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)


def test_a_zoneless_fix_time_is_refused_not_compared() -> None:
    naive = datetime(2025, 12, 31, 23, 0)
    assert time_problem(naive, RECEIVED, DEFAULT_FILTERS) == quality.ZONELESS_FIX
    assert position_problem(10.0, 20.0, naive, True, RECEIVED, DEFAULT_FILTERS) == quality.ZONELESS_FIX
    assert time_problem(FIX, RECEIVED, DEFAULT_FILTERS) is None


@pytest.mark.parametrize("odd", [10**400, -(10**400), True, "50.1", None, float("nan")])
def test_coordinates_no_double_holds_are_invalid(odd: Any) -> None:
    assert position_problem(odd, 20.0, FIX, True, RECEIVED, DEFAULT_FILTERS) == quality.INVALID_POSITION
    assert position_problem(10.0, odd, FIX, True, RECEIVED, DEFAULT_FILTERS) == quality.INVALID_POSITION
    assert position_problem(10**2, 20, FIX, True, RECEIVED, DEFAULT_FILTERS) == quality.INVALID_POSITION  # 100 > 90
    assert position_problem(10, 20, FIX, True, RECEIVED, DEFAULT_FILTERS) is None  # ints are fine


def test_process_dead_letters_a_zoneless_fix() -> None:
    """Through the real `process`: the fix is a dead letter (stage filter), its alarm an event at receipt."""
    rec = Record(fix_time=datetime(2025, 12, 31, 23, 0), valid=True, latitude=10.0, longitude=20.0, alarms=["sos"])
    with fuzz_rows.replaying() as replay:
        replay.decoded = Decoded("position", None, [rec])
        out = fuzz_rows.process(fuzz_rows.raw_record(fuzz_rows.REPLAY, b"x", "tcp"), fuzz_rows.lookup)
    assert out.positions == []
    assert [(d["stage"], d["reason"]) for d in out.deadletters] == [("filter", quality.ZONELESS_FIX)]
    assert [(e["alarm"], e["time"]) for e in out.events] == [("sos", RECEIVED)]


GOOD = Record(fix_time=FIX, valid=True, latitude=10.0, longitude=20.0, satellites=7, attributes={"k": "v"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"speed": 10**400}, "speed"),
        ({"altitude": True}, "altitude"),
        ({"odometer": "12"}, "odometer"),
        ({"satellites": 70000}, "satellites"),
        ({"satellites": -1}, "satellites"),
        ({"satellites": 7.0}, "satellites"),
        ({"valid": None}, "valid"),
        ({"archive": 1}, "archive"),
        ({"ignition": 1.0}, "ignition"),
        ({"fix_time": 1767222000}, "fix_time"),
        ({"device_id": "\udcff"}, "device_id"),
        ({"device_id": 123}, "device_id"),
        ({"alarms": ["sos", "\ud800"]}, "alarms"),
        ({"attributes": {"k": 1}}, "attributes"),
        ({"attributes": {"k": b"\xff"}}, "attributes"),
        ({"attributes": {"\udcff": "v"}}, "attributes"),
        ({"attributes": {7: "v"}}, "attributes"),
    ],
)
def test_record_problem_names_the_field(change: dict[str, Any], field: str) -> None:
    rec = Record(**{**{f: getattr(GOOD, f) for f in GOOD.__slots__}, **change})
    problem = record_problem(rec)
    assert problem is not None and problem.startswith(f"{field}:"), problem


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"speed": float("nan"), "course": float("inf"), "altitude": -1e308},  # doubles, if odd ones
        {"satellites": 0, "ignition": None, "fix_time": None, "device_id": None},
        {"fix_time": datetime(2025, 1, 1)},  # zoneless: the position filter refuses it, alarms are kept
        {"satellites": 65535, "odometer": 2**60, "battery": 5e-324},
        {"device_id": "é\x00\U0010ffff", "alarms": ["", "x" * 100_000], "attributes": {"": "ü" * 10}},
    ],
)
def test_record_problem_passes_what_fits(change: dict[str, Any]) -> None:
    rec = Record(**{**{f: getattr(GOOD, f) for f in GOOD.__slots__}, **change})
    assert record_problem(rec) is None


def test_is_text() -> None:
    assert quality.is_text("ok é") and quality.is_text("")
    assert not quality.is_text("\udc80") and not quality.is_text(b"ok") and not quality.is_text(None)
