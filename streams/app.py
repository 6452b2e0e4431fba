"""The stream topology, in one file.

    tracker.raw ──decode──┬─► ClickHouse positions, events, device_status (batched INSERTs)
                          ├─► tracker.positions   (for subscribers: analytics, alerting)
                          ├─► tracker.events      (one record per alarm: what alerting consumers read)
                          └─► tracker.deadletter ──sink_deadletter──► ClickHouse deadletter
                                                  (the edge dead-letters here too)
    tracker.devices ──registry──► Table "devices" (enrichment lookups in decode)

All topics have the same partition count and are keyed by device id, so the
`devices` table partition that `decode` reads is always local to the worker
(co-partitioning).  `decode` takes raw frames in batches (by size, or after
`sink_interval`), makes one columnar INSERT per table, and acks the raw events
only after the INSERTs succeeded; a crash re-delivers, and re-delivered rows
collapse in the ReplacingMergeTree.  Faust flushes the producer before it commits
offsets, so the published positions/events are durable before the input moves on.

Insert errors are told apart (`store.is_rejection`): while the store is down the same rows
are retried with backoff; a block the store refuses (rows it can never take, or too many
partitions in one INSERT) is split in halves until the rows at fault stand alone -- the rest
is stored, and each refused row's frame becomes a dead letter (stage "store", the error as
detail).  Fixes the position filters refuse (`streams.quality`) are dead letters of stage
"filter".  So no device's data can stop storage for the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import faust
import orjson
from aiohttp import web

from trackpipe import kafka_compat, schemas, store
from trackpipe.config import Settings

from .process import deadletter, process
from .quality import Filters, parse_earliest

log = logging.getLogger("trackpipe.streams")

settings = Settings.from_env()
filters = Filters(
    zero=settings.filter_zero,
    invalid=settings.filter_invalid,
    earliest=parse_earliest(settings.filter_earliest),
    future=settings.filter_future,
    past=settings.filter_past,
)
kafka_compat.install()  # the embedded broker answers empty fetches at once: do not spin

app = faust.App(
    os.environ.get("TRACKPIPE_APP_ID", "trackpipe"),
    broker=";".join(f"kafka://{h.strip()}" for h in (settings.kafka_bootstrap or "127.0.0.1:9092").split(",")),
    store="memory://",
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication,
    key_serializer="raw",
    value_serializer="raw",
    producer_acks=-1,
    producer_linger=float(os.environ.get("TRACKPIPE_PRODUCER_LINGER", "0")),
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=float(os.environ.get("TRACKPIPE_SESSION_TIMEOUT", "30")),
    web_enabled=False,
    web_bind="127.0.0.1",
)

raw_topic = app.topic(settings.topic("raw"), key_type=bytes, value_type=bytes)
devices_topic = app.topic(settings.topic("devices"), key_type=bytes, value_type=bytes)
positions_topic = app.topic(settings.topic("positions"), key_type=bytes, value_type=bytes)
events_topic = app.topic(settings.topic("events"), key_type=bytes, value_type=bytes)
deadletter_topic = app.topic(settings.topic("deadletter"), key_type=bytes, value_type=bytes)

devices = app.Table("devices", default=None, key_type=bytes, value_type=bytes, partitions=settings.partitions)


@app.agent(devices_topic)
async def registry(stream: faust.StreamT[bytes]) -> None:
    """Keep the device registry table in step with the compacted devices topic."""
    async for event in stream.events():
        key = event.key
        if event.value is None:  # tombstone: device removed
            devices.pop(key, None)
            continue
        try:
            record = schemas.decode("devices", event.value)
        except Exception as exc:
            log.error("unreadable device record for %r: %s", key, exc)
            continue
        devices[key] = orjson.dumps(
            {"name": record["name"], "account": record["account"], "options": record.get("options") or {}}
        )


def _lookup(device_id: str) -> dict[str, Any] | None:
    value = devices.get(device_id.encode())
    return orjson.loads(value) if value else None


@app.agent(raw_topic)
async def decode(stream: faust.StreamT[bytes]) -> None:
    """Raw frames -> normalized, enriched rows, stored in ClickHouse in batches and published for
    subscribers (positions, alarm events); failures -> dead letters.  A batch's raw events are acked
    only once its rows are stored: a crash re-delivers them, and re-delivered rows collapse."""
    late_after = timedelta(seconds=settings.late_after)
    async for events in stream.noack_take(settings.sink_batch, within=settings.sink_interval):
        positions: list[dict[str, Any]] = []
        alarms: list[dict[str, Any]] = []
        status: dict[str, dict[str, Any]] = {}  # one row per device per batch: its latest contact
        sources: dict[int, dict[str, Any]] = {}  # id(row) -> the raw frame it came from
        for event in events:
            try:
                raw = schemas.decode("raw", event.value)
            except Exception as exc:
                log.error("unreadable raw record at %s: %s", event.message.tp, exc)
                await _send_deadletter_unreadable(event.value, f"raw record not Avro: {exc}")
                continue
            out = process(raw, _lookup, late_after=late_after, options=settings.decoder_options, filters=filters)
            for row in out.positions:
                await positions_topic.send(key=row["device_id"].encode(), value=schemas.encode("positions", row))
            for row in out.events:
                await events_topic.send(key=row["device_id"].encode(), value=schemas.encode("events", row))
            for row in out.deadletters:
                await deadletter_topic.send(key=event.key, value=schemas.encode("deadletter", row))
            positions += out.positions
            alarms += out.events
            if out.status is not None:
                status[out.status["device_id"]] = out.status
            sources.update((id(row), raw) for row in (*out.positions, *out.events, *filter(None, [out.status])))
        for table, rows in (("positions", positions), ("events", alarms), ("device_status", list(status.values()))):
            for row, exc in await _store(table, rows):
                await _deadletter_refused(table, row, sources[id(row)], exc)
        for event in events:
            await stream.ack(event)


async def _send_deadletter_unreadable(value: bytes | None, detail: str) -> None:
    now = datetime.now(UTC)
    row = deadletter(
        {
            "received_at": now,
            "protocol": None,
            "transport": "",
            "peer_host": "",
            "peer_port": 0,
            "local_port": 0,
            "edge_id": "",
            "connection_id": "",
            "frame": value or b"",
        },
        "unreadable record",
        detail,
    )
    await deadletter_topic.send(key=b"", value=schemas.encode("deadletter", row))


# -- ClickHouse ----------------------------------------------------------------------

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")  # chDB: one thread, one process


@cache
def _client() -> Any:
    return store.connect(settings, ensure=True)


def _with_client(fn: Any, *args: Any) -> Any:
    try:
        client = _client()
    except Exception as exc:  # chDB directory locked, server unreachable ...: never the rows' fault
        raise store.Unavailable(store.describe(exc)) from exc
    return fn(client, *args)


async def _in_store(fn: Any, *args: Any) -> Any:
    loop = asyncio.get_running_loop()
    # shielded: a shutdown never abandons an INSERT half-way through
    return await asyncio.shield(loop.run_in_executor(_executor, _with_client, fn, *args))


async def _store(table: str, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], BaseException]]:
    """Columnar INSERTs of a batch: while the store is down, the same rows are retried with
    backoff (the caller acks nothing meanwhile); rows the store refuses are split off
    (`store.insert_or_split`) and returned with the error, the rest is stored."""

    inserts = 0

    async def insert(block: list[dict[str, Any]]) -> None:
        nonlocal inserts
        inserts += 1
        await _in_store(store.insert, table, block)

    async def pause(exc: BaseException, attempt: int) -> None:
        delay = min(0.5 * 2 ** min(attempt - 1, 5), 10.0)
        log.warning("store unavailable for %s (%s); retry %d in %.1fs", table, store.describe(exc), attempt, delay)
        await asyncio.sleep(delay)

    refused = await store.insert_or_split(insert, rows, pause)
    if refused:
        log.error("%s: store refused %d of %d rows (%s)", table, len(refused), len(rows), store.describe(refused[0][1]))
    elif inserts > 1:
        log.info("%s: %d rows stored in %d INSERTs (refused blocks split)", table, len(rows), inserts)
    return [(rows[i], exc) for i, exc in refused]


async def _deadletter_refused(table: str, row: dict[str, Any], raw: dict[str, Any], exc: BaseException) -> None:
    """A row the store can never take: its frame is a dead letter (stage "store") with the error."""
    detail = f"{table}: {store.describe(exc)}"
    letter = deadletter(raw, "refused by store", detail, row.get("device_id"), stage="store")
    await deadletter_topic.send(key=(row.get("device_id") or "").encode(), value=schemas.encode("deadletter", letter))


@app.agent(deadletter_topic)
async def sink_deadletter(stream: faust.StreamT[bytes]) -> None:
    """Dead letters from the edge and from decode, stored with their reason and raw bytes."""
    async for events in stream.noack_take(settings.sink_batch, within=settings.sink_interval):
        rows = []
        for event in events:
            try:
                rows.append(schemas.decode("deadletter", event.value))
            except Exception as exc:  # a foreign producer's garbage: logged, not fatal
                log.error("skipping unreadable dead letter at %s: %s", event.message.tp, exc)
        for row, exc in await _store("deadletter", rows):  # nowhere further to send it: logged, counted above
            log.error("dead letter refused by store, dropped (%s): %s %r", store.describe(exc), row.get("reason"), row)
        for event in events:
            await stream.ack(event)


# -- query endpoint (embedded store only: chDB allows one process per directory) -----


def _ready() -> bool:
    try:
        assigned = bool(app.consumer.assignment())
    except Exception:
        return False
    return assigned and not app.rebalancing and app.tables.recovery.completed.is_set()


async def _handle_query(request: web.Request) -> web.Response:
    sql = await request.text()
    try:
        result = await _in_store(lambda client, q: client.query(q), sql)
    except Exception as exc:
        return web.json_response({"error": str(exc)}, status=400)
    body = orjson.dumps(
        {"columns": list(result.column_names), "rows": [list(r) for r in result.result_rows]},
        default=_json_default,
        option=orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY,
    )
    return web.Response(body=body, content_type="application/json")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


async def _handle_ready(request: web.Request) -> web.Response:
    ready = _ready()
    return web.json_response({"ready": ready}, status=200 if ready else 503)


@app.task
async def query_endpoint() -> None:
    """Serve `trackpipe query` and readiness on loopback; advertise it in <data-dir>/run/worker.json."""
    await _in_store(lambda client: None)  # open chDB and create the schema before anything is consumed
    if os.environ.get("TRACKPIPE_QUERY_ENDPOINT", "1") != "1":
        return
    web_app = web.Application()
    web_app.router.add_post("/query", _handle_query)
    web_app.router.add_get("/ready", _handle_ready)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    run_file = settings.run_dir / "worker.json"
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    run_file.write_bytes(orjson.dumps({"pid": os.getpid(), "url": f"http://127.0.0.1:{port}"}))
    log.info("query endpoint on http://127.0.0.1:%s", port)
    try:
        await asyncio.Event().wait()
    finally:
        run_file.unlink(missing_ok=True)
        await runner.cleanup()
