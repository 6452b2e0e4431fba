"""The per-frame fast paths (issue 7) against the general code they stand in for: the quick
`record_problem` check, the coordinate check, the generated Avro record writer and the
carscop signature match.  Each fast path may only answer where the general code would answer
the same; odd values must fall through to it."""

from __future__ import annotations

import dataclasses
import io
import random
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
from trackpipe.protocols import carscop, registry
from trackpipe.protocols.base import Detection, Record
from trackpipe.streams import quality
from trackpipe.streams.quality import DEFAULT_FILTERS, Filters

from trackpipe import schemas

from .. import fuzz_rows, test_fuzz

FIX = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
PLAIN = Record(
    fix_time=FIX,
    valid=True,
    latitude=48.85,
    longitude=2.29,
    speed=12.5,
    satellites=9,
    alarms=["sos"],
    attributes={"event": "1", "note": "é"},
    device_id="123456789012345",
)


class Text(str):
    """A str subclass: not the plain type, so no fast path may take it for granted."""


def _mutated_records(n: int) -> list[Record]:
    rng = random.Random(11)
    seeds = []
    for name in ("carscop", "gt06", "jt808", "teltonika", "h02", "osmand"):
        codec = registry.get(name)
        for decoded in fuzz_rows.decoded_seeds(codec, test_fuzz._seeds(codec)):
            seeds += decoded.records
    assert seeds
    return [fuzz_rows.mutate_record(rng, rng.choice(seeds))[0] for _ in range(n)] + seeds


def test_the_quick_record_check_never_passes_what_the_field_check_refuses() -> None:
    records = _mutated_records(3000)
    passed = [rec for rec in records if quality._plainly_fits(rec)]
    assert passed and len(passed) < len(records)  # both ways are exercised
    for rec in records:
        if quality._plainly_fits(rec):
            assert quality.field_problem(rec) is None, rec
        assert quality.record_problem(rec) == quality.field_problem(rec)


@pytest.mark.parametrize(
    "change",
    [
        {"speed": 7},  # an int: fine, but not the plain float
        {"speed": True},
        {"satellites": 70000},
        {"satellites": True},
        {"ignition": 1},
        {"fix_time": datetime(2025, 1, 1)},  # naive: passes here, filtered later
        {"device_id": Text("abc")},
        {"device_id": "\udc80"},
        {"alarms": ["sos", 3]},
        {"attributes": {"k": "\ud800"}},
        {"attributes": {7: "v"}},
        {"attributes": ["not", "a", "dict"]},
        {"alarms": None},
    ],
)
def test_odd_values_get_the_field_check_answer(change: dict[str, Any]) -> None:
    rec = dataclasses.replace(PLAIN, **change)
    try:
        expected = quality.field_problem(rec)
    except Exception as exc:  # the field check itself fails on it: so must record_problem
        with pytest.raises(type(exc)):
            quality.record_problem(rec)
        return
    assert quality.record_problem(rec) == expected


def test_coordinate_check_is_position_check_without_time() -> None:
    odd = (0.0, 90.0, -90.0, 90.0000001, 180.0, -180.0000001, float("nan"), float("inf"), 10, 10**400, True, "1")
    for filters in (DEFAULT_FILTERS, Filters(zero=False, invalid=True)):
        for lat in odd:
            for lon in odd:
                for valid in (True, False):
                    got = quality.coordinate_problem(lat, lon, valid, filters)
                    assert got == quality.position_problem(lat, lon, None, valid, FIX, filters)
                    late = FIX + timedelta(days=3)
                    assert quality.position_problem(lat, lon, late, valid, FIX, filters) == (
                        got or quality.time_problem(late, FIX, filters)
                    )


def _fastavro(kind: str, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.schema(kind), record)
    return buf.getvalue()


def _position() -> dict[str, Any]:
    return {
        "device_id": "123456789012345",
        "protocol": "gt06",
        "fix_time": FIX,
        "server_time": FIX + timedelta(seconds=3),
        "valid": True,
        "latitude": 48.85,
        "longitude": 2.29,
        "altitude": None,
        "speed": 10.0,
        "course": None,
        "satellites": 5,
        "archive": False,
        "alarms": ["sos"],
        "battery_level": None,
        "battery": 3.7,
        "power": None,
        "ignition": None,
        "odometer": 1.0,
        "attributes": {"a": "b", "é": "ü" * 70},
        "transport": "tcp",
        "edge_id": "e",
        "connection_id": "c",
    }


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"latitude": 48},  # an int in a double
        {"speed": 3},  # an int in a nullable double
        {"satellites": 64},  # past the one-byte inline varint
        {"satellites": -1},
        {"ignition": True},
        {"valid": 1},  # truthy, not a bool
        {"fix_time": datetime(2025, 1, 1, 12)},  # naive: read as UTC
        {"fix_time": datetime(1960, 1, 1, 0, 0, 0, 999, tzinfo=UTC)},
        {"fix_time": datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5)))},
        {"fix_time": 1_700_000_000_123},  # already milliseconds
        {"device_id": Text("x" * 200)},
        {"attributes": {Text("k"): Text("v")}},
        {"alarms": ("sos", "powerCut")},  # a tuple
        {"device_name": "Truck 7", "account": "acme", "registered": True},
    ],
)
def test_generated_writer_writes_fastavro_bytes(change: dict[str, Any]) -> None:
    row = _position() | change
    assert schemas.encode("positions", row) == _fastavro("positions", row)


@pytest.mark.parametrize(
    "change",
    [{"latitude": None}, {"speed": "fast"}, {"attributes": {"k": 1}}, {"alarms": [None]}, {"protocol": None}],
)
def test_generated_writer_refuses_what_fastavro_refuses(change: dict[str, Any]) -> None:
    row = _position() | change
    with pytest.raises(Exception):  # noqa: B017 -- fastavro's error types vary by value
        _fastavro("positions", row)
    with pytest.raises((TypeError, ValueError, AttributeError, struct.error)):
        schemas.encode("positions", row)


def test_generated_writer_names_a_missing_field() -> None:
    row = _position()
    del row["transport"]
    with pytest.raises(ValueError, match="'transport'"):
        schemas.encode("positions", row)


def _signature_by_bytes(head: bytes) -> Detection:
    for i, byte in enumerate(head[: carscop.SIGNATURE_LEN]):
        if i == 0:
            ok = byte == carscop.START
        elif i == carscop.HEADER_END:
            ok = byte == ord("U")
        elif i == carscop.HEADER_END + 1:
            ok = ord("A") <= byte <= ord("Z")
        else:
            ok = ord("0") <= byte <= ord("9")
        if not ok:
            return Detection.NO
    return Detection.YES if len(head) >= carscop.SIGNATURE_LEN else Detection.MORE


def test_carscop_signature_match_is_the_byte_check() -> None:
    rng = random.Random(5)
    good = b"*261124115959UD00"
    heads = [good, good + b"115959A^", good[:9], b"", b"*"]
    for _ in range(20000):
        head = bytearray(good + rng.randbytes(rng.randint(0, 4)))
        for _ in range(rng.randint(0, 2)):
            head[rng.randrange(len(head))] = rng.choice(b"*0U9AZ@[/:\x00\xff")
        heads.append(bytes(head[: rng.randint(0, len(head))]))
    found = {carscop._signature(h) for h in heads}
    assert found == {Detection.YES, Detection.NO, Detection.MORE}
    for head in heads:
        assert carscop._signature(head) is _signature_by_bytes(head), head
