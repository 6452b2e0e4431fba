"""`trackpipe devices`: argument parsing, the registry record (old and new schema), updates that
keep what was not given, and how a device's status reads."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest

from trackpipe import schemas
from trackpipe.cli import (
    DEFAULT_OFFLINE_AFTER,
    DEVICE_SCHEMA_V1,
    CliError,
    build_parser,
    decode_device,
    device_view,
    list_row,
    positive_or_none,
    updated_device,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_add_parses_every_setting() -> None:
    args = parse(
        "devices", "add", "CC8000000000001", "--name", "Truck 7", "--account", "acme",
        "--speed-limit", "90", "--offline-after", "120.5", "--option", "speed_unit=kmh", "--option", "timezone=8",
    )  # fmt: skip
    assert (args.action, args.device_id, args.name, args.account) == ("add", "CC8000000000001", "Truck 7", "acme")
    assert (args.speed_limit, args.offline_after) == (90.0, 120.5)
    assert args.option == ["speed_unit=kmh", "timezone=8"]


def test_add_without_settings_leaves_them_unset() -> None:
    args = parse("devices", "add", "X1")
    new = updated_device("X1", {"name": "a", "speed_limit": 50.0, "offline_after": 30.0}, args, NOW)
    assert (new["speed_limit"], new["offline_after"]) == (50.0, 30.0)


@pytest.mark.parametrize("bad", ["0", "-5", "fast", "nan", "inf"])
def test_speed_limit_must_be_positive(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse("devices", "add", "X1", "--speed-limit", bad)
    assert exit_.value.code == 2 and "--speed-limit" in capsys.readouterr().err


def test_none_clears_a_setting() -> None:
    assert positive_or_none("none") is None and positive_or_none("OFF") is None
    args = parse("devices", "add", "X1", "--speed-limit", "none")
    assert updated_device("X1", {"name": "a", "speed_limit": 50.0}, args, NOW)["speed_limit"] is None


def test_list_show_remove_parse() -> None:
    assert (parse("devices", "list").action, parse("devices", "list", "--json").json) == ("list", True)
    show = parse("devices", "show", "X1", "--json", "--data-dir", "/tmp/d")
    assert (show.action, show.device_id, show.json, show.data_dir) == ("show", "X1", True, "/tmp/d")
    assert parse("devices", "remove", "X1").action == "remove"


def test_query_and_simulate_flags() -> None:
    q = parse("query", "SELECT 1", "--json", "--write")
    assert (q.sql, q.json, q.write, q.format) == ("SELECT 1", True, True, "table")
    assert parse("query", "SELECT 1").write is False
    assert parse("simulate", "--protocol", "gt06", "--progress").progress is True
    assert parse("simulate", "--protocol", "gt06").progress is False


def test_new_device_needs_a_name() -> None:
    with pytest.raises(CliError, match="--name is required"):
        updated_device("X1", None, parse("devices", "add", "X1"), NOW)
    with pytest.raises(CliError, match="must not be empty"):
        updated_device("X1", None, parse("devices", "add", "X1", "--name", "  "), NOW)


def test_update_keeps_what_is_not_given() -> None:
    old = {
        "device_id": "X1", "name": "Truck 7", "account": "acme", "updated_at": NOW - timedelta(days=1),
        "options": {"speed_unit": "kmh", "timezone": "8"}, "speed_limit": 80.0, "offline_after": None,
    }  # fmt: skip
    args = parse("devices", "add", "X1", "--offline-after", "300", "--option", "timezone=", "--option", "x.y=1")
    new = updated_device("X1", old, args, NOW)
    assert new == {
        "device_id": "X1", "name": "Truck 7", "account": "acme", "updated_at": NOW,
        "options": {"speed_unit": "kmh", "x.y": "1"}, "speed_limit": 80.0, "offline_after": 300.0,
    }  # fmt: skip
    renamed = updated_device("X1", old, parse("devices", "add", "X1", "--name", "Van", "--account", ""), NOW)
    assert (renamed["name"], renamed["account"], renamed["options"]) == ("Van", "", old["options"])


def test_bad_option_is_a_clear_error() -> None:
    with pytest.raises(CliError, match="not KEY=VALUE"):
        updated_device("X1", None, parse("devices", "add", "X1", "--name", "a", "--option", "nokey"), NOW)


def _v1_bytes(record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(DEVICE_SCHEMA_V1), record)
    return buf.getvalue()


def test_a_record_written_with_the_first_schema_still_decodes() -> None:
    old = {"device_id": "X1", "name": "Truck 7", "account": "acme", "updated_at": NOW, "options": {"timezone": "8"}}
    record = decode_device(_v1_bytes(old))
    assert record == old | {"speed_limit": None, "offline_after": None}


def test_current_records_round_trip() -> None:
    new = {
        "device_id": "X1", "name": "Truck 7", "account": "", "updated_at": NOW,
        "options": {}, "speed_limit": 90.0, "offline_after": 60.0,
    }  # fmt: skip
    assert decode_device(schemas.encode("devices", new)) == new


def test_a_new_record_still_reads_with_the_first_schema() -> None:
    """An older worker (rolling upgrade) reads the fields it knows and ignores the appended ones."""
    data = schemas.encode("devices", {"device_id": "X1", "name": "n", "updated_at": NOW, "speed_limit": 9.0})
    old = fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(DEVICE_SCHEMA_V1), None)
    assert (old["device_id"], old["name"], old["options"]) == ("X1", "n", {})


def test_garbage_is_an_error_not_a_record() -> None:
    with pytest.raises((ValueError, EOFError)):
        decode_device(b"\x02X")


def test_online_follows_the_device_timeout() -> None:
    status = {"last_contact": (NOW - timedelta(seconds=200)).isoformat(), "protocol": "gt06"}
    default = device_view("X1", {"name": "a"}, status, NOW)
    assert default["online"] is True and DEFAULT_OFFLINE_AFTER > 200
    strict = device_view("X1", {"name": "a", "offline_after": 100.0}, status, NOW)
    assert strict["online"] is False
    never = device_view("X1", {"name": "a"}, None, NOW)
    assert never["online"] is None and list_row(never)[5] == "-"


def test_unregistered_device_is_marked() -> None:
    status = {
        "last_contact": NOW, "protocol": "carscop", "fix_time": NOW - timedelta(seconds=5),
        "latitude": 52.2297, "longitude": 21.0122, "speed": 42.0,
    }  # fmt: skip
    row = list_row(device_view("CC8000000000009", None, status, NOW))
    assert row == [
        "CC8000000000009", "-", "-", "no", "carscop", "yes", "2026-03-01T12:00:00Z", "2026-03-01T11:59:55Z",
        "52.22970,21.01220",
    ]  # fmt: skip
