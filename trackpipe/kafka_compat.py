"""Patches to aiokafka and Faust for the worker: `install()` applies both, once.

1. Client-side long polling for brokers that answer empty fetches at once
   (`install_long_poll`).  A Kafka broker holds an empty Fetch until `fetch_max_wait_ms`
   passes or data arrives.  noida-db (the embedded dev broker) answers at once, so
   aiokafka's fetcher re-sends immediately and an idle consumer spins: measured 82-85% of a
   core for a bare aiokafka consumer and 78% for an idle Faust worker.  The patch wraps
   aiokafka's per-node fetch so that an empty answer that came back sooner than `floor`
   seconds waits out the rest before the next fetch.  Against a real Kafka an empty answer
   already took `fetch_max_wait_ms` (500 ms by default), longer than the floor, so nothing
   changes there.  Written for aiokafka 0.14.0 (pinned in pyproject.toml).
2. Faust's per-record overhead and its offset bookkeeping across rebalances
   (`install_fast_delivery`, see its section below): each fetched record handed over without
   tasks and, on a raw-bytes topic, made an event without the serializer registry
   (`_raw_as_is`), `noack_take` batches taken from the stream's queue in bulk, and three holes closed
   through which Faust commits past offsets never processed or stops committing (found by
   `python -m trackpipe.scale`: workers joining and leaving under load; the first version of
   this patch lost 167 of 8,630 positions there).  On by default; TRACKPIPE_FAST_DELIVERY=0
   keeps Faust's own delivery (for comparison: `python -m trackpipe.bench_worker --variant
   TRACKPIPE_FAST_DELIVERY=0`).  Written for faust-streaming 0.15.3.

Each refuses (logs, returns False) to patch anything it does not recognise.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Any

from aiokafka.consumer import fetcher as _fetcher

log = logging.getLogger("trackpipe.kafka")

DEFAULT_FLOOR = 0.05  # s: the most an idle partition's new data waits for its next fetch
_MARK = "_trackpipe_long_poll"

FetchFn = Callable[[Any, Any, int, Any], Awaitable[bool]]


def install(floor: float = DEFAULT_FLOOR) -> bool:
    """Install the patches of this module once (`install_long_poll`; `install_fast_delivery` only
    with TRACKPIPE_FAST_DELIVERY=1); False (and logged) when one found its target not in the
    expected shape."""
    long_poll = install_long_poll(floor)
    if os.environ.get("TRACKPIPE_FAST_DELIVERY", "1") != "1":  # 0: Faust's own delivery (for comparison)
        return long_poll
    return install_fast_delivery() and long_poll


def install_long_poll(floor: float = DEFAULT_FLOOR) -> bool:
    """Patch once; returns False (and logs) when aiokafka's fetcher is not the expected shape."""
    original = getattr(_fetcher.Fetcher, "_proc_fetch_request", None)
    if original is None or not inspect.iscoroutinefunction(original):
        log.warning("aiokafka fetcher not recognised; empty-fetch long polling not installed")
        return False
    if getattr(original, _MARK, False):
        return True
    params = list(inspect.signature(original).parameters)
    if params != ["self", "assignment", "node_id", "request"]:
        log.warning("aiokafka fetcher signature %s not recognised; long polling not installed", params)
        return False

    _fetcher.Fetcher._proc_fetch_request = with_floor(original, floor)  # type: ignore[method-assign]
    return True


def with_floor(fetch: FetchFn, floor: float) -> FetchFn:
    """`fetch`, but an answer without new data returns no sooner than `floor` seconds."""

    @functools.wraps(fetch)
    async def fetch_with_floor(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
        loop = asyncio.get_running_loop()
        started = loop.time()
        has_new_data = await fetch(self, assignment, node_id, request)
        if not has_new_data:
            rest = floor - (loop.time() - started)
            if rest > 0:
                try:
                    await asyncio.sleep(rest)
                except asyncio.CancelledError:  # close or unassignment: as aiokafka's own fetch does
                    return False
        return has_new_data

    setattr(fetch_with_floor, _MARK, True)
    return fetch_with_floor


# -- Faust: one delivery without tasks, batches taken from the queue in bulk ---------------
#
# faust-streaming 0.15.3 hands each fetched record to its stream through
# `Service.wait_first(callback(message), suspend_flow.wait())`: four tasks and an
# `asyncio.wait` per record, so that a rebalance can abort a delivery blocked on a full
# stream buffer.  The stream side then takes the records one event-loop turn each
# (`await sleep(0)` per record in the stream iterator) through `noack_take`'s buffering
# processor.  Measured in the worker: about a quarter of the event loop's time.
#
# `install_fast_delivery` changes both ends and keeps the semantics:
# - the fetcher runs each delivery eagerly (`start_eagerly`); one that completes without
#   suspending (the stream buffer had room: the usual case) costs no task.  One that
#   suspends (full buffer, paused flow, producer backlog) continues inside Faust's own
#   `wait_first`, so a rebalance (`suspend_flow`), a stop or a crash still aborts it.
# - `Stream.noack_take` on a plain stream (no processors, joins or combined streams: the
#   worker's agents) takes whole runs of events from the channel's queue at once
#   (`take_batches`); each event is tracked or counted exactly as Faust's stream iterator
#   does, and -- as with noack_take -- none is acked here: the agent acks each event after it
#   stored it.  Any other stream keeps Faust's noack_take.
#
# and closes three holes in Faust's offset bookkeeping (each would lose or stall acknowledged
# frames across a rebalance; seen in the scale-out run, tests in tests/test_kafka_compat.py):
# - a fetch that jumps ahead of the last read offset is read again from there once before the
#   offsets in between count as a gap (Faust counts a gap as acked at once);
# - an event of an older generation (or taken while the flow is stopped) is skipped without an
#   ack (Faust acks it: the group may then commit past it before the new generation's copy of it
#   is stored), and its partition is read again from the committed offset (a skipped event may
#   have been fetched after the new generation's seek: then nothing else delivers it again, and
#   the group's commit would wait for it for ever -- seen in the scale-out run);
# - the flow's `resume` clears the stream and changelog queues only when the flow was suspended
#   (`_clear_only_when_suspended`: Faust's recovery resumes twice per rebalance);
# - an offset acked twice counts once when the commit offset is computed (`_once_each`).

FAUST_VERSION = "0.15.3"  # the only faust-streaming whose internals these patches were written for
_FAST_MARK = "_trackpipe_fast_delivery"


class Resumed:
    """The rest of a coroutine that `start_eagerly` ran up to its first suspension; awaiting
    it (or wrapping it in a task) continues the coroutine exactly where it stopped."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation included: delivered to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def start_eagerly(coro: Coroutine[Any, Any, Any]) -> Resumed | None:
    """Run `coro` in the caller's task until it completes (None) or first suspends (the
    `Resumed` rest of it, to be awaited).  Its exceptions propagate to the caller."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return Resumed(coro, yielded)


def install_fast_delivery() -> bool:
    """Patch Faust's fetcher delivery and `Stream.noack_take` once; False (and logged) when the
    installed Faust is not the version they were written for."""
    try:
        import faust
        from faust import streams
        from faust.transport import consumer
    except ImportError:
        return False
    if getattr(consumer.Consumer._drain_messages, _FAST_MARK, False):
        return True
    if faust.__version__ != FAUST_VERSION:
        log.warning("faust-streaming %s, not %s: fast delivery not installed", faust.__version__, FAUST_VERSION)
        return False
    from faust.serializers.schemas import Schema
    from mode.utils.queues import FlowControlEvent

    consumer.Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    Schema.compile = _raw_as_is(Schema.compile)  # type: ignore[method-assign]
    FlowControlEvent.resume = _clear_only_when_suspended(FlowControlEvent.resume)  # type: ignore[method-assign]
    consumer.Consumer._new_offset = _once_each(consumer.Consumer._new_offset)  # type: ignore[method-assign]
    streams.Stream.noack_take = _noack_take(streams.Stream.noack_take)  # type: ignore[method-assign]
    return True


async def _drain_messages(self: Any, fetcher: Any) -> None:
    """Faust's `Consumer._drain_messages` (fetch, track read offsets and gaps, hand each record
    to the conductor), with each hand-over run eagerly instead of in four tasks, and two holes
    closed that lose or stall acknowledged offsets across a rebalance:

    - offsets missing between the last read and a fetched record are taken as a gap (Faust
      counts a gap as acked: the group commits past it) only once a fetch made after a seek
      back to the last read offset shows them missing again.  Faust takes them at once, but a
      fetch made before the rebalance's seek to the committed offsets can arrive after it: its
      records jump ahead, and the offsets in between were committed unprocessed (measured: 167
      of 8,630 positions never stored) or, read again, acked twice (the group's commits then
      crept on by one offset per commit).  A topic whose log really has a gap (compaction,
      transaction markers, retention) is re-read once.
    - a hand-over that a rebalance aborted does not count as read (Faust marks it read)."""
    callback = self.callback
    consumer_stopped = self._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    read_offset = self._read_offset
    acks_enabled_for = self.app.topics.acks_enabled_for
    fetching = _consumer_fetching()
    verified: dict[Any, int] = {}  # tp -> the read offset it was re-read from after a jump
    since_yield = 0
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            self.diag.set_flag(fetching)
            records = self.getmany(timeout=1.0)
            await self.sleep(0)  # getmany may return at once, again and again: let others run
            if self.should_stop:
                continue
            reread: set[Any] = set()  # partitions seeked back: the rest of this fetch is stale
            skipped = _skipped_partitions(self)
            while skipped:  # events the streams skipped unacked: read those partitions again
                tp = skipped.pop()
                committed = self._committed_offset.get(tp)
                if committed is None or tp not in self.assignment():
                    continue  # revoked, or not yet sought: the new assignment's seek reads it again
                log.info("%s: events skipped unacked (rebalance); reading again from %d", tp, committed)
                reread.add(tp)
                await self.seek(tp, committed)
            async for tp, message in records:
                if tp in reread:
                    continue
                since_yield += 1
                if since_yield > 100:
                    await asyncio.sleep(0)
                    since_yield = 0
                offset = message.offset
                last = read_offset[tp]
                if last is not None and offset < last:
                    self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                    continue
                if last and offset - last > 1 and acks_enabled_for(message.topic):
                    if verified.get(tp) != last:
                        log.info("%s: offset %d follows %d: reading again from %d", tp, offset, last, last)
                        verified[tp] = last
                        reread.add(tp)
                        await self.seek(tp, last)
                        continue
                    await self._add_gap(tp, last + 1, offset)
                if self._commit_every is not None and self._n_acked >= self._commit_every:
                    self._n_acked = 0
                    await self.commit()
                rest = start_eagerly(callback(message))
                if rest is not None:  # blocked (full buffer, paused flow): abortable as in Faust
                    waited = await self.wait_first(rest, self.suspend_flow.wait())
                    if rest not in waited.done:  # aborted by a rebalance or a stop: not read
                        break
                read_offset[tp] = offset
            self.diag.unset_flag(fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise


setattr(_drain_messages, _FAST_MARK, True)


def _raw_as_is(compile_schema: Callable[..., Any]) -> Callable[..., Any]:
    """Faust's `Schema.compile` (a topic's message -> event decoder), but for a topic whose key
    and value are raw bytes (the worker's: every topic is Avro or JSON it reads itself) the event
    is made from the message as it is.  Faust's decoder goes through its serializer registry for
    each of key and value (two codec lookups, a settings lookup, `want_bytes`) to return the same
    bytes: measured 0.66 s of 1.2 s in the per-record hand-over, per 30k records under cProfile."""

    @functools.wraps(compile_schema)
    def compile_fast(self: Any, app: Any, **kwargs: Any) -> Any:
        raw = "raw"
        if (
            self.key_type in (None, bytes)
            and self.value_type in (None, bytes)
            and (self.key_serializer or app.conf.key_serializer) == raw
            and (self.value_serializer or app.conf.value_serializer) == raw
        ):
            event_class = app.conf.Event  # what `app.create_event` looks up in the settings per event

            async def as_is(message: Any, *, propagate: bool = False) -> Any:
                return event_class(app, message.key, message.value, message.headers, message)

            return as_is
        return compile_schema(self, app, **kwargs)

    return compile_fast


def _once_each(new_offset: Callable[[Any, Any], int | None]) -> Callable[[Any, Any], int | None]:
    """Faust's `Consumer._new_offset` (the offset to commit: the end of the first run of
    consecutive acked offsets), on the acked offsets each counted once.  An offset acked twice
    (two copies of one record: one read before a rebalance, one after) breaks Faust's run in
    two, and the commit then moves on by one or two offsets per commit."""

    @functools.wraps(new_offset)
    def once_each(self: Any, tp: Any) -> int | None:
        acked = self._acked.get(tp)
        if acked and len(acked) > 1:
            acked[:] = sorted(set(acked))
        result = new_offset(self, tp)
        acked = self._acked.get(tp)
        if acked and len(acked) > 1:  # a gap Faust merged in may overlap acked offsets
            acked[:] = sorted(set(acked))
        return result

    return once_each


def _clear_only_when_suspended(resume: Callable[[Any], None]) -> Callable[[Any], None]:
    """mode's `FlowControlEvent.resume`, which clears every managed queue (each agent's stream
    buffer and the tables' changelog queue), clearing them only when the flow was suspended.
    Faust's recovery resumes the flow twice in one rebalance; the second clear threw away events
    fetched after the first: stream events read but never processed (the group's commit then
    waits for them for ever) and changelog events (the table recovery then never reaches its
    highwater and the worker never gets ready) -- both seen in the scale-out run."""

    @functools.wraps(resume)
    def clear_only_when_suspended(self: Any) -> None:
        if self._suspend.is_set():
            resume(self)  # suspended -> active: what was queued before the suspension goes
        else:
            self._resume.set()  # active already: nothing queued since is stale

    return clear_only_when_suspended


def _skipped_partitions(consumer: Any) -> set[Any]:
    """The partitions whose events a stream skipped without an ack (`_taker`), to be read again
    from the committed offset by `_drain_messages`: a skipped event's offset is already read, so
    nothing else would deliver it again, and the group's commit would wait for it for ever."""
    found: set[Any] | None = getattr(consumer, "_trackpipe_skipped", None)
    if found is None:
        found = set()
        consumer._trackpipe_skipped = found
    return found


def _consumer_fetching() -> str:
    from faust.transport.consumer import CONSUMER_FETCHING

    return CONSUMER_FETCHING


def _noack_take(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def noack_take(self: Any, max_: int, within: Any) -> Any:
        if not _plain(self):
            return original(self, max_, within)
        batches = take_batches(self, max_, within)
        self._active_agens.add(batches)  # closed by Stream.on_stop, as Faust's own take generators
        return batches

    setattr(noack_take, _FAST_MARK, True)
    return noack_take


def _plain(stream: Any) -> bool:
    """A stream whose events reach the caller unchanged: taken straight from its channel's queue."""
    from faust.types import ChannelT

    channel = stream.channel
    return (
        isinstance(channel, ChannelT)
        and not stream._processors
        and stream.join_strategy is None
        and not stream.combined
        and not stream._passive
        and stream._prev is None
    )


async def take_batches(stream: Any, max_: int, within: Any) -> AsyncGenerator[list[Any], None]:
    """`noack_take` for a plain stream: lists of up to `max_` events, each yielded once full or
    `within` seconds after the previous one (if not empty) -- with `within` 0, as soon as the
    queue is empty (under load the queue fills while the caller works on the last batch: batches
    grow by themselves, and an event idle traffic brings waits for nothing); events are not acked
    here."""
    from mode.utils.times import want_seconds

    channel = stream.channel.__aiter__()
    queue = channel.queue
    timeout = None if within is None else want_seconds(within)
    at_once = timeout == 0  # within 0: what the queue holds is a batch as soon as it holds one
    loop = asyncio.get_running_loop()
    enable_acks = stream.enable_acks
    stream.enable_acks = False
    stream._finalized = True
    started = await stream.maybe_start()
    take = _taker(stream)

    async def collect(batch: list[Any]) -> bool:
        """Fill `batch`; True once the channel ended (Faust throws StopAsyncIteration into its
        queue when the stream stops: inside an async generator that would be a RuntimeError)."""
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while len(batch) < max_:
                while len(batch) < max_ and not queue.empty():
                    event = take(queue.get_nowait())  # raises what was thrown into the channel
                    if event is not None:
                        batch.append(event)
                if len(batch) >= max_ or (at_once and batch):
                    break
                left = None if deadline is None or at_once else deadline - loop.time()
                if left is not None and left <= 0:
                    break
                waited = await stream.wait_first(queue.get(), timeout=left)
                if not waited.results:  # `within` passed, or the stream stops
                    break
                event = take(waited.results[0])
                if event is not None:
                    batch.append(event)
        except StopAsyncIteration:
            return True
        return False

    try:
        while not stream.should_stop:
            batch: list[Any] = []
            ended = await collect(batch)
            if batch:
                yield batch
            if ended:
                return
    finally:
        stream.enable_acks = enable_acks
        stream._channel_stop_iteration(channel)
        if started:
            await stream.stop()
            stream.service_reset()


def _taker(stream: Any) -> Callable[[Any], Any]:
    """What Faust's stream iterator does with each event it takes off the queue: skip it when
    the flow is stopped or it is from an older generation, else track its message as unacked
    and count it.  Returns the event, or None when skipped.  Unlike Faust, a skipped event is
    not acked: its partition is read again from the committed offset in the new generation, and
    an ack of the old copy would let the group commit past the offset before the new copy is
    stored (a crash in between would lose it)."""
    from faust.types import EventT

    app = stream.app
    consumer = app.consumer
    acking_topics = app.topics._acking_topics
    skipped = _skipped_partitions(consumer)
    add_unacked = consumer._unacked_messages.add
    flow_active = app.flow_control.is_active
    on_message_in = stream._on_message_in
    on_stream_event_in = stream._on_stream_event_in

    def take(event: Any) -> Any:
        if not isinstance(event, EventT):  # not from a topic: passed on as it is
            return event
        message = event.message
        if not flow_active() or message.generation_id != app.consumer_generation_id:
            if message.topic in acking_topics:
                skipped.add(message.tp)  # read again from the committed offset (`_drain_messages`)
            return None
        if message.topic in acking_topics and not message.tracked:
            message.tracked = True
            add_unacked(message)
            on_message_in(message.tp, message.offset, message)
        on_stream_event_in(message.tp, message.offset, stream, event)
        stream.events_total += 1
        return event

    return take
