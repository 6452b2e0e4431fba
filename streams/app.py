"""The stream topology, in one file.

    tracker.raw ──decode──┬─► ClickHouse positions, events, device_status (batched INSERTs)
                          ├─► tracker.positions   (for subscribers: analytics, alerting)
                          ├─► tracker.events      (alarms and derived events: what alerting consumers read)
                          └─► tracker.deadletter ──sink_deadletter──► ClickHouse deadletter
                                                  (the edge dead-letters here too)
    tracker.devices ──registry──► Table "devices" (enrichment lookups, rule settings in decode)
    tracker.geofences ──geofence_registry──► GlobalTable "geofences" (every worker holds every fence)
    decode ◄──► Table "rule_state" (per-device rule state; offline_timer ticks over it)

Derived events (`streams.rules`, glue in `streams.derive`): after `process`, each batch's
positions go through the rules per device in fix-time order; their events join the batch's
alarm events (published before the INSERTs, stored with them).  A device's new state is staged
in a `StateBook` and written to the `rule_state` table (changelog: it survives a restart; the
batch's changelog records go out as one produce batch per partition, confirmed before the acks) only
once the batch's INSERTs succeeded, just before the acks: a crash in between re-derives the same
events from the re-delivered frames, and their rows collapse.  `offline_timer` raises
deviceOffline for local devices silent longer than their timeout, the same way.

All topics have the same partition count and are keyed by device id, so the
`devices` table partition that `decode` reads is always local to the worker
(co-partitioning).  `decode` takes what the stream holds (`publish_interval` 0: at once; under
load it fills while the last batch is worked on), decodes it and hands its alarm events to Kafka
at once -- before the rules run -- then its derived events, positions and dead letters, one
produce batch per partition: an alarm waits neither for the rules nor for the store.  The
decoded rows gather in `_Sink` until `sink_batch` frames or `sink_interval` seconds, then one
columnar INSERT per table; the raw events are acked only after
the INSERTs succeeded and Kafka confirmed every publish, so a crash re-delivers, and re-delivered
rows collapse in the ReplacingMergeTree.  Decoding and publishing go on while one batch is in the
store (one at a time, acks in order); the next gathers meanwhile, and only at twice `sink_batch`
frames does the agent wait for the store (back-pressure).

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
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

import faust
import orjson
from aiohttp import web

from trackpipe import group_compat, kafka_compat, loops, metrics, procs, schemas, store
from trackpipe.config import Settings
from trackpipe.geofences import FenceRecord, decode_record
from trackpipe.produce import partition_of, produce_batches

from . import derive
from .process import Batch, deadletter, process
from .quality import filters_of
from .rules import DeviceState, RuleSettings

log = logging.getLogger("trackpipe.streams")
_STARTED = time.monotonic()

settings = Settings.from_env()
filters = filters_of(settings)
kafka_compat.install()  # the embedded broker answers empty fetches at once: do not spin
group_compat.install()  # a commit racing a rebalance must not strand the group (embedded broker)

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


def _bytes_table(kind: Callable[..., Any], name: str, **options: Any) -> Any:
    """A table (`app.Table` or `app.GlobalTable`) of bytes keys and values over every partition,
    its changelog made as `ensure_topics` makes it (segment size: Settings.compact_segment_bytes)."""
    segments = {k: v for k, v in settings.topic_configs("compact").items() if k != "cleanup.policy"}
    return kind(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        extra_topic_configs=segments,
        **options,
    )


devices = _bytes_table(app.Table, "devices")
geofences_topic = app.topic(settings.topic("geofences"), key_type=bytes, value_type=bytes)
#: every fence on every worker: a fence applies to devices of any partition
geofences = _bytes_table(app.GlobalTable, "geofences")
#: per-device rule state (DeviceState.to_bytes), keyed and partitioned by device id like tracker.raw
#: (use_partitioner: written after the INSERTs and from the timer, outside the frame's event)
rule_state = _bytes_table(app.Table, "rule_state", use_partitioner=True)
rule_defaults = derive.base_settings(settings)
worker_metrics = metrics.WorkerMetrics()  # served by `ops_endpoint` (/metrics, /health, /ready)


async def _mirror(stream: faust.StreamT[bytes], table: Any, parse: Any, what: str) -> None:
    """Keep `table` in step with a compacted topic: a record's `parse`d value, a tombstone removes it."""
    async for event in stream.events():
        key = event.key
        if event.value is None:  # tombstone: removed
            table.pop(key, None)
            continue
        try:
            table[key] = parse(event.value)
        except Exception as exc:
            log.error("unreadable %s record for %r: %s", what, key, exc)


def _device_entry(value: bytes) -> bytes:
    record = schemas.decode("devices", value)
    return orjson.dumps(
        {
            "name": record["name"],
            "account": record["account"],
            "options": record.get("options") or {},
            "speed_limit": record.get("speed_limit"),
            "offline_after": record.get("offline_after"),
        }
    )


def _fence_entry(value: bytes) -> bytes:
    decode_record(value)  # refuse what no worker could read
    return value


@app.agent(devices_topic)
async def registry(stream: faust.StreamT[bytes]) -> None:
    """Keep the device registry table in step with the compacted devices topic."""
    await _mirror(stream, devices, _device_entry, "device")


@app.agent(geofences_topic)
async def geofence_registry(stream: faust.StreamT[bytes]) -> None:
    """Keep the geofences table in step with the compacted geofences topic (key: fence name)."""
    await _mirror(stream, geofences, _fence_entry, "geofence")


@lru_cache(maxsize=4096)
def _fence(value: bytes) -> FenceRecord | None:
    try:
        return decode_record(value)
    except ValueError:
        return None


def _fences() -> list[FenceRecord]:
    return [f for f in (_fence(v) for v in list(geofences.values()) if v) if f is not None]


#: device key -> (the value this worker wrote to rule_state, the state it encodes): a device's
#: state is read back in its next batch, seconds later, and parsing it is ~10 us per frame
_written: dict[bytes, tuple[bytes, DeviceState]] = {}
WRITTEN_KEPT = 1 << 18  # then forgotten all at once (read back from the table: parsed again)


def _load_state(device_id: str) -> DeviceState | None:
    key = device_id.encode()
    value = rule_state.get(key)
    if not value:
        return None
    written = _written.get(key)
    if written is not None and written[0] is value:  # the very bytes written: nothing changed them
        return written[1]
    try:
        return DeviceState.from_bytes(value)
    except ValueError as exc:  # a state no version reads: the device starts afresh (one deviceOnline)
        log.error("unreadable rule state of %r, starting afresh: %s", device_id, exc)
        return None


def _state_writer(records: list[tuple[bytes, bytes]]) -> Callable[[str, DeviceState], None]:
    """Writes a committed state into the rule_state table's store and collects its changelog
    record (what a Table write would send on its own, one Faust send per device)."""

    def write(device_id: str, state: DeviceState) -> None:
        key, value = device_id.encode(), state.to_bytes()
        rule_state.data[key] = value  # the store itself: no changelog record from Faust
        records.append((key, value))
        if len(_written) >= WRITTEN_KEPT:
            _written.clear()
        _written[key] = (value, state)

    return write


async def _commit_states(ticket: derive.Ticket) -> None:
    """The ticket's states into the table, their changelog records to Kafka in one produce batch
    per partition (keyed like tracker.raw: on the partition of the device's frames), confirmed
    before the caller acks the frames they came from."""
    records: list[tuple[bytes, bytes]] = []
    book.commit(ticket, _state_writer(records))
    await asyncio.gather(*await _send(rule_state.changelog_topic.get_topic_name(), records))


book = derive.StateBook(_load_state)


@app.on_partitions_revoked.connect
async def _forget_staged(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
    """A rebalance: partitions may move to another worker; their committed table is the truth."""
    book.drop()


def _settings_lookup(lookup: Callable[[str], Mapping[str, Any] | None]) -> Callable[[str], RuleSettings]:
    """Rule settings per device for one batch (registry entry and fences read once)."""
    fences = _fences()
    cached: dict[str, RuleSettings] = {}

    def settings_of(device_id: str) -> RuleSettings:
        if device_id not in cached:
            cached[device_id] = derive.settings_for(rule_defaults, device_id, lookup(device_id), fences)
        return cached[device_id]

    return settings_of


def _derive(batch: Batch, lookup: Callable[[str], Mapping[str, Any] | None]) -> derive.Ticket:
    """The batch's positions through the rules: events added to the batch (with the frame each
    came from), unusable rows dead-lettered, new states staged (committed after the INSERTs)."""
    derived = derive.derive(batch.positions, book.get, _settings_lookup(lookup), batch.status.values())
    for event, position in derived.events:
        batch.events.append(event)
        batch.sources[id(event)] = batch.sources[id(position)]
    for position, problem in derived.failures:
        source = batch.sources[id(position)]
        letter = deadletter(source, "unusable for rules", problem, position.get("device_id"), stage="rules")
        batch.deadletters.append(((position.get("device_id") or "").encode(), letter))
    return book.stage(derived.states)


def _batch_lookup() -> Callable[[str], dict[str, Any] | None]:
    """Registry lookups for one batch: the `devices` Table is asked once per device per batch
    (a registry change applies from the next batch on)."""
    seen: dict[str, dict[str, Any] | None] = {}

    def lookup(device_id: str) -> dict[str, Any] | None:
        if device_id not in seen:
            value = devices.get(device_id.encode())
            seen[device_id] = _registered(value) if value else None
        return seen[device_id]

    return lookup


@lru_cache(maxsize=8192)
def _registered(value: bytes) -> dict[str, Any]:
    """A registry entry, parsed once per distinct value (`process` only reads it)."""
    return orjson.loads(value)


@app.agent(raw_topic)
async def decode(stream: faust.StreamT[bytes]) -> None:
    """Raw frames -> normalized, enriched rows, published for subscribers (positions, alarm and
    derived events) as soon as decoded -- what arrived within `publish_interval` -- and stored in
    ClickHouse in batches of `sink_batch` frames or `sink_interval` seconds (`_Sink`); failures ->
    dead letters.  Raw events are acked only once their rows are stored and their publishes
    confirmed: a crash re-delivers them, and re-delivered rows collapse.  Decoding and publishing
    go on while one batch is in the store."""
    late_after = timedelta(seconds=settings.late_after)
    sink = _Sink(stream)
    ticker = asyncio.ensure_future(sink.tick())
    try:
        async for events in stream.noack_take(settings.sink_batch, within=settings.publish_interval):
            batch, lookup = Batch(), _batch_lookup()
            for event in events:
                try:
                    raw = schemas.decode("raw", event.value)
                except Exception as exc:
                    log.error("unreadable raw record at %s: %s", event.message.tp, exc)
                    batch.deadletters.append((b"", _unreadable(event.value, f"raw record not Avro: {exc}")))
                    continue
                out = process(raw, lookup, late_after=late_after, options=settings.decoder_options, filters=filters)
                batch.add(raw, out, event.key or b"")
            # the frames' own alarms published as soon as decoded: before the rules and any INSERT
            alarms = len(batch.events)
            for row in batch.events:
                row.setdefault("key", "")
            sent = await _publish(events_topic, "events", _by_device(batch.events))
            ticket = _derive(batch, lookup)
            _progress.saw_batch(len(events) >= settings.sink_batch)
            worker_metrics.batch(len(events))
            sent += await _publish(events_topic, "events", _by_device(batch.events[alarms:]))  # derived
            sent += await _publish(positions_topic, "positions", _by_device(batch.positions))
            sent += await _publish(deadletter_topic, "deadletter", batch.deadletters)
            await sink.add(events, batch, sent, ticket)
        await sink.flush()
        await sink.drain()
    finally:
        ticker.cancel()
        sink.cancel()  # stopping: what is not acked yet is re-delivered, its rows collapse


class _Sink:
    """Decoded (and published) frames gathered into store batches: stored, then acked, once
    `sink_batch` frames are pending or the oldest has waited `sink_interval` (a timer stores the
    tail of a burst that nothing follows).  One batch in the store at a time, in order; while it
    is there, decoding and publishing go on and the next batch gathers -- up to twice
    `sink_batch` frames, then the agent waits for the store (back-pressure)."""

    def __init__(self, stream: faust.StreamT[bytes]) -> None:
        self.stream = stream
        self.storing: asyncio.Future[None] | None = None
        self.stored = asyncio.Event()  # set as a batch's store is done
        self.lock = asyncio.Lock()
        self._reset()

    def _reset(self) -> None:
        self.events: list[Any] = []
        self.batch = Batch()
        self.sent: list[Any] = []
        self.ticket: derive.Ticket = {}
        self.since = 0.0

    def due(self) -> bool:
        if not self.events:
            return False
        return len(self.events) >= settings.sink_batch or time.monotonic() - self.since >= settings.sink_interval

    async def add(self, events: list[Any], batch: Batch, sent: list[Any], ticket: derive.Ticket) -> None:
        if not self.events:
            self.since = time.monotonic()
        self.events += events
        self.batch.merge(batch)
        self.sent += sent
        self.ticket.update(ticket)  # a later stage of a device's state wins (StateBook orders commits)
        if len(self.events) >= 2 * settings.sink_batch:  # the store is a whole batch behind: wait for it
            await self.flush()  # back-pressure (bounded memory); publishing pauses meanwhile
        elif self.due() and not self.busy():
            await self.flush()  # starts the store and returns: decoding and publishing go on

    def busy(self) -> bool:
        return self.storing is not None and not self.storing.done()

    async def flush(self) -> None:
        async with self.lock:
            if not self.events:
                return
            if self.storing is not None:
                await self.storing
            events, batch, sent, ticket = self.events, self.batch, self.sent, self.ticket
            self._reset()
            self.storing = asyncio.ensure_future(_store_then_ack(self.stream, events, batch, sent, ticket))
            self.storing.add_done_callback(lambda _: self.stored.set())

    async def tick(self) -> None:
        """Store what is due when nothing else will: the tail of a burst, and what gathered while
        the previous batch was in the store (woken as that one is done)."""
        while True:
            try:
                await asyncio.wait_for(self.stored.wait(), min(0.1, settings.sink_interval / 2))
            except TimeoutError:
                pass
            self.stored.clear()
            if self.due() and not self.lock.locked() and not self.busy():
                try:
                    await self.flush()
                except Exception:  # the agent meets the same failure at its next flush, and restarts
                    log.exception("store batch failed")

    async def drain(self) -> None:
        if self.storing is not None:
            await self.storing

    def cancel(self) -> None:
        if self.storing is not None:
            self.storing.cancel()


async def _store_then_ack(
    stream: faust.StreamT[bytes], events: list[Any], batch: Batch, sent: list[Any], ticket: derive.Ticket
) -> None:
    """One INSERT per table (refused rows dead-lettered), then the rule states, then the acks: a
    frame is acked only once its rows are stored and everything published from it -- its device's
    new rule state in the changelog too -- is confirmed by Kafka."""
    for table, rows in batch.tables():
        refused = [_refused(table, row, batch.sources[id(row)], exc) for row, exc in await _store(table, rows)]
        sent += await _publish(deadletter_topic, "deadletter", refused)
    await asyncio.gather(*sent)
    await _commit_states(ticket)
    for event in events:
        await stream.ack(event)


class _Progress:
    """When the offline timer may judge silence: not while the worker is catching up (full
    batches, or just after it became ready), else a backlog of frames would look like silence."""

    def __init__(self) -> None:
        self.ready_since: float | None = None
        self.last_full = 0.0

    def saw_batch(self, full: bool) -> None:
        if full:
            self.last_full = time.monotonic()

    def settled(self, ready: bool) -> bool:
        now = time.monotonic()
        if not ready:
            self.ready_since = None
            return False
        if self.ready_since is None:
            self.ready_since = now
        quiet = max(settings.rules_tick, 2 * settings.sink_interval)
        return now - self.ready_since >= quiet and now - self.last_full >= quiet


_progress = _Progress()


def _local_partitions() -> set[int]:
    name = raw_topic.get_topic_name()
    try:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == name}
    except Exception:
        return set()


@app.timer(interval=settings.rules_tick)
async def offline_timer() -> None:
    """deviceOffline for every local device silent longer than its timeout (not only on its
    next frame): events published and stored, then the states committed."""
    if not _progress.settled(_ready()):
        return
    local = _local_partitions()
    every = list(range(settings.partitions))
    ids = {key.decode() for key in list(rule_state.keys())} | book.staged_ids()
    ids = {d for d in ids if partition_of(d.encode(), every) in local}
    if not ids:
        return
    settings_of = _settings_lookup(_batch_lookup())
    states = [(d, state) for d in sorted(ids) if (state := book.get(d)) is not None]
    changed, raised = derive.tick(states, datetime.now(UTC), settings_of)
    if not changed:
        return
    ticket = book.stage(changed)
    sent = await _publish(events_topic, "events", _by_device(raised))
    for row, exc in await _store("events", raised):  # no frame to dead-letter: logged
        log.error("derived event refused by store (%s): %r", store.describe(exc), row)
    await asyncio.gather(*sent)
    await _commit_states(ticket)
    log.info("offline timer: %d device(s) offline", len(changed))


@app.task
async def report_recovery() -> None:
    """Log how long this worker took from its start to ready (partitions assigned, the tables --
    rule state included -- recovered from their changelogs) and how much state it recovered."""
    while not _ready():
        await asyncio.sleep(0.1)
    procs.settle_gc()  # what is alive now lives as long as the worker
    log.info(
        "tables recovered, ready %.2fs after the worker started: rule_state %d device(s), geofences %d, devices %d",
        time.monotonic() - _STARTED,
        len(rule_state),
        len(geofences),
        len(devices),
    )


async def _publish(topic: faust.TopicT, kind: str, records: list[tuple[bytes, dict[str, Any]]]) -> list[Any]:
    """Encode the records and hand them to Kafka without waiting; returns the confirmations."""
    if not records:
        return []
    worker_metrics.published(kind, records)
    return await _send(topic.get_topic_name(), [(key, schemas.encode(kind, row)) for key, row in records])


async def _send(name: str, messages: list[tuple[bytes, bytes]]) -> list[Any]:
    """Hand (key, value) records to Kafka without waiting; returns the confirmations."""
    if not messages:
        return []
    kafka = getattr(app.producer, "_producer", None)  # aiokafka's producer under Faust's: it has the batch API
    if kafka is None or not hasattr(kafka, "create_batch"):
        return [await app.producer.send(name, key, value, None, None, None) for key, value in messages]
    return list({batch for batch, _ in await produce_batches(kafka, name, messages)})  # one per batch


def _by_device(rows: list[dict[str, Any]]) -> list[tuple[bytes, dict[str, Any]]]:
    return [(row["device_id"].encode(), row) for row in rows]


def _unreadable(value: bytes | None, detail: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    source = {
        "received_at": now,
        "protocol": None,
        "transport": "",
        "peer_host": "",
        "peer_port": 0,
        "local_port": 0,
        "edge_id": "",
        "connection_id": "",
        "frame": value or b"",
    }
    return deadletter(source, "unreadable record", detail)


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
        started = time.monotonic()
        await _in_store(store.insert, table, block)
        worker_metrics.inserted(table, len(block), time.monotonic() - started)

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


def _refused(
    table: str, row: dict[str, Any], raw: Mapping[str, Any], exc: BaseException
) -> tuple[bytes, dict[str, Any]]:
    """A row the store can never take: its frame is a dead letter (stage "store") with the error."""
    detail = f"{table}: {store.describe(exc)}"
    device_id = row.get("device_id")
    return (device_id or "").encode(), deadletter(raw, "refused by store", detail, device_id, stage="store")


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


_replaying = asyncio.Lock()  # one replay at a time (each holds the chDB thread only chunk by chunk)


async def _handle_replay(request: web.Request) -> web.StreamResponse:
    """`trackpipe replay` with the embedded store: re-decode stored frames here (today's decoders,
    this worker's registry table and settings); every store call goes through the one chDB thread,
    between the live INSERTs.  Answers NDJSON lines: progress, then the summary or the error."""
    from trackpipe import replay

    try:
        body = orjson.loads(await request.read())
        selection = replay.Selection.from_json(body["selection"])
    except (ValueError, KeyError, TypeError, replay.ReplayError) as exc:
        return web.json_response({"error": f"bad replay request: {exc}"}, status=400)
    if _replaying.locked():
        return web.json_response({"error": "a replay is already running in this worker"}, status=409)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    last = 0.0

    async def line(message: dict[str, Any]) -> None:
        await response.write(orjson.dumps(message) + b"\n")

    async def progress(done: int, total: int) -> None:
        nonlocal last
        if time.monotonic() - last >= 0.5 or done >= total:
            last = time.monotonic()
            await line({"progress": [done, total]})

    decoder = replay.Decoder(_batch_lookup(), settings.decoder_options, filters, timedelta(seconds=settings.late_after))
    async with _replaying:
        try:
            summary = await replay.run_replay(
                _in_store,
                selection,
                decoder,
                dry_run=bool(body.get("dry_run")),
                keep_removed=bool(body.get("keep_removed")),
                progress=progress,
            )
        except Exception as exc:
            log.exception("replay of %s failed", selection.describe())
            await line({"error": f"{type(exc).__name__}: {store.describe(exc)}"})
        else:
            log.info("replay of %s: %s", selection.describe(), "; ".join(summary.lines()))
            await line({"summary": summary.to_json()})
    await response.write_eof()
    return response


def _log_offsets() -> None:
    """Faust's offset bookkeeping per assigned partition (committed, read, acked, unacked, gaps)."""
    consumer = app.consumer
    unacked: dict[Any, int] = {}
    for message in list(consumer._unacked_messages):
        unacked[message.tp] = unacked.get(message.tp, 0) + 1
    for tp in sorted(consumer.assignment()):
        acked = consumer._acked.get(tp) or []
        log.warning(
            "offsets %s:%s committed %s read %s acked %d [%s..%s] unacked %d gaps %d",
            tp.topic,
            tp.partition,
            consumer._committed_offset.get(tp),
            consumer._read_offset.get(tp),
            len(acked),
            min(acked, default=None),
            max(acked, default=None),
            unacked.get(tp, 0),
            len(consumer._gap.get(tp) or ()),
        )


@app.task
async def query_endpoint() -> None:
    """Serve `trackpipe query` and readiness on loopback; advertise it in <data-dir>/run/worker.json."""
    await _in_store(lambda client: None)  # open chDB and create the schema before anything is consumed
    loops.dump_tasks_on_signal(also=_log_offsets)  # kill -USR1: every task's stack and the offsets in the log
    if os.environ.get("TRACKPIPE_QUERY_ENDPOINT", "1") != "1":
        return
    web_app = web.Application()
    web_app.router.add_post("/query", _handle_query)
    web_app.router.add_get("/ready", _handle_ready)
    web_app.router.add_post("/replay", _handle_replay)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    run_file = settings.run_dir / "worker.json"
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    metrics.update_run_file(run_file, url=f"http://127.0.0.1:{port}")  # the ops endpoint adds "metrics"
    log.info("query endpoint on http://127.0.0.1:%s", port)
    try:
        await asyncio.Event().wait()
    finally:
        run_file.unlink(missing_ok=True)
        await runner.cleanup()


@app.task
async def ops_endpoint() -> None:
    """/metrics, /health and /ready (= `_ready()`) on TRACKPIPE_WORKER_METRICS_PORT (0: a free port,
    -1: off), independent of the query endpoint; advertised as "metrics" in <data-dir>/run/worker.json."""
    if settings.worker_metrics_port < 0:
        return

    def ready() -> bool:
        ok = _ready()
        worker_metrics.ready.set(1 if ok else 0)
        return ok

    async def refresh() -> None:
        ready()
        await worker_metrics.refresh_lag(app.consumer)

    ops = await metrics.serve_ops(
        settings.metrics_host,
        settings.worker_metrics_port,
        ready,
        worker_metrics.registry,
        detail=lambda ok: metrics.faust_readiness(app, ok),
        refresh=refresh,
    )
    run_file = settings.run_dir / "worker.json"
    metrics.update_run_file(run_file, metrics=ops.url)
    try:
        await asyncio.Event().wait()
    finally:
        run_file.unlink(missing_ok=True)
        await ops.stop()
