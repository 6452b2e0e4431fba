"""The device registry (the compacted `tracker.devices` topic) and the devices as
`trackpipe devices list/show` show them, joined with what the store knows of each.

Records are schemaless Avro: written with schemas/device.avsc, read with it or, for a record
from before `speed_limit`/`offline_after`, with the frozen schemas/device.v1.avsc resolved to the
current schema.  Kafka problems raise `RegistryError` (one readable line).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any, TypeVar

import orjson

from trackpipe import schemas

#: Traccar's status.timeout: a device silent for longer is offline (per device: --offline-after)
DEFAULT_OFFLINE_AFTER = 600.0
REGISTRY_READ_TIMEOUT = 30.0  # s to read the whole compacted registry topic
KAFKA_START_TIMEOUT = 20.0  # s to connect a consumer or producer
V1_SCHEMA_FILE = "device.v1.avsc"
#: schemas/device.avsc as first released (before speed_limit, offline_after): records written
#: with it are read with it and resolved to the current schema
DEVICE_SCHEMA_V1: dict[str, Any] = orjson.loads(
    resources.files("trackpipe.schemas").joinpath(V1_SCHEMA_FILE).read_bytes()
)

T = TypeVar("T")

#: SQL -> (column names, rows): how `store_status` asks the store (read-only)
Query = Callable[[str], tuple[list[str], list[list[Any]]]]


class RegistryError(Exception):
    """The registry topic could not be read or written (Kafka unreachable, too slow)."""


def decode_device(data: bytes) -> dict[str, Any]:
    """A registry record, whichever schema version wrote it (`schemas.decode` tries the current
    schema, then the older ones, resolved to the current)."""
    return schemas.decode("devices", data)


def encode_device(record: dict[str, Any]) -> bytes:
    """A registry record as the current schema writes it."""
    return schemas.encode("devices", record)


async def read_registry(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """The registry as the compacted topic holds it now: the last record per key, tombstoned
    devices left out.  Read from the beginning to the end offsets seen at the start; a record
    that does not decode is left out with a warning on stderr."""
    return await read_compacted(bootstrap, topic, decode_device, "registry")


async def read_compacted(bootstrap: str, topic: str, decode: Callable[[bytes], T], what: str) -> dict[str, T]:
    """The last record per key of a compacted topic (tombstoned keys left out), read from the
    beginning to the end offsets seen at the start; `decode` errors: a warning, the key left out."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", request_timeout_ms=15000
    )
    try:
        await asyncio.wait_for(consumer.start(), KAFKA_START_TIMEOUT)
    except Exception as exc:
        await consumer.stop()
        raise RegistryError(f"kafka {bootstrap} not reachable: {exc}") from exc
    devices: dict[str, T] = {}
    try:
        if topic not in await consumer.topics():
            return devices
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        pending = {tp for tp in partitions if end[tp] > begin[tp]}
        deadline = asyncio.get_running_loop().time() + REGISTRY_READ_TIMEOUT
        while pending:
            if asyncio.get_running_loop().time() > deadline:
                raise RegistryError(f"the {what} topic {topic} was not read within {REGISTRY_READ_TIMEOUT:.0f}s")
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for messages in batches.values():
                for m in messages:
                    key = (m.key or b"").decode("utf-8", "replace")
                    if m.value is None:
                        devices.pop(key, None)
                        continue
                    try:
                        devices[key] = decode(m.value)
                    except Exception as exc:
                        print(f"trackpipe: warning: unreadable {what} record for {key!r}: {exc}", file=sys.stderr)
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return devices


async def write_record(bootstrap: str, topic: str, key: bytes, value: bytes | None) -> None:
    """One registry record (None: the tombstone that removes the device), confirmed by all replicas."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000)
    try:
        await asyncio.wait_for(producer.start(), KAFKA_START_TIMEOUT)
    except Exception as exc:
        await producer.stop()
        raise RegistryError(f"kafka {bootstrap} not reachable: {exc}") from exc
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


# -- status from the store ----------------------------------------------------------------


def quote(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def as_datetime(value: Any) -> datetime | None:
    """A time from the store: a datetime (chDB, server) or ISO text (the pipeline's endpoint)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace(" ", "T"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def store_status(query: Query, device_id: str | None = None) -> dict[str, dict[str, Any]]:
    """device id -> what the store knows: last contact (device_status) and latest position.
    `query` runs one read-only statement; its errors pass through."""
    where = f" WHERE device_id = {quote(device_id)}" if device_id is not None else ""
    seen = (
        "SELECT device_id, argMax(protocol, last_seen) AS protocol, max(last_seen) AS last_contact, "
        "argMax(kind, last_seen) AS kind, argMax(transport, last_seen) AS transport, "
        "argMax(peer, last_seen) AS peer, argMax(device_name, last_seen) AS seen_name, "
        f"argMax(account, last_seen) AS seen_account FROM device_status{where} GROUP BY device_id"
    )
    latest = (
        "SELECT device_id, fix_time, latitude, longitude, speed, valid, protocol AS fix_protocol "
        f"FROM latest_positions{where}"
    )
    out: dict[str, dict[str, Any]] = {}
    for sql in (seen, latest):
        columns, rows = query(sql)
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            out.setdefault(str(values["device_id"]), {}).update(values)
    return out


# -- one device as list/show show it ------------------------------------------------------


def device_view(
    device_id: str, registered: dict[str, Any] | None, status: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """One device as `devices list/show` print it: registry settings and the store's status."""
    reg, st = registered or {}, status or {}
    last_seen = as_datetime(st.get("last_contact"))
    fix_time = as_datetime(st.get("fix_time"))
    offline_after = reg.get("offline_after") or DEFAULT_OFFLINE_AFTER
    online = None if last_seen is None else (now - last_seen).total_seconds() <= offline_after
    return {
        "device_id": device_id,
        "registered": registered is not None,
        "name": reg.get("name", st.get("seen_name") or ""),
        "account": reg.get("account", st.get("seen_account") or ""),
        "protocol": st.get("protocol") or st.get("fix_protocol") or None,
        "online": online,
        "last_seen": last_seen,
        "fix_time": fix_time,
        "latitude": st.get("latitude"),
        "longitude": st.get("longitude"),
        "speed": st.get("speed"),
        "speed_limit": reg.get("speed_limit"),
        "offline_after": reg.get("offline_after"),
        "options": reg.get("options") or {},
        "updated_at": as_datetime(reg.get("updated_at")),
        "kind": st.get("kind") or None,
        "transport": st.get("transport") or None,
        "peer": st.get("peer") or None,
    }


def all_views(
    registry: dict[str, dict[str, Any]], status: dict[str, dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Every registered device and every device the store saw, by id."""
    return [device_view(d, registry.get(d), status.get(d), now) for d in sorted(registry.keys() | status.keys())]


def when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def position(view: dict[str, Any]) -> str:
    if view["latitude"] is None or view["longitude"] is None:
        return "-"
    return f"{float(view['latitude']):.5f},{float(view['longitude']):.5f}"


LIST_COLUMNS = ["device_id", "name", "account", "registered", "protocol", "online", "last_seen", "last_fix", "position"]


def list_row(view: dict[str, Any]) -> list[str]:
    """The `devices list` row of one device (LIST_COLUMNS)."""
    online = {None: "-", True: "yes", False: "no"}[view["online"]]
    return [
        view["device_id"],
        view["name"] or "-",
        view["account"] or "-",
        "yes" if view["registered"] else "no",
        view["protocol"] or "-",
        online,
        when(view["last_seen"]),
        when(view["fix_time"]),
        position(view),
    ]


def show_lines(view: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, value) lines `devices show` prints for one device."""
    limit, after = view["speed_limit"], view["offline_after"]
    options = " ".join(f"{k}={v}" for k, v in sorted(view["options"].items()))
    speed = view["speed"]
    return [
        ("device_id", view["device_id"]),
        ("registered", "yes" if view["registered"] else "no"),
        ("name", view["name"] or "-"),
        ("account", view["account"] or "-"),
        ("speed_limit", "-" if limit is None else f"{limit:g} km/h"),
        ("offline_after", f"{DEFAULT_OFFLINE_AFTER:g} s (default)" if after is None else f"{after:g} s"),
        ("options", options or "-"),
        ("updated_at", when(view["updated_at"])),
        ("protocol", view["protocol"] or "-"),
        ("online", {None: "- (never seen)", True: "yes", False: "no"}[view["online"]]),
        ("last_seen", when(view["last_seen"])),
        ("last_frame", view["kind"] or "-"),
        ("transport", view["transport"] or "-"),
        ("peer", view["peer"] or "-"),
        ("last_fix", when(view["fix_time"])),
        ("position", position(view)),
        ("speed", "-" if speed is None else f"{float(speed):.1f} km/h"),
    ]
