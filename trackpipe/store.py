"""ClickHouse access through clickhouse-connect: embedded chDB (`chdb://<dir>`) by
default, a ClickHouse server when `CLICKHOUSE_URL` is set.  Same code for both."""

from __future__ import annotations

import logging
import re
import struct
import weakref
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

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
        "key",  # what tells events of one type at one time apart (a geofence id)
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
    "raw_frames": (
        "received_at",
        "device_id",
        "protocol",
        "kind",
        "transport",
        "peer_host",
        "peer_port",
        "local_port",
        "edge_id",
        "connection_id",
        "seq",
        "frame",
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
NOT_NULL_TEXT = {("deadletter", "protocol"), ("deadletter", "device_id"), ("events", "key")}


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
        apply_ttls(client, database, ttl_days(settings))
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
        if (table, name) in NOT_NULL_TEXT:
            values = [v or "" for v in values]
        columns.append(values)
    return columns


#: per client, the insert context of each table: made once (clickhouse-connect asks the server for
#: the table's column types when it makes one: a DESCRIBE query per INSERT otherwise), then reused
_CONTEXTS: weakref.WeakKeyDictionary[Client, dict[str, Any]] = weakref.WeakKeyDictionary()


def insert(client: Client, table: str, rows: list[dict[str, Any]]) -> None:
    """One columnar INSERT of a batch (the sink batches to thousands of rows)."""
    contexts = _CONTEXTS.setdefault(client, {})
    context = contexts.get(table)
    if context is None:
        context = client.create_insert_context(table, column_names=list(COLUMNS[table]), column_oriented=True)
        contexts[table] = context
    context.data = rows_to_columns(table, rows)
    try:
        client.insert(context=context)
    except Exception:
        contexts.pop(table, None)  # made again next time (the table may have changed under it)
        raise
    finally:
        context.data = None  # the batch is not kept alive by the cache


# -- retention ----------------------------------------------------------------------

#: table -> the column its retention counts from (the receive time: a device's clock never decides)
TTL_COLUMNS = {
    "positions": "server_time",
    "events": "server_time",
    "device_status": "last_seen",
    "deadletter": "time",
    "raw_frames": "received_at",
}


def ttl_days(settings: Settings) -> dict[str, int]:
    return {
        "positions": settings.ttl_positions,
        "events": settings.ttl_events,
        "device_status": settings.ttl_device_status,
        "deadletter": settings.ttl_deadletter,
        "raw_frames": settings.ttl_raw_frames,
    }


def ttl_expression(table: str, days: int) -> str:
    """As ClickHouse prints it back in `system.tables.engine_full` (so an unchanged TTL is left alone)."""
    return f"toDateTime({TTL_COLUMNS[table]}) + toIntervalDay({days})"


def apply_ttls(client: Client, database: str, days: dict[str, int]) -> None:
    """Make every table's TTL what the settings say (0 days: none).  Only a changed TTL is
    altered: MODIFY TTL rewrites the table's parts."""
    for table, n in days.items():
        engine = str(
            client.command(
                "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                parameters={"db": database, "t": table},
            )
        )
        has_ttl = " TTL " in f" {engine} "
        if n > 0 and f"TTL {ttl_expression(table, n)}" not in engine:
            client.command(f"ALTER TABLE {database}.{table} MODIFY TTL {ttl_expression(table, n)}")
            log.info("%s: rows expire %d days after %s", table, n, TTL_COLUMNS[table])
        elif n <= 0 and has_ttl:
            client.command(f"ALTER TABLE {database}.{table} REMOVE TTL")
            log.info("%s: retention removed", table)


# -- telling insert errors apart ------------------------------------------------------


class Unavailable(Exception):
    """The store cannot be reached or opened (retry later; no row is at fault)."""


#: ClickHouse error codes that say the store (not the rows) is in trouble: retry, never split
TRANSIENT_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        16,  # NO_SUCH_COLUMN_IN_TABLE (schema out of step: every row would fail)
        60,  # UNKNOWN_TABLE
        74,  # CANNOT_READ_FROM_FILE_DESCRIPTOR
        75,  # CANNOT_WRITE_TO_FILE_DESCRIPTOR
        76,  # CANNOT_OPEN_FILE (chDB directory locked)
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        173,  # CANNOT_ALLOCATE_MEMORY
        192,  # UNKNOWN_USER
        194,  # REQUIRED_PASSWORD
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        225,  # NO_ZOOKEEPER
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS (merges behind) -- but see TOO_MANY_PARTITIONS
        285,  # TOO_FEW_LIVE_REPLICAS
        286,  # UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION
    }
)
#: code 252 also refuses a block spanning > max_partitions_per_insert_block: smaller blocks pass
TOO_MANY_PARTITIONS = "partitions for single insert block"
#: raised while encoding the rows, before anything is sent: the rows are at fault
_ROW_ERRORS = (DataError, TypeError, ValueError, AttributeError, OverflowError, struct.error, UnicodeError, KeyError)
_CODE = re.compile(r"Code: (\d+)")


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def is_rejection(exc: BaseException) -> bool:
    """True: the store refused these rows and always will (split the batch, dead-letter the
    row at fault).  False: the store is down or overloaded (retry the same rows later)."""
    if isinstance(exc, Unavailable):
        return False
    if isinstance(exc, _ROW_ERRORS):
        return True
    if isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError):
        code = error_code(exc)
        if code is None:  # no server verdict: treat as the store's trouble
            return False
        if code == 252:
            return TOO_MANY_PARTITIONS in str(exc).lower()
        return code not in TRANSIENT_CODES
    return False  # connection errors (OperationalError, OSError ...) and anything unknown: retry


def describe(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit]


async def insert_or_split(
    insert: Callable[[list[Any]], Awaitable[None]],
    rows: list[Any],
    pause: Callable[[BaseException, int], Awaitable[None]],
) -> list[tuple[int, BaseException]]:
    """Store `rows` with `insert` (one INSERT per call).  A refused block is split in halves
    until the rows at fault stand alone (bisection: ~2 log2(n) INSERTs per bad row); every other
    row is stored.  While the store is unavailable, `pause(error, attempt)` is awaited and the
    same block retried (nothing is skipped).  Returns (index in `rows`, error) of the refused rows."""
    refused: list[tuple[int, BaseException]] = []
    pending = [(0, len(rows))] if rows else []
    attempt = 0
    while pending:
        lo, hi = pending[-1]
        try:
            await insert(rows[lo:hi])
        except Exception as exc:
            if not is_rejection(exc):
                attempt += 1
                await pause(exc, attempt)
                continue
            pending.pop()
            if hi - lo == 1:
                refused.append((lo, exc))
            else:
                mid = (lo + hi) // 2
                pending += [(mid, hi), (lo, mid)]  # the lower half first: rows keep their order
        else:
            pending.pop()
        attempt = 0
    return refused
