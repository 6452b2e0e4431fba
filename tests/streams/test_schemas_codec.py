"""The compiled Avro writer (`trackpipe.schemas.encode`) against fastavro on every topic's schema:
the same bytes, read back to the same record, for real records from the pipeline and edge values
(negative and large numbers, unicode, empty and missing optional fields); bad bytes raise."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from trackpipe.streams.process import deadletter, process

from trackpipe import schemas
from trackpipe.bench_worker import mix


def fastavro_encode(kind: str, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.schema(kind), record)
    return buf.getvalue()


def fastavro_decode(kind: str, data: bytes) -> dict[str, Any]:
    return fastavro.schemaless_reader(io.BytesIO(data), schemas.schema(kind), None)


def same_both_ways(kind: str, record: dict[str, Any]) -> None:
    ours = schemas.encode(kind, record)
    assert ours == fastavro_encode(kind, record)
    assert schemas.decode(kind, ours) == fastavro_decode(kind, ours)


def pipeline_records() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for _, raw in mix(400):
        out.append(("raw", raw))
        result = process(raw, lambda _: {"name": "Truck ü7", "account": "acme"})
        out += [("positions", row) for row in result.positions]
        out += [("events", row) for row in result.events]
        out += [("deadletter", row) for row in result.deadletters]
    return out


def test_pipeline_records_match_fastavro() -> None:
    records = pipeline_records()
    kinds = {kind for kind, _ in records}
    assert kinds >= {"raw", "positions", "events"}
    for kind, record in records:
        same_both_ways(kind, record)


NOW = datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=UTC)


def raw_frame(**changes: Any) -> dict[str, Any]:
    base = {
        "frame": b"\x00\xff*" * 50,
        "protocol": "gt06",
        "kind": "position",
        "device_id": None,
        "transport": "udp",
        "peer_host": "::1",
        "peer_port": 65535,
        "local_port": 0,
        "connection_id": "",
        "edge_id": "edge-ż",
        "received_at": NOW,
        "seq": 0,
    }
    return base | changes


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"device_id": "35" + "9" * 13},
        {"seq": -1},
        {"seq": 2**63 - 1},
        {"seq": -(2**63)},
        {"peer_port": -(2**31)},
        {"received_at": datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)},
        {"received_at": datetime(2026, 5, 4, 3, 2, 1)},  # naive: UTC, as fastavro
        {"received_at": 1_777_777_777_777},
        {"frame": b""},
        {"frame": bytes(range(256)) * 40},
        {"edge_id": "日本語" * 30},
    ],
)
def test_edge_values_match_fastavro(changes: dict[str, Any]) -> None:
    same_both_ways("raw", raw_frame(**changes))


EDGE_CASES = [
    {},
    {"device_id": "35" + "9" * 13},
    {"seq": -1},
    {"seq": 2**63 - 1},
    {"peer_port": -(2**31)},
    {"received_at": 1_777_777_777_777},
    {"frame": bytes(range(256)) * 40},
    {"edge_id": "日本語" * 30, "connection_id": "c" * 200},
]


@pytest.mark.parametrize("changes", EDGE_CASES)
@pytest.mark.parametrize(
    "constant",
    [
        frozenset(
            ("protocol", "device_id", "transport", "peer_host", "peer_port", "local_port", "connection_id", "edge_id")
        ),
        frozenset(("frame", "seq")),  # the first and the last field
        frozenset(("kind",)),
        frozenset(),
    ],
)
def test_spliced_records_are_the_same_bytes(changes: dict[str, Any], constant: frozenset[str]) -> None:
    record = raw_frame(**changes)
    spliced = schemas.spliced("raw", constant)
    runs = spliced.bind({k: v for k, v in record.items() if k in constant})
    ours = spliced.encode({k: v for k, v in record.items() if k not in constant}, runs)
    assert ours == fastavro_encode("raw", record)
    assert fastavro_decode("raw", ours) == fastavro_decode("raw", schemas.encode("raw", record))


def test_spliced_refuses_unknown_fields_and_writes_no_constant_from_the_record() -> None:
    with pytest.raises(ValueError, match="no field"):
        schemas.spliced("raw", frozenset(("protocol", "nope")))
    spliced = schemas.spliced("raw", frozenset(("protocol",)))
    runs = spliced.bind({"protocol": "gt06"})
    record = raw_frame()
    mixed = spliced.encode({**record, "protocol": "h02"}, runs)  # the record's own value is not read
    assert fastavro_decode("raw", mixed)["protocol"] == "gt06"


def test_positions_with_every_optional_field_empty_or_set() -> None:
    row = process(mix(1)[0][1], lambda _: None).positions[0]
    empty = {**row, "altitude": None, "speed": None, "satellites": None, "ignition": None, "attributes": {}}
    full = {**row, "altitude": -12.5, "satellites": 0, "ignition": False, "alarms": ["sos", "powerCut"]}
    for record in (empty, full, {**row, "speed": 0, "battery": 3}):  # ints for doubles, as fastavro allows
        same_both_ways("positions", record)
    missing = {k: v for k, v in row.items() if k not in ("device_name", "account", "registered", "altitude")}
    same_both_ways("positions", missing)  # defaults fill in


def test_devices_and_deadletters() -> None:
    device = {"device_id": "X", "name": "n", "account": "a", "updated_at": NOW, "options": {"speed_unit": "kmh"}}
    same_both_ways("devices", device)
    letter = deadletter(raw_frame(protocol=None), "unreadable record", "detail", None)
    same_both_ways("deadletter", letter)


def test_millisecond_precision_and_utc() -> None:
    decoded = schemas.decode("raw", schemas.encode("raw", raw_frame()))
    assert decoded["received_at"] == NOW.replace(microsecond=987000)
    assert decoded["received_at"].tzinfo is not None
    assert decoded["received_at"] - NOW > -timedelta(milliseconds=1)


@pytest.mark.parametrize("cut", [1, 5, 40, -1])
def test_truncated_or_garbage_records_raise(cut: int) -> None:
    data = schemas.encode("raw", raw_frame())
    with pytest.raises(Exception):  # noqa: B017 -- any error: the worker dead-letters it
        schemas.decode("raw", data[:cut])
    with pytest.raises(Exception):  # noqa: B017
        schemas.decode("raw", b"\xff" * 12)


def test_missing_required_field_is_an_error() -> None:
    record = raw_frame()
    del record["frame"]
    with pytest.raises(ValueError, match="frame"):
        schemas.encode("raw", record)
