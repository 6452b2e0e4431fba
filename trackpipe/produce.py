"""Batch produce, shared by the edge and the worker: one produce batch per partition instead of
one `send` (coroutine, partitioner call, accumulator entry and future) per record.

Each message goes to its key's partition as Kafka's default partitioner places it (murmur2 of
the key: the same partition `AIOKafkaProducer.send` would choose, so consumers' co-partitioning
holds), in order within a partition.  A message larger than a whole batch goes alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2

partitioner = DefaultPartitioner()  # Faust's producer uses it too (no producer_partitioner set)

#: key -> murmur2(key) & 0x7FFFFFFF.  Keys are device ids, and a device's id recurs every few
#: seconds on every topic the worker publishes to: its pure-Python hash is worth keeping.
_HASHES: dict[bytes, int] = {}
HASHES_KEPT = 1 << 18  # then forgotten all at once (a bound, not an LRU: refilled at one hash per key)


def partition_of(key: bytes | None, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner gives `key` among `partitions` (sorted)."""
    if key is None:
        return partitioner(key, partitions, partitions)
    hashed = _HASHES.get(key)
    if hashed is None:
        if len(_HASHES) >= HASHES_KEPT:
            _HASHES.clear()
        hashed = _HASHES[key] = murmur2(key) & 0x7FFFFFFF
    return partitions[hashed % len(partitions)]


async def produce_batches(
    kafka: AIOKafkaProducer, topic: str, messages: list[tuple[bytes | None, bytes]]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Hand `messages` (key, value) to the producer in batches; returns, for each message in
    order, the future of the batch it went in (resolved once Kafka confirmed the batch; messages
    of one batch share it) and its place in that batch: its offset is the batch's (the
    confirmation's `offset`) plus that place."""
    partitions = sorted(await kafka.partitions_for(topic))
    by_partition: dict[int, list[int]] = {}
    for index, (key, _) in enumerate(messages):
        by_partition.setdefault(partition_of(key, partitions), []).append(index)
    futures: list[Any] = [None] * len(messages)
    for partition, indexes in by_partition.items():
        batch = kafka.create_batch()
        members: list[int] = []
        for index in indexes:
            key, value = messages[index]
            if batch.append(key=key, value=value, timestamp=None) is None:  # full (now closed): send it
                if members:
                    sent = await kafka.send_batch(batch, topic, partition=partition)
                    for place, member in enumerate(members):
                        futures[member] = (sent, place)
                batch, members = kafka.create_batch(), []
                if batch.append(key=key, value=value, timestamp=None) is None:  # larger than a batch
                    futures[index] = (await kafka.send(topic, value, key=key, partition=partition), 0)
                    batch = kafka.create_batch()
                    continue
            members.append(index)
        if members:
            sent = await kafka.send_batch(batch, topic, partition=partition)
            for place, member in enumerate(members):
                futures[member] = (sent, place)
    return futures
