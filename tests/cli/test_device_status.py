"""trackpipe.devices without Kafka or a store: the frozen v1 schema file, the status queries
joined per device, and the `devices show` lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trackpipe import schemas
from trackpipe.devices import DEVICE_SCHEMA_V1, all_views, device_view, show_lines, store_status
from trackpipe.sqlguard import failure_message, select_statement

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_v1_schema_is_the_head_of_the_current_one() -> None:
    """Fields are only appended: the first schema's fields are the current schema's first ones."""
    current = schemas.schema("devices")["fields"]
    v1 = DEVICE_SCHEMA_V1["fields"]
    assert [f["name"] for f in v1] == ["device_id", "name", "account", "updated_at", "options"]
    assert [f["name"] for f in current[: len(v1)]] == [f["name"] for f in v1]
    assert len(current) > len(v1)


def test_store_status_joins_both_queries_per_device() -> None:
    asked: list[str] = []

    def query(sql: str) -> tuple[list[str], list[list[Any]]]:
        asked.append(sql)
        if "FROM device_status" in sql:
            return ["device_id", "protocol", "last_contact"], [["A", "gt06", NOW], ["B", "h02", NOW]]
        return ["device_id", "fix_time", "latitude"], [["A", NOW, 52.0]]

    status = store_status(query)
    assert status == {
        "A": {"device_id": "A", "protocol": "gt06", "last_contact": NOW, "fix_time": NOW, "latitude": 52.0},
        "B": {"device_id": "B", "protocol": "h02", "last_contact": NOW},
    }
    assert len(asked) == 2 and all("WHERE" not in sql for sql in asked)
    asked.clear()
    store_status(query, "it's\\")
    assert all("WHERE device_id = 'it\\'s\\\\'" in sql for sql in asked)


def test_views_cover_registered_and_seen_devices() -> None:
    views = all_views({"B": {"name": "bee"}}, {"A": {"last_contact": NOW}}, NOW)
    assert [(v["device_id"], v["registered"], v["online"]) for v in views] == [("A", False, True), ("B", True, None)]


def test_show_lines() -> None:
    view = device_view("X1", {"name": "Truck", "speed_limit": 90.0, "options": {"b": "2", "a": "1"}}, None, NOW)
    lines = dict(show_lines(view))
    assert lines["speed_limit"] == "90 km/h" and lines["options"] == "a=1 b=2"
    assert lines["offline_after"] == "600 s (default)" and lines["online"] == "- (never seen)"
    assert lines["position"] == "-" and lines["speed"] == "-"


def test_select_statement() -> None:
    assert select_statement("-- c\nSELECT 1;") == "-- c\nSELECT 1"  # comments stay, the ; goes
    assert select_statement("with x as (select 1) select * from x") == "with x as (select 1) select * from x"
    assert select_statement("SHOW TABLES") is None
    assert select_statement("SELECT 1; SELECT 2") is None
    assert select_statement("-- only a comment") is None


def test_failure_message_cuts_a_long_statement() -> None:
    text = failure_message("SELECT\n  " + "x, " * 200 + "y", "Code: 47. DB::Exception: Unknown identifier. (X)")
    first, second = text.splitlines()
    assert first == "query failed: Unknown identifier. (X)"
    assert second.startswith("  statement: SELECT x, x,") and second.endswith("...")
    assert len(second) == len("  statement: ") + 300
