"""The decode agent's building blocks: `process` asks the registry once per device per frame,
`Batch` gathers a batch's rows for one INSERT per table, and `produce_batches` (trackpipe.produce)
puts every message on its key's partition, in order, through a real embedded broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from trackpipe.streams.process import Batch, process

from trackpipe.bench_worker import mix
from trackpipe.broker import start_embedded
from trackpipe.procs import stop


def test_one_registry_lookup_per_device_per_frame() -> None:
    asked: Counter[str] = Counter()

    def lookup(device_id: str) -> dict[str, Any]:
        asked[device_id] += 1
        return {"name": "Truck", "account": "acme", "options": {}}

    for _, raw in mix(40):
        asked.clear()
        out = process(raw, lookup)
        assert out.status is not None and out.status["registered"]
        assert set(asked.values()) == {1}, (raw["protocol"], asked)


def test_batch_gathers_rows_latest_status_and_sources() -> None:
    records = mix(1000, devices=10)
    batch = Batch()
    for key, raw in records:
        batch.add(raw, process(raw, lambda _: None), key)
    tables = dict(batch.tables())
    assert len(tables["positions"]) == sum(1 for _, r in records if r["kind"] != "heartbeat")
    assert tables["events"] and all(e["alarm"] == "sos" for e in tables["events"])
    assert len(tables["device_status"]) == 10  # one row per device: its latest contact
    last = {raw["device_id"]: raw for _, raw in records}
    for row in tables["device_status"]:
        assert batch.sources[id(row)] is last[row["device_id"]]
    for row in tables["positions"] + tables["events"]:
        assert batch.sources[id(row)]["device_id"] == row["device_id"]


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("kafka")
    broker, address = start_embedded(root / "data", log_file=root / "broker.log")
    try:
        yield address
    finally:
        stop(broker, 5)


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def _consume_all(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < expected:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    got += messages
    finally:
        await consumer.stop()
    return got


def test_every_message_on_its_keys_partition_in_order(bootstrap: str) -> None:
    from trackpipe.produce import produce_batches

    topic = "batched"
    keys = [f"dev-{n}".encode() for n in range(25)]
    messages = [(keys[i % 25], f"{i}:".encode() + b"x" * (i % 50)) for i in range(3000)]
    messages.insert(1500, (keys[3], b"big:" + b"y" * 4000))  # larger than a whole batch

    async def run() -> list[Any]:
        await _create_topic(bootstrap, topic, 4)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1024)
        await producer.start()
        try:
            sent = await produce_batches(producer, topic, messages)
            assert len(sent) == len(messages)  # each message's confirmation ...
            batches = {batch for batch, _ in sent}
            assert len(batches) < len(messages) / 5  # ... is its batch's, not one future per message
            await asyncio.gather(*batches)
            offsets = [
                (m, b.result().partition, b.result().offset + place)
                for m, (b, place) in zip(messages, sent, strict=True)
            ]
        finally:
            await producer.stop()
        got = await _consume_all(bootstrap, topic, len(messages))
        # each message's own offset: its batch's plus its place in it
        assert sorted((k, v, p, o) for (k, v), p, o in offsets) == sorted(
            (m.key, m.value, m.partition, m.offset) for m in got
        )
        return got

    got = asyncio.run(run())
    assert sorted((m.key, m.value) for m in got) == sorted(messages)
    partitioner = DefaultPartitioner()
    for m in got:
        assert m.partition == partitioner(m.key, [0, 1, 2, 3], [0, 1, 2, 3])
    for key in keys:  # one key's messages keep their order
        assert [m.value for m in sorted(got, key=lambda m: m.offset) if m.key == key] == [
            v for k, v in messages if k == key
        ]


def test_the_edge_publisher_batches_what_connections_send_in_one_turn(bootstrap: str, tmp_path: Path) -> None:
    """Records sent by many connections in one loop turn go out in shared batches, and each
    record's confirmation carries its own offset: the spool keeps them by offset, and an offset
    confirmed twice would read as a broker that lost data."""
    from trackpipe.edge.publisher import Publisher
    from trackpipe.edge.spool import Spool

    topic = "edge-batched"

    async def run() -> tuple[list[Any], list[Any], Any]:
        await _create_topic(bootstrap, topic, 3)
        publisher = Publisher(bootstrap, timeout=10.0, spool=Spool(tmp_path / "spool"), group="g")
        await publisher.start(wait=True)
        try:

            async def connection(n: int) -> list[tuple[bytes, bytes, Any]]:
                key = f"dev-{n}".encode()
                futures = [
                    (key, b"%d:%d" % (n, i), await publisher.send(topic, b"%d:%d" % (n, i), key)) for i in range(5)
                ]
                async with publisher.deadline():
                    for _, _, future in futures:
                        await publisher.confirm(future)
                return futures

            sent = [f for one in await asyncio.gather(*(connection(n) for n in range(40))) for f in one]
            lost = publisher.keeper._lost if publisher.keeper is not None else None
        finally:
            await publisher.stop()
        return sent, await _consume_all(bootstrap, topic, len(sent)), lost

    sent, got, lost = asyncio.run(run())
    confirmed = sorted((k, v, f.result().partition, f.result().offset) for k, v, f in sent)
    assert confirmed == sorted((m.key, m.value, m.partition, m.offset) for m in got)
    assert lost is False
    assert len({(f.result().partition, f.result().offset) for _, _, f in sent}) == len(sent) == 200


def test_partition_of_is_kafkas_default_partitioner_also_once_the_cache_is_full(monkeypatch: Any) -> None:
    import random

    from aiokafka.partitioner import DefaultPartitioner

    from trackpipe import produce

    monkeypatch.setattr(produce, "HASHES_KEPT", 50)
    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24))) for _ in range(400)]
    for count in (1, 3, 4, 12):
        partitions = list(range(count))
        for key in keys + keys:  # the second time from the cache (or after it was cleared)
            assert produce.partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert len(produce._HASHES) <= 50
    assert produce.partition_of(None, [0, 1, 2]) in (0, 1, 2)
