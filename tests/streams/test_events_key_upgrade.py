"""The `events` table's `key` column: two events of one type at one time (two fences entered by
one fix) are two rows, and a store made with the DDL from before `key` is upgraded in place.
Real chDB, in a child process (chDB allows one store directory per process)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

#: the events DDL as released before `key` (trackpipe/sql/schema.sql at the start of issue 8)
OLD_EVENTS = """CREATE TABLE {db}.events
(
    device_id   String,
    protocol    LowCardinality(String),
    time        DateTime64(3, 'UTC'),
    server_time DateTime64(3, 'UTC'),
    type        LowCardinality(String),
    alarm       LowCardinality(String),
    latitude    Nullable(Float64),
    longitude   Nullable(Float64),
    archive     Bool,
    device_name String,
    account     String,
    registered  Bool,
    attributes  Map(String, String)
)
ENGINE = ReplacingMergeTree(server_time)
PARTITION BY toYear(time)
ORDER BY (device_id, time, type, alarm)"""

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(fence: str, server_second: int) -> dict:
    return {
        "device_id": "D1", "protocol": "gt06", "time": WHEN, "server_time": WHEN.replace(second=server_second),
        "type": "geofenceEnter", "alarm": "", "latitude": 48.0, "longitude": 2.0, "archive": False,
        "device_name": "", "account": "", "registered": False,
        "attributes": {"geofenceId": fence}, "key": fence,
    }  # fmt: skip


def upgrade_in_child(directory: str, old: bool) -> None:
    """Run in the child: make the store (old DDL first if `old`), ensure the schema twice,
    insert, and print what the table holds as JSON."""
    import clickhouse_connect
    from trackpipe.streams import app  # noqa: F401  (the worker's insert path for events)

    from trackpipe import store
    from trackpipe.store import insert

    client = clickhouse_connect.get_client(dsn=f"chdb://{directory}")
    client.command("CREATE DATABASE IF NOT EXISTS t")
    if old:
        client.command(OLD_EVENTS.replace("{db}", "t"))
        old_row = _event("", 1)
        columns = [c for c in old_row if c != "key"]  # a row from before the upgrade, old columns
        client.insert("t.events", [[old_row[c] for c in columns]], column_names=columns)
    store.ensure_schema(client, "t")
    store.ensure_schema(client, "t")  # every start runs it: idempotent on an upgraded store
    client.database = "t"
    insert(client, "events", [_event("depot", 2), _event("yard", 2), _event("yard", 3)])
    client.command("OPTIMIZE TABLE t.events FINAL")
    sorting = client.query("SELECT sorting_key FROM system.tables WHERE database = 't' AND name = 'events'")
    rows = client.query("SELECT key, toSecond(server_time) FROM t.events FINAL ORDER BY key").result_rows
    print(orjson.dumps({"sorting_key": sorting.result_rows[0][0], "rows": [list(r) for r in rows]}).decode())


def _run(tmp_path: Path, old: bool) -> dict:
    code = (
        "import sys; from tests.streams.test_events_key_upgrade import upgrade_in_child; "
        f"upgrade_in_child({str(tmp_path / 'ch')!r}, {old})"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=240,
        env={"TRACKPIPE_DATA_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def test_old_store_is_upgraded_and_fences_do_not_collapse(tmp_path: Path) -> None:
    result = _run(tmp_path, old=True)
    assert result["sorting_key"] == "device_id, time, type, alarm, key"
    # the old row (key '' after the upgrade), one row per fence; the resent 'yard' collapses to its latest
    assert result["rows"] == [["", 1], ["depot", 2], ["yard", 3]]


def test_new_store_has_the_key(tmp_path: Path) -> None:
    result = _run(tmp_path, old=False)
    assert result["sorting_key"] == "device_id, time, type, alarm, key"
    assert result["rows"] == [["depot", 2], ["yard", 3]]
