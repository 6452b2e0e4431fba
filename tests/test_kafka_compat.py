"""The patches of `trackpipe.kafka_compat`: the empty-fetch floor around aiokafka's per-node
fetch, and Faust's eager delivery and bulk `noack_take` (each a unit test of one function)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka.consumer import fetcher

from trackpipe import kafka_compat


def test_installs_on_the_pinned_aiokafka_once() -> None:
    assert kafka_compat.install()
    wrapped = fetcher.Fetcher._proc_fetch_request
    assert getattr(wrapped, kafka_compat._MARK)
    assert kafka_compat.install()  # idempotent: never wraps twice
    assert fetcher.Fetcher._proc_fetch_request is wrapped


def test_empty_answer_waits_out_the_floor_data_does_not() -> None:
    answers = iter([False, True])

    async def fetch(self, assignment, node_id, request) -> bool:
        return next(answers)

    patched = kafka_compat.with_floor(fetch, floor=0.2)

    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await patched(None, None, 1, None) is False
        t1 = loop.time()
        assert await patched(None, None, 1, None) is True
        return t1 - t0, loop.time() - t1

    empty, full = asyncio.run(run())
    assert empty >= 0.19  # an immediate empty answer is held until the floor
    assert full < 0.1  # new data is handed over at once


def test_cancelled_wait_returns_like_aiokafka() -> None:
    async def fetch(self, assignment, node_id, request) -> bool:
        return False

    patched = kafka_compat.with_floor(fetch, floor=5.0)

    async def run() -> bool:
        task = asyncio.ensure_future(patched(None, None, 1, None))
        await asyncio.sleep(0.05)
        task.cancel()
        return await task

    assert asyncio.run(run()) is False


# -- Faust: eager delivery from the fetcher, bulk takes for noack_take ----------------------


def test_installs_the_faust_patches_once() -> None:
    from faust import streams
    from faust.transport import consumer

    assert kafka_compat.install_fast_delivery()
    drain, take = consumer.Consumer._drain_messages, streams.Stream.noack_take
    assert getattr(drain, kafka_compat._FAST_MARK) and getattr(take, kafka_compat._FAST_MARK)
    assert kafka_compat.install_fast_delivery()
    assert consumer.Consumer._drain_messages is drain and streams.Stream.noack_take is take


def test_resuming_a_flow_that_is_active_already_keeps_what_is_queued() -> None:
    kafka_compat.install_fast_delivery()
    from mode.utils.queues import FlowControlEvent, FlowControlQueue

    async def run() -> tuple[bool, int, bool]:
        flow = FlowControlEvent()
        flow.resume()
        queue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        queue.put_nowait("before the rebalance")
        flow.suspend()
        flow.resume()  # suspended -> active: what was queued before goes (read again after the seek)
        cleared = queue.empty()
        queue.put_nowait("fetched after the resume")
        flow.resume()  # Faust's recovery resumes again: mode cleared the queue, losing the event
        return cleared, queue.qsize(), flow.is_active()

    assert asyncio.run(run()) == (True, 1, True)


def test_start_eagerly_runs_a_coroutine_that_never_suspends_in_the_callers_task() -> None:
    async def run() -> list[object]:
        ran_in: list[object] = []

        async def deliver() -> None:
            ran_in.append(asyncio.current_task())

        assert kafka_compat.start_eagerly(deliver()) is None
        return [asyncio.current_task(), *ran_in]

    caller, ran_in = asyncio.run(run())
    assert ran_in is caller


def test_the_rest_of_a_suspended_coroutine_continues_or_is_cancelled_where_it_stopped() -> None:
    async def run() -> tuple[object, list[str], list[str]]:
        steps: list[str] = []
        gate = asyncio.Event()

        async def deliver(tag: str) -> str:
            steps.append(f"{tag} start")
            try:
                await gate.wait()
            except asyncio.CancelledError:
                steps.append(f"{tag} cancelled")
                raise
            steps.append(f"{tag} end")
            return tag

        rest = kafka_compat.start_eagerly(deliver("a"))
        assert rest is not None and steps == ["a start"]  # ran up to its first suspension
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0.01)
        gate.set()
        result = await task
        done = list(steps)

        steps.clear()
        gate.clear()
        blocked = asyncio.ensure_future(kafka_compat.start_eagerly(deliver("b")))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        blocked.cancel()
        try:
            await blocked
        except asyncio.CancelledError:
            pass
        return result, done, list(steps)

    result, done, aborted = asyncio.run(run())
    assert result == "a" and done == ["a start", "a end"]
    assert aborted == ["b start", "b cancelled"]


class _Fetched:
    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.offset, self.key, self.value = topic, offset, b"k", b"v"


def _consumer(fetches: list[list[_Fetched]], callback: Any) -> tuple[Any, Any]:
    """A mode Service with just what `_drain_messages` reads of Faust's Consumer: one fetch per
    list in `fetches`, after which the fetcher stops; `seek` as Faust's (the read offset set)."""
    from mode import Service

    fetcher = Service()

    class Consumer(Service):
        consumer_stopped_errors = ()

        def __init__(self) -> None:
            super().__init__()
            self.callback = callback
            self._read_offset: dict[str, int | None] = defaultdict(lambda: None)
            self._commit_every = None
            self._n_acked = 0
            self.suspend_flow = asyncio.Event()
            self.gaps: list[tuple[int, int]] = []
            self.seeks: list[tuple[str, int]] = []
            self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True))
            self.transport = SimpleNamespace(app=SimpleNamespace(should_stop=False))
            self.fetches = list(fetches)
            self._committed_offset: dict[str, int] = {}
            self.assigned = {"tp"}

        def assignment(self) -> set[str]:
            return self.assigned

        async def getmany(self, timeout: float) -> Any:
            records = self.fetches.pop(0)
            if not self.fetches:
                fetcher._stopped.set()
            for record in records:
                yield "tp", record

        async def seek(self, tp: str, offset: int) -> None:
            self.seeks.append((tp, offset))
            self._read_offset[tp] = offset

        async def _add_gap(self, tp: str, first: int, last: int) -> None:
            self.gaps.append((first, last))

    return Consumer(), fetcher


def _drain(
    fetches: list[list[int]], callback: Any, rebalance_after: float | None = None, prepare: Any = None
) -> tuple[Any, Any]:
    from faust.transport.consumer import Consumer

    kafka_compat.install_fast_delivery()

    async def run() -> tuple[Any, Any]:
        consumer, fetcher = _consumer([[_Fetched("raw", n) for n in fetch] for fetch in fetches], callback)
        if prepare is not None:
            prepare(consumer)
        if rebalance_after is not None:
            asyncio.get_running_loop().call_later(rebalance_after, consumer.suspend_flow.set)
        drain = asyncio.ensure_future(Consumer._drain_messages(consumer, fetcher))
        await asyncio.wait_for(drain, 5)
        return consumer, drain

    return asyncio.run(run())


def test_drain_delivers_in_order_in_its_own_task_and_a_rebalance_aborts_a_blocked_delivery() -> None:
    delivered: list[tuple[int, str]] = []
    tasks: list[object] = []
    full = asyncio.Event()  # never set: the stream buffer stays full for offset 3

    async def callback(message: _Fetched) -> None:
        tasks.append(asyncio.current_task())
        if message.offset == 3:
            try:
                await full.wait()
            except asyncio.CancelledError:
                delivered.append((message.offset, "aborted"))
                raise
        delivered.append((message.offset, "delivered"))

    consumer, drain = _drain([[1, 2, 3, 4]], callback, rebalance_after=0.05)
    assert delivered == [(1, "delivered"), (2, "delivered"), (3, "aborted")]  # and the rest of that fetch not
    assert tasks[0] is tasks[1] is tasks[2] is drain  # no task per delivery that had room
    assert consumer._read_offset["tp"] == 2  # the aborted one is not read: Faust marked it read
    assert consumer.gaps == [] and consumer.seeks == []


def test_offsets_missing_after_the_last_read_are_read_again_before_they_count_as_a_gap() -> None:
    seen: list[int] = []

    async def callback(message: _Fetched) -> None:
        seen.append(message.offset)

    # a fetch made before a rebalance's seek jumps ahead (5): read again from 2, and 3, 4 come
    consumer, _ = _drain([[1, 2, 5, 6], [2, 3, 4, 5, 6]], callback)
    assert consumer.seeks == [("tp", 2)] and consumer.gaps == []
    assert seen == [1, 2, 2, 3, 4, 5, 6]  # 2 once more (its rows collapse, its ack counts once)

    # the log really has no 3, 4 (compaction, retention): re-read once, then a gap as in Faust
    seen.clear()
    consumer, _ = _drain([[1, 2, 5, 6], [5, 6, 7]], callback)
    assert consumer.seeks == [("tp", 2)] and consumer.gaps == [(3, 5)]
    assert seen == [1, 2, 5, 6, 7] and consumer._read_offset["tp"] == 7


def test_a_partition_whose_events_a_stream_skipped_is_read_again_from_the_committed_offset() -> None:
    seen: list[int] = []

    async def callback(message: _Fetched) -> None:
        seen.append(message.offset)

    def skipped_before(consumer: Any) -> None:
        consumer._committed_offset = {"tp": 10, "gone": 3}
        kafka_compat._skipped_partitions(consumer).update({"tp", "gone"})  # "gone": revoked since

    # 10 and 11 were taken off the queue and skipped unacked (a rebalance): read again from 10
    consumer, _ = _drain([[12, 13], [10, 11, 12, 13]], callback, prepare=skipped_before)
    assert consumer.seeks == [("tp", 10)]  # only the assigned partition, once
    assert seen == [10, 11, 12, 13]  # the fetch made before the seek is stale: not delivered
    assert not kafka_compat._skipped_partitions(consumer)


def test_an_offset_acked_twice_counts_once_in_the_commit() -> None:
    kafka_compat.install_fast_delivery()
    from faust.transport.consumer import Consumer

    tp = "tp"
    consumer = SimpleNamespace(_acked={tp: [5, 6, 6, 7, 7, 8]}, _gap=defaultdict(list), _committed_offset={tp: 5})
    consumer._acked_index = {tp: set(consumer._acked[tp])}
    assert Consumer._new_offset(consumer, tp) == 9  # Faust's own: 7 (the run 5, 6), then one more per commit
    assert consumer._acked[tp] == []


def _faust_app() -> Any:
    import faust

    app = faust.App("test-kafka-compat", broker="kafka://127.0.0.1:9", store="memory://")  # never connected
    app.flow_control.resume()
    return app


def _event(app: Any, offset: int, generation: int = 0) -> Any:
    from faust.types.tuples import ConsumerMessage

    message = ConsumerMessage("raw", 0, offset, 0.0, 0, None, b"k", b"v%d" % offset, None, generation_id=generation)
    return app.create_event(message.key, message.value, None, message)


def test_noack_take_on_a_plain_stream_takes_batches_tracked_and_unacked() -> None:
    kafka_compat.install_fast_delivery()

    async def run() -> tuple[list[list[bytes]], list[float], Any, list[Any]]:
        app = _faust_app()
        app.topics._acking_topics.add("raw")
        channel = app.channel()
        stream = app.stream(channel)
        batches: list[list[bytes]] = []
        times: list[float] = []
        events: list[Any] = []
        loop = asyncio.get_running_loop()
        taker = stream.noack_take(3, within=0.2)
        assert taker.ag_code is kafka_compat.take_batches.__code__  # the bulk path, not Faust's

        async def take() -> None:
            async for batch in taker:
                batches.append([event.value for event in batch])
                times.append(loop.time() - started)
                events.extend(batch)
                if sum(map(len, batches)) >= 6:
                    break

        task = asyncio.ensure_future(take())
        await asyncio.sleep(0.05)
        stale = _event(app, 3, generation=7)  # fetched before a rebalance: skipped, not acked (read again)
        started = loop.time()
        for offset in range(7):
            await channel.put(stale if offset == 3 else _event(app, offset))
        await asyncio.wait_for(task, 5)
        return batches, times, app.consumer, [stale, *events]

    batches, times, consumer, (stale, *events) = asyncio.run(run())
    assert batches == [[b"v0", b"v1", b"v2"], [b"v4", b"v5", b"v6"]]
    assert times[0] < 0.1  # full: at once
    # Faust acks it: the group could then commit past 3 before the new generation's copy is stored
    assert not stale.message.acked and not stale.message.tracked and stale.message not in consumer._unacked_messages
    assert all(e.message.tracked and not e.message.acked for e in events)  # acked by the caller, after storing
    assert all(e.message in consumer._unacked_messages for e in events)
    assert kafka_compat._skipped_partitions(consumer) == {stale.message.tp}  # to be read again


def test_noack_take_yields_a_partial_batch_within_the_interval() -> None:
    kafka_compat.install_fast_delivery()

    async def run() -> tuple[list[bytes], float]:
        app = _faust_app()
        channel = app.channel()
        stream = app.stream(channel)
        loop = asyncio.get_running_loop()

        async def first() -> list[bytes]:
            async for batch in stream.noack_take(100, within=0.2):
                return [event.value for event in batch]
            return []

        task = asyncio.ensure_future(first())
        await asyncio.sleep(0.02)
        started = loop.time()
        await channel.put(_event(app, 0))
        await channel.put(_event(app, 1))
        values = await asyncio.wait_for(task, 5)
        return values, loop.time() - started

    values, waited = asyncio.run(run())
    assert values == [b"v0", b"v1"]
    assert 0.1 < waited < 1.0


def test_noack_take_within_zero_yields_what_the_queue_holds_at_once() -> None:
    kafka_compat.install_fast_delivery()

    async def run() -> list[list[bytes]]:
        app = _faust_app()
        channel = app.channel()
        stream = app.stream(channel)
        batches: list[list[bytes]] = []

        async def two() -> None:
            async for batch in stream.noack_take(100, within=0):
                batches.append([event.value for event in batch])
                if len(batches) == 2:
                    return

        task = asyncio.ensure_future(two())
        await asyncio.sleep(0.02)
        for offset in range(3):  # one fetch's records: in the queue before the stream runs
            await channel.put(_event(app, offset))
        await asyncio.sleep(0.05)
        assert batches == [[b"v0", b"v1", b"v2"]]  # not held back to fill 100 (within=0 is no timeout)
        await channel.put(_event(app, 3))
        await asyncio.wait_for(task, 5)
        return batches

    assert asyncio.run(run()) == [[b"v0", b"v1", b"v2"], [b"v3"]]


def test_noack_take_on_a_stream_with_processors_stays_faust_s() -> None:
    kafka_compat.install_fast_delivery()

    async def run() -> Any:
        app = _faust_app()
        stream = app.stream(app.channel())
        stream.add_processor(lambda value: value)
        taker = stream.noack_take(3, within=0.2)
        code = taker.ag_code
        await taker.aclose()
        return code

    assert asyncio.run(run()) is not kafka_compat.take_batches.__code__


def test_a_raw_bytes_topic_makes_its_events_from_the_message_as_it_is() -> None:
    import faust
    from faust.types import TP, Message

    assert kafka_compat.install_fast_delivery()
    app = faust.App(
        "test-raw-decode", broker="kafka://127.0.0.1:9", store="memory://", key_serializer="raw", value_serializer="raw"
    )
    raw = app.topic("t-raw", key_type=bytes, value_type=bytes)
    as_json = app.topic("t-json", value_serializer="json")

    def message(topic: str, key: bytes | None, value: bytes | None) -> Message:
        return Message(topic, 0, 7, 1.5, 1, [(b"h", b"v")], key, value, None, tp=TP(topic, 0))

    async def main() -> None:
        for key, value in ((b"dev-1", b"\x00\x01avro"), (None, b"x"), (b"gone", None)):
            event = await raw.decode(message("t-raw", key, value))
            assert (event.key, event.value, event.message.offset) == (key, value, 7)
            assert list(event.headers) == [(b"h", b"v")] or event.headers == {b"h": b"v"}
        event = await as_json.decode(message("t-json", b"k", b'{"a": 1}'))  # not raw: Faust's own decoder
        assert event.value == {"a": 1}

    asyncio.run(main())
