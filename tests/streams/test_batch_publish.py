"""The decode agent's building blocks: `process` asks the registry once per device per frame,
`Batch` gathers a batch's rows for one INSERT per table, and `produce_batches` (streams.app)
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
    from trackpipe.streams.app import produce_batches

    topic = "batched"
    keys = [f"dev-{n}".encode() for n in range(25)]
    messages = [(keys[i % 25], f"{i}:".encode() + b"x" * (i % 50)) for i in range(3000)]
    messages.insert(1500, (keys[3], b"big:" + b"y" * 4000))  # larger than a whole batch

    async def run() -> list[Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1024)
        await producer.start()
        try:
            sent = await produce_batches(producer, topic, messages)
            assert len(sent) < len(messages) / 5  # batches, not one future per message
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        return await _consume_all(bootstrap, topic, len(messages))

    got = asyncio.run(run())
    assert sorted((m.key, m.value) for m in got) == sorted(messages)
    partitioner = DefaultPartitioner()
    for m in got:
        assert m.partition == partitioner(m.key, [0, 1, 2, 3], [0, 1, 2, 3])
    for key in keys:  # one key's messages keep their order
        assert [m.value for m in sorted(got, key=lambda m: m.offset) if m.key == key] == [
            v for k, v in messages if k == key
        ]
