"""ClickHouse access through clickhouse-connect: embedded chDB (`chdb://<dir>`) by
default, a ClickHouse server when `CLICKHOUSE_URL` is set.  Same code for both."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from .config import Settings

log = logging.getLogger("trackpipe.store")

#: insert column order per table (must match trackpipe/sql/schema.sql)
COLUMNS: dict[str, tuple[str, ...]] = {
    "positions": (
        "device_id",
        "protocol",
        "fix_time",
        "server_time",
        "valid",
        "latitude",
        "longitude",
        "altitude",
        "speed",
        "course",
        "satellites",
        "archive",
        "alarms",
        "battery_level",
        "battery",
        "power",
        "ignition",
        "odometer",
        "device_name",
        "account",
        "registered",
        "attributes",
        "transport",
        "edge_id",
        "connection_id",
    ),
    "events": (
        "device_id",
        "protocol",
        "time",
        "server_time",
        "type",
        "alarm",
        "latitude",
        "longitude",
        "archive",
        "device_name",
        "account",
        "registered",
        "attributes",
    ),
    "deadletter": (
        "time",
        "reason",
        "detail",
        "stage",
        "protocol",
        "transport",
        "peer",
        "local_port",
        "device_id",
        "edge_id",
        "connection_id",
        "raw",
    ),
    "device_status": (
        "device_id",
        "protocol",
        "last_seen",
        "kind",
        "transport",
        "peer",
        "battery_level",
        "power",
        "ignition",
        "device_name",
        "account",
        "registered",
    ),
}

#: columns stored as non-null String although the Avro field is optional
_NOT_NULL_TEXT = {("deadletter", "protocol"), ("deadletter", "device_id")}


def database_of(settings: Settings) -> str:
    """The pipeline's database: the path of CLICKHOUSE_URL when it names one."""
    if settings.clickhouse_url:
        return urlparse(settings.clickhouse_url).path.strip("/") or settings.database
    return settings.database


def connect(settings: Settings, *, ensure: bool = False) -> Client:
    """A clickhouse-connect client on the configured store (chDB or a server), with the
    pipeline's database as default so `positions` means `<database>.positions`.
    `ensure` creates the database, tables and views first."""
    if settings.clickhouse_url:
        url = urlparse(settings.clickhouse_url)
        client = clickhouse_connect.get_client(
            host=url.hostname or "localhost",
            port=url.port or (8443 if url.scheme == "https" else 8123),
            username=url.username or "default",
            password=url.password or "",
            secure=url.scheme == "https",
        )
    else:
        settings.chdb_dir.mkdir(parents=True, exist_ok=True)
        client = clickhouse_connect.get_client(dsn=f"chdb://{settings.chdb_dir.resolve()}")
    database = database_of(settings)
    if ensure:
        ensure_schema(client, database)
    client.database = database
    return client


def schema_statements(database: str) -> list[str]:
    text = resources.files("trackpipe").joinpath("sql/schema.sql").read_text(encoding="utf-8")
    statements = [s.strip() for s in text.replace("{db}", database).split("\n;\n")]
    return [s for s in statements if s and not all(line.startswith("--") for line in s.splitlines())]


def ensure_schema(client: Client, database: str) -> None:
    for statement in schema_statements(database):
        client.command(statement)


def rows_to_columns(table: str, rows: list[dict[str, Any]]) -> list[list[Any]]:
    columns = []
    for name in COLUMNS[table]:
        values = [row.get(name) for row in rows]
        if (table, name) in _NOT_NULL_TEXT:
            values = [v or "" for v in values]
        columns.append(values)
    return columns


def insert(client: Client, table: str, rows: list[dict[str, Any]]) -> None:
    """One columnar INSERT of a batch (the sink batches to thousands of rows)."""
    client.insert(table, rows_to_columns(table, rows), column_names=list(COLUMNS[table]), column_oriented=True)
