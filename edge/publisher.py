"""Kafka producer for the edge: `acks=all`, and a frame counts as durable only
when its send future resolved.  While Kafka is unreachable `publish` waits up to
`publish_timeout` and then fails, so the edge never acknowledges a device's data
that is not safe yet.

With the embedded broker, whose confirmations come from memory, a `Spool` (edge/spool.py) keeps
every confirmed record on disk until the worker group committed past it; `SpoolKeeper` releases
spooled segments, notices a broker that came back with less than it confirmed (an offset handed
out again, a log end below what was confirmed) and publishes the spooled records again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from trackpipe.config import Settings
from trackpipe.produce import produce_batches

from .spool import Spool, read_segment

log = logging.getLogger("trackpipe.edge.kafka")


class Sender(Protocol):
    """Who hands records to `Publisher.submit`: told of each record's outcome, then, once per
    confirmed (or failed) batch, that its records of that batch are settled."""

    def record_done(self, token: Any, error: Exception | None, partition: int, offset: int) -> None:
        """`error` None: Kafka confirmed the record at (`partition`, `offset`); else both are -1."""

    def records_done(self) -> None: ...


class Confirmed(NamedTuple):
    partition: int
    offset: int


class _Futures:
    """The `Sender` behind `Publisher.send`: each record's outcome settles its future."""

    def record_done(self, token: Any, error: Exception | None, partition: int, offset: int) -> None:
        if not token.done():
            if error is None:
                token.set_result(Confirmed(partition, offset))
            else:
                token.set_exception(error)

    def records_done(self) -> None:
        pass


_FUTURES = _Futures()


class _Batch:
    """Records handed to the producer in one produce batch, settled together."""

    __slots__ = ("due", "members", "settled", "topic")

    def __init__(self, topic: str, due: float) -> None:
        self.topic = topic
        self.due = due  # monotonic time by which Kafka must have confirmed it
        self.members: list[tuple[int, bytes | None, bytes, Sender, Any]] = []  # place, key, value, sender, token
        self.settled = False


class KafkaUnavailable(Exception):
    pass


class Publisher:
    def __init__(
        self, bootstrap: str, timeout: float, *, spool: Spool | None = None, group: str = "", **producer_options: Any
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.spool = spool
        self.keeper = SpoolKeeper(self, spool, group) if spool is not None else None
        self._options = {"acks": "all", "linger_ms": 0, "request_timeout_ms": int(timeout * 1000)} | producer_options
        self._producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None
        self._stopping = False
        self.last_error: str | None = None  # why the last publish failed; None once Kafka answers again
        self._probe: asyncio.Task[None] | None = None
        self._pending: list[tuple[str, bytes | None, bytes, Sender, Any]] = []  # for the next batches
        self._flusher: asyncio.Task[None] | None = None
        self._unsettled: deque[_Batch] = deque()  # handed to the producer, in order
        self._watcher: asyncio.TimerHandle | None = None

    @property
    def connected(self) -> bool:
        """The producer is up and the latest confirmation did not fail (the edge's readiness)."""
        return self._ready.is_set() and not self._stopping and self.last_error is None

    def _failed(self, why: str) -> str:
        """Record a failed publish; a probe clears it once Kafka answers again -- a not-ready edge
        may get no traffic (taken out of its balancer), so it cannot wait for a publish to succeed."""
        self.last_error = why
        if self._probe is None and not self._stopping:
            self._probe = asyncio.get_running_loop().create_task(self._probe_kafka(), name="kafka-probe")
        return why

    async def _probe_kafka(self) -> None:
        try:
            while self.last_error is not None and not self._stopping:
                await asyncio.sleep(1.0)
                producer = self._producer
                if producer is None:
                    continue
                try:
                    async with asyncio.timeout(self.timeout):
                        answered = await producer.client.force_metadata_update()
                except Exception:
                    answered = False
                if answered:
                    self.last_error = None
                    log.info("kafka %s answers again", self.bootstrap)
        finally:
            self._probe = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Publisher:
        """The edge's publisher, spooling when `settings.spool` (the embedded broker)."""
        spool = None
        if settings.spool:
            spool = Spool(
                settings.spool_dir,
                max_bytes=settings.spool_max_bytes,
                fsync=settings.spool_fsync,
                adopt=tuple(settings.orphan_spools()),
            )
        return cls(settings.kafka_bootstrap, settings.publish_timeout, spool=spool, group=settings.app_id)

    async def start(self, wait: bool = False) -> None:
        """Connect in the background (retrying while Kafka is down)."""
        if self.keeper is not None:
            self.keeper.start()
        self._starter = asyncio.create_task(self._connect_forever(), name="kafka-connect")
        if wait:
            await self._ready.wait()

    async def _connect_forever(self) -> None:
        delay = 0.2
        while not self._stopping:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **self._options)
            try:
                await producer.start()
            except Exception as exc:  # broker down or unreachable: keep trying
                log.warning("kafka %s not reachable (%s); retrying in %.1fs", self.bootstrap, exc, delay)
                await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._producer = producer
            self._ready.set()
            log.info("connected to kafka %s", self.bootstrap)
            return

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def submit(self, topic: str, key: bytes | None, value: bytes, sender: Sender, token: Any) -> None:
        """Hand one record to the producer without waiting: once Kafka confirmed its batch (and,
        when spooling, the record is in the spool on disk) `sender.record_done(token, None)`,
        else `record_done(token, KafkaUnavailable)`; after each batch, `sender.records_done()`.
        Raises KafkaUnavailable at once when the spool is full.  Records still waiting for a
        producer fail after the publish timeout, and so does a batch Kafka did not confirm."""
        spool = self.spool
        if spool is not None and spool.full:
            raise KafkaUnavailable(f"spool full ({spool.bytes} bytes not yet stored by the worker)")
        self._pending.append((topic, key, value, sender, token))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="kafka-batches")

    async def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
        """`submit` for a caller that awaits: the returned future resolves once Kafka confirmed
        the record (await it with `confirm`, inside `deadline`)."""
        await self._wait_ready()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submit(topic, key, value, _FUTURES, future)
        return future

    async def _wait_ready(self) -> None:
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._ready.wait()
            except TimeoutError:
                raise KafkaUnavailable(self._failed(f"kafka {self.bootstrap} not reachable")) from None

    async def _flush(self) -> None:
        """Hand what every sender submitted since the last turn to the producer, one batch per
        partition (`trackpipe.produce`); each batch settles its records together (`_settle`).
        Runs while records keep coming; then ends (the next `submit` starts it again)."""
        try:
            while self._pending:
                try:
                    await self._wait_ready()
                except KafkaUnavailable as exc:
                    pending, self._pending = self._pending, []
                    self._fail_records(pending, exc)
                    continue
                pending, self._pending = self._pending, []
                by_topic: dict[str, list[tuple[str, bytes | None, bytes, Sender, Any]]] = {}
                for record in pending:
                    by_topic.setdefault(record[0], []).append(record)
                for topic, records in by_topic.items():
                    try:
                        assert self._producer is not None
                        sent = await produce_batches(self._producer, topic, [(r[1], r[2]) for r in records])
                    except Exception as exc:  # KafkaError, a metadata timeout ...: nothing of these is acked
                        self._fail_records(records, KafkaUnavailable(self._failed(f"kafka refused: {exc!r}")))
                        continue
                    due = time.monotonic() + self.timeout
                    batches: dict[int, tuple[asyncio.Future[Any], _Batch]] = {}
                    for (future, place), (_, key, value, sender, token) in zip(sent, records, strict=True):
                        entry = batches.get(id(future))
                        if entry is None:
                            entry = batches[id(future)] = (future, _Batch(topic, due))
                        entry[1].members.append((place, key, value, sender, token))
                    for future, batch in batches.values():
                        self._unsettled.append(batch)
                        future.add_done_callback(lambda f, b=batch: self._settle(b, f))
                    self._watch()
        finally:
            self._flusher = None

    def _settle(self, batch: _Batch, future: asyncio.Future[Any]) -> None:
        """A batch's confirmation came: spool its records (one write for the batch) before any
        sender hears of it, then tell each sender; or tell each of the failure."""
        if batch.settled:  # failed by the watchdog already
            return
        batch.settled = True
        if future.cancelled() or future.exception() is not None:
            why = "cancelled" if future.cancelled() else repr(future.exception())
            self._fail_batch(batch, KafkaUnavailable(self._failed(f"kafka refused the record: {why}")))
            return
        meta = future.result()
        keeper = self.keeper
        if keeper is not None:
            for place, key, value, _, _ in batch.members:
                keeper.confirmed(batch.topic, meta.partition, meta.offset + place, key, value)
            assert self.spool is not None
            self.spool.flush()  # what was confirmed is on disk before any ack is written
        self._tell(batch.members, None, meta.partition, meta.offset)

    def _fail_batch(self, batch: _Batch, error: Exception) -> None:
        batch.settled = True
        self._tell(batch.members, error)

    def _fail_records(self, records: list[tuple[str, bytes | None, bytes, Sender, Any]], error: Exception) -> None:
        self._tell([(0, r[1], r[2], r[3], r[4]) for r in records], error)

    @staticmethod
    def _tell(
        members: list[tuple[int, bytes | None, bytes, Sender, Any]],
        error: Exception | None,
        partition: int = -1,
        base: int = -1,
    ) -> None:
        """Each record's outcome to its sender (a confirmed record's offset: the batch's base
        offset plus its place), then `records_done` once per sender."""
        senders: dict[int, Sender] = {}
        for place, _, _, sender, token in members:
            sender.record_done(token, error, partition, base + place if error is None else -1)
            senders[id(sender)] = sender
        for sender in senders.values():
            try:
                sender.records_done()
            except Exception:  # one sender's bug must not keep the others from their acks
                log.exception("a sender failed on its confirmations")

    def _watch(self) -> None:
        """Fail the batches Kafka has not confirmed within the publish timeout (checked every
        quarter second while any is unsettled; the producer's own request timeout is the same,
        this bounds the wait whatever the producer does)."""
        unsettled = self._unsettled
        now = time.monotonic()
        while unsettled and (unsettled[0].settled or unsettled[0].due <= now):
            batch = unsettled.popleft()
            if not batch.settled:
                self._fail_batch(batch, KafkaUnavailable(self._failed("kafka did not confirm in time")))
        if unsettled and self._watcher is None and not self._stopping:
            self._watcher = asyncio.get_running_loop().call_later(0.25, self._rewatch)

    def _rewatch(self) -> None:
        self._watcher = None
        self._watch()

    @contextlib.asynccontextmanager
    async def deadline(self) -> AsyncIterator[None]:
        """Bound the confirmations awaited inside by the publish timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError:
            raise KafkaUnavailable(self._failed("kafka did not confirm in time")) from None

    async def confirm(self, future: asyncio.Future[Any]) -> None:
        """Wait for Kafka's confirmation of one record (inside `deadline`)."""
        try:
            await future
        except KafkaUnavailable:
            raise
        except Exception as exc:
            raise KafkaUnavailable(self._failed(f"kafka refused the record: {exc!r}")) from exc

    async def stop(self) -> None:
        self._stopping = True
        if self._flusher is not None:  # what was sent reaches the producer (its stop flushes it)
            with contextlib.suppress(Exception):
                await self._flusher
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
        if self.keeper is not None:
            await self.keeper.stop()
        if self._starter is not None:
            self._starter.cancel()
            try:
                await self._starter
            except (asyncio.CancelledError, Exception):
                pass
        if self._producer is not None:
            await self._producer.stop()
            await asyncio.sleep(0)  # the last confirmations settle (and spool) before the spool closes
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        if self.spool is not None:
            self.spool.close()


class SpoolKeeper:
    """Releases spooled records once stored, and publishes them again when the broker lost them.

    Every `interval` seconds: the log end of each partition this edge wrote to is compared with
    the highest offset it got confirmed there (the edge is the only writer of `tracker.raw` on the
    embedded broker, so an end below it means the broker came back with less); a confirmation
    whose offset is not above the partition's highest so far means the same.  Then every spooled
    record is published again (the worker may have been past them; re-delivered rows collapse).
    Otherwise the consumer group's committed offsets release the segments it is past."""

    RESEND_CHUNK = 500
    STOP_WAIT = 1.5  # s a stopping edge waits for the worker to commit what is spooled

    def __init__(self, publisher: Publisher, spool: Spool, group: str, interval: float = 1.0) -> None:
        self.publisher = publisher
        self.spool = spool
        self.group = group
        self.interval = interval
        self._highest: dict[tuple[str, int], int] = {}
        self._lost = False
        self._resend: list[Any] = []  # segment paths whose records must be published again
        self._task: asyncio.Task[None] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self.resent = 0  # records published again
        self.losses = 0  # times the broker was found to have lost confirmed records

    def start(self) -> None:
        self._resend = self.spool.open()
        if self._resend:
            log.warning("spool: %d segment(s) from an earlier run; publishing them again", len(self._resend))
        self._task = asyncio.create_task(self._run(), name="spool-keeper")

    def confirmed(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        """Kafka confirmed this record at `offset`: spool it (written at the batch's flush); an
        offset not above the partition's highest so far means the broker lost records."""
        tp = (topic, partition)
        if offset <= self._highest.get(tp, -1):
            self._lost = True
        else:
            self._highest[tp] = offset
        self.spool.record(topic, partition, offset, key, value)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.publisher.wait_ready()
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down: try again next round
                log.debug("spool check failed: %r", exc)
                await self._close_clients()

    async def check(self) -> None:
        """One round: notice a loss, publish again what must be, else release what is stored."""
        if not self._lost and await self._log_shrank():
            self._lost = True
        if self._lost:
            self._lost = False
            self.losses += 1
            self._highest.clear()
            taken = self.spool.take_all()
            log.error(
                "kafka %s lost records it had confirmed (broker restarted?): publishing %d spooled segment(s) again",
                self.publisher.bootstrap,
                len(taken),
            )
            self._resend = [*self._resend, *taken]
        if self._resend:
            await self._publish_again()
            return
        committed = await self._committed()
        self.spool.release(committed)

    async def _log_shrank(self) -> bool:
        if not self._highest:
            return False
        if self._offsets is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.publisher.bootstrap, request_timeout_ms=5000)
            await consumer.start()
            self._offsets = consumer
        highest = dict(self._highest)
        ends = await self._offsets.end_offsets([TopicPartition(t, p) for t, p in highest])
        return any(ends.get(TopicPartition(t, p), 0) <= offset for (t, p), offset in highest.items())

    async def _committed(self) -> dict[tuple[str, int], int]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.publisher.bootstrap, request_timeout_ms=5000)
            await admin.start()
            self._admin = admin
        offsets = await self._admin.list_consumer_group_offsets(self.group)
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def _publish_again(self) -> None:
        publisher = self.publisher
        while self._resend:
            path = self._resend[0]
            count = 0
            chunk: list[asyncio.Future[Any]] = []
            for entry in read_segment(path):
                chunk.append(await publisher.send(entry.topic, entry.value, entry.key))
                if len(chunk) >= self.RESEND_CHUNK:
                    count += await self._confirm(chunk)
                    chunk = []
            count += await self._confirm(chunk)
            self.spool.flush()
            self.spool.discard(path)
            self._resend.pop(0)
            self.resent += count
            log.warning("spool: %d record(s) of %s published again", count, path.name)

    async def _confirm(self, futures: list[asyncio.Future[Any]]) -> int:
        async with self.publisher.deadline():
            for future in futures:
                await self.publisher.confirm(future)
        return len(futures)

    async def _close_clients(self) -> None:
        for client in (self._offsets, self._admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    await (client.stop() if isinstance(client, AIOKafkaConsumer) else client.close())
        self._offsets = self._admin = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):  # released now, not published again at the next start
            async with asyncio.timeout(self.STOP_WAIT):
                if not self._lost and not self._resend and self.publisher._ready.is_set():
                    self.spool.roll()
                    while self.spool.segments:  # the worker commits its last batches meanwhile
                        self.spool.release(await self._committed())
                        if self.spool.segments:
                            await asyncio.sleep(0.2)
        await self._close_clients()
