"""Telling insert errors apart and splitting refused batches (`trackpipe.store`), with fakes
and against a real embedded ClickHouse (chDB, in this process: the only test module that opens it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from trackpipe import store
from trackpipe.config import Settings


class Refused(DatabaseError):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(f"Code: {code}. DB::Exception: {message}")
        self.code = code


def test_errors_told_apart() -> None:
    assert store.is_rejection(Refused(469, "Constraint `c` is violated"))
    assert store.is_rejection(Refused(252, "Too many partitions for single INSERT block (more than 100)"))
    assert store.is_rejection(DataError("Unable to create native array for column `satellites`"))
    assert store.is_rejection(TypeError("int() argument must be ... not 'NoneType'"))
    # the store's trouble, not the rows': retried, never split
    assert not store.is_rejection(Refused(252, "Too many parts (3000). Merges are processing significantly slower"))
    assert not store.is_rejection(Refused(243, "Not enough space"))
    assert not store.is_rejection(Refused(210, "Connection refused"))
    assert not store.is_rejection(OperationalError("HTTPConnectionPool: Max retries exceeded"))
    assert not store.is_rejection(ConnectionRefusedError())
    assert not store.is_rejection(store.Unavailable("Cannot lock file status"))
    assert not store.is_rejection(DatabaseError("no code at all"))
    assert store.error_code(DatabaseError("Code: 469. DB::Exception: x")) == 469


class FakeStore:
    """Refuses any block holding a row marked bad; is 'down' for the first `outages` calls."""

    def __init__(self, outages: int = 0) -> None:
        self.outages = outages
        self.stored: list[int] = []
        self.calls = 0
        self.pauses: list[int] = []

    async def insert(self, block: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.outages:
            self.outages -= 1
            raise OperationalError("connection refused")
        if any(row["bad"] for row in block):
            raise Refused(469, "Constraint violated")
        self.stored += [row["n"] for row in block]

    async def pause(self, exc: BaseException, attempt: int) -> None:
        self.pauses.append(attempt)


def _rows(n: int, bad: set[int]) -> list[dict[str, Any]]:
    return [{"n": i, "bad": i in bad} for i in range(n)]


@pytest.mark.parametrize("bad", [set(), {0}, {999}, {3, 500, 501, 998}, set(range(1000))])
def test_split_stores_the_rest_and_returns_the_refused(bad: set[int]) -> None:
    fake = FakeStore()
    refused = asyncio.run(store.insert_or_split(fake.insert, _rows(1000, bad), fake.pause))
    assert sorted(i for i, _ in refused) == sorted(bad)
    assert all(store.is_rejection(exc) for _, exc in refused)
    assert fake.stored == [i for i in range(1000) if i not in bad]  # each good row once, in order
    print(f"bad rows {len(bad)}: {fake.calls} INSERTs for 1000 rows")
    if len(bad) == 1:
        assert fake.calls <= 2 * 10 + 1  # ~2 log2(n)


def test_outage_is_retried_with_the_same_rows_and_nothing_is_refused() -> None:
    fake = FakeStore(outages=4)
    refused = asyncio.run(store.insert_or_split(fake.insert, _rows(10, {7}), fake.pause))
    assert [i for i, _ in refused] == [7]
    assert fake.stored == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert fake.pauses == [1, 2, 3, 4]


def test_empty_batch_makes_no_insert() -> None:
    fake = FakeStore()
    assert asyncio.run(store.insert_or_split(fake.insert, [], fake.pause)) == []
    assert fake.calls == 0


# -- real chDB ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Settings]]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("chdb")), ttl_deadletter=30)
    client = store.connect(settings, ensure=True)
    yield client, settings
    client.close()


def _position(device: str, when: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "device_id": device,
        "protocol": "gt06",
        "fix_time": when,
        "server_time": datetime(2026, 12, 1, tzinfo=UTC),
        "valid": True,
        "latitude": 50.0,
        "longitude": 19.0,
        "alarms": [],
        "device_name": "",
        "account": "",
        "registered": False,
        "attributes": {},
        "transport": "tcp",
        "edge_id": "e",
        "connection_id": "c",
        "archive": False,
    } | extra


def _split(client: Any, table: str, rows: list[dict[str, Any]]) -> list[tuple[int, BaseException]]:
    async def insert(block: list[dict[str, Any]]) -> None:
        store.insert(client, table, block)

    async def pause(exc: BaseException, attempt: int) -> None:
        raise AssertionError(f"unexpected store outage: {exc}")

    return asyncio.run(store.insert_or_split(insert, rows, pause))


def test_a_clock_spanning_decades_is_stored_whole(chdb: tuple[Any, Settings]) -> None:
    """Year partitions: 2000-01 .. 2026-11 monthly fixes (323 months) fit one INSERT."""
    client, _ = chdb
    start = datetime(2000, 1, 15, tzinfo=UTC)
    rows = [_position("clock", start + timedelta(days=30.44 * i)) for i in range(323)]
    rows += [
        _position(f"dev{d}", datetime(2026, 11, 30, tzinfo=UTC) + timedelta(seconds=s))
        for d in range(5)
        for s in range(40)
    ]
    assert _split(client, "positions", rows) == []
    assert client.command("SELECT count() FROM positions FINAL WHERE device_id = 'clock'") == 323
    assert client.command("SELECT count() FROM positions FINAL WHERE device_id LIKE 'dev%'") == 200
    # a resent point collapses to one row
    assert _split(client, "positions", rows[:10]) == []
    assert client.command("SELECT count() FROM positions FINAL WHERE device_id = 'clock'") == 323


def test_a_table_partitioned_by_month_is_split_until_it_fits(chdb: tuple[Any, Settings]) -> None:
    """A table made by the old schema (monthly partitions): > 100 months in one block are split, all stored."""
    client, settings = chdb
    db = store.database_of(settings)
    client.command(
        f"CREATE TABLE {db}.old_positions AS {db}.positions ENGINE = ReplacingMergeTree(server_time) "
        "PARTITION BY toYYYYMM(fix_time) ORDER BY (device_id, fix_time)"
    )
    start = datetime(2010, 1, 15, tzinfo=UTC)
    rows = [_position("clock", start + timedelta(days=30.44 * i)) for i in range(150)]
    rows += [_position("normal", datetime(2026, 11, 30, tzinfo=UTC) + timedelta(seconds=s)) for s in range(100)]
    store.COLUMNS["old_positions"] = store.COLUMNS["positions"]
    try:
        assert _split(client, "old_positions", rows) == []
    finally:
        del store.COLUMNS["old_positions"]
    assert client.command(f"SELECT count() FROM {db}.old_positions FINAL") == 250


def test_a_row_the_store_refuses_is_split_off(chdb: tuple[Any, Settings]) -> None:
    client, _ = chdb
    rows = [_position("refuse", datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=s)) for s in range(50)]
    rows[17]["satellites"] = 70000  # does not fit UInt16
    rows[33]["attributes"] = {"k": 5}  # not a string
    refused = _split(client, "positions", rows)
    assert [i for i, _ in refused] == [17, 33]
    print("refused:", [store.describe(exc) for _, exc in refused])
    assert client.command("SELECT count() FROM positions FINAL WHERE device_id = 'refuse'") == 48


def test_ttls_follow_the_settings(chdb: tuple[Any, Settings]) -> None:
    client, settings = chdb
    db = store.database_of(settings)

    def engine(table: str) -> str:
        return str(
            client.command(f"SELECT engine_full FROM system.tables WHERE database = '{db}' AND name = '{table}'")
        )

    assert "TTL toDateTime(time) + toIntervalDay(30)" in engine("deadletter")
    assert " TTL " not in engine("positions")
    store.apply_ttls(client, db, {"positions": 365, "deadletter": 7})
    assert "TTL toDateTime(server_time) + toIntervalDay(365)" in engine("positions")
    assert "toIntervalDay(7)" in engine("deadletter")
    store.apply_ttls(client, db, {"positions": 0, "deadletter": 30})
    assert " TTL " not in engine("positions")
    assert "toIntervalDay(30)" in engine("deadletter")
