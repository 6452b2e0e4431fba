"""The embedded broker stays bounded: `trackpipe run` trims the delete-policy topics behind the
worker's committed offsets (keeping TRACKPIPE_BROKER_KEEP records per partition), the compacted
ones (the rule-state changelog: a record per device per batch) are compacted, and nothing
acknowledged is lost by it.  The hour-long soak with memory figures is `make chaos ARGS="--soak 60"`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from trackpipe.chaos import REPLY_TIMEOUT, Load, settle, supervisor_state, wait
from trackpipe.launcher import Pipeline, start_pipeline, stop_pipeline

pytestmark = pytest.mark.e2e

KEEP = 300  # per partition of tracker.positions
KEEP_STORED = 150  # per partition of tracker.raw, behind the worker's committed offset
SEGMENT = 8 * 1024  # compacted topics' segment.bytes here (`trackpipe run`'s default is 1 MiB)


async def _read_all(bootstrap: str, topic: str) -> tuple[int, set[bytes]]:
    """Every record the topic holds now, and its keys."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    count, keys = 0, set()
    try:
        while batches := await consumer.getmany(timeout_ms=2000):
            for messages in batches.values():
                count += len(messages)
                keys.update(m.key for m in messages)
    finally:
        await consumer.stop()
    return count, keys


async def _offsets(bootstrap: str, topic: str, partitions: int) -> tuple[dict[int, int], dict[int, int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: o for tp, o in begins.items()}, {tp.partition: o for tp, o in ends.items()}


def test_topics_trimmed_behind_the_worker_and_nothing_lost(tmp_path: Path) -> None:
    env = {
        "TRACKPIPE_BROKER_KEEP": str(KEEP),
        "TRACKPIPE_BROKER_KEEP_STORED": str(KEEP_STORED),
        "TRACKPIPE_BROKER_TRIM_INTERVAL": "1",
        "TRACKPIPE_COMPACT_SEGMENT_BYTES": str(SEGMENT),
    }
    p = start_pipeline(tmp_path / "trim", extra_env=env)
    try:
        _load_and_check(p)
    finally:
        _took, code, alive = stop_pipeline(p)
        assert not alive and code == 0


def _load_and_check(p: Pipeline) -> None:
    load = Load(devices=20, rate=25.0)
    thread = load.start(p)
    try:
        wait("frames acknowledged", lambda: len(load.acked) >= 6000, 120, load.summary)
        wait("records trimmed", lambda: supervisor_state(p).get("trimmed", 0) > 0, 60)
    finally:
        load.stop.set()
        thread.join(REPLY_TIMEOUT + 5)
    stored = settle(p, load)
    time.sleep(2.5)  # one more trim round after the last commit
    settings = p.settings
    for name, keep in (("raw", KEEP_STORED), ("positions", KEEP)):
        begins, ends = asyncio.run(_offsets(p.bootstrap(), settings.topic(name), settings.partitions))
        kept = {part: ends[part] - begins[part] for part in ends}
        print(f"{name}: begins {begins}, ends {ends}")
        assert sum(ends.values()) > 4 * KEEP * settings.partitions, "too few records to show trimming"
        assert all(n <= keep + 200 for n in kept.values()), f"{name} not trimmed to ~{keep}: {kept}"
    state = (p.data_dir / "kafka" / "kafka.json").stat().st_size
    trimmed = supervisor_state(p)["trimmed"]
    print(f"acked {len(load.acked)}, stored {stored[0]}, kafka.json {state} bytes, trimmed {trimmed}")
    assert stored[0] == len(load.acked), "acknowledged frames missing from positions"
    assert stored[1] == stored[2]
    changelog = settings.changelog("rule_state")
    _, ends = asyncio.run(_offsets(p.bootstrap(), changelog, settings.partitions))
    held, keys = asyncio.run(_read_all(p.bootstrap(), changelog))
    print(f"{changelog}: {sum(ends.values())} records written, {held} held for {len(keys)} devices")
    assert len(keys) == load.devices, "a device's rule state is missing from its changelog"
    assert sum(ends.values()) > 500, "too few state writes to show compaction"
    assert held < sum(ends.values()) / 3, "the rule-state changelog was not compacted"
