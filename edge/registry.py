"""Which device ids are registered, as the edge sees it (`TRACKPIPE_UNREGISTERED=reject`).

The registry is the compacted `tracker.devices` topic (`trackpipe devices add/remove`).  The edge
keeps only the set of ids: one aiokafka consumer assigned to every partition, reading from the
beginning and then following the topic (a record adds its key, a tombstone removes it).  `start`
returns once everything the topic held at that moment is read, so a restarted edge never refuses
a registered device; afterwards a device registered or removed takes effect within the consumer's
fetch wait (well under a second).  100k ids cost a few MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger("trackpipe.edge.registry")

START_TIMEOUT = 30.0  # s to read the whole topic once at start


class RegistryUnavailable(Exception):
    """The registry could not be read at start (Kafka unreachable, or too slow)."""


class RegisteredIds:
    """The registered device ids, followed from the compacted devices topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.ids: set[str] = set()
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, device_id: str) -> bool:
        return device_id in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        try:
            await asyncio.wait_for(consumer.start(), timeout)
            partitions = await asyncio.wait_for(self._partitions(consumer), timeout)
        except Exception as exc:
            await consumer.stop()
            raise RegistryUnavailable(f"device registry {self.topic} on {self.bootstrap} not readable: {exc}") from exc
        self._consumer = consumer
        if not partitions:  # no registry topic yet: nobody is registered
            log.warning("registry topic %s does not exist: every device counts as unregistered", self.topic)
            self.caught_up.set()
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        self._task = asyncio.get_running_loop().create_task(self._follow(consumer, ends))
        try:
            await asyncio.wait_for(self.caught_up.wait(), timeout)
        except TimeoutError:
            await self.stop()
            raise RegistryUnavailable(f"device registry {self.topic}: not read whole within {timeout:.0f}s") from None
        log.info("device registry read: %d registered device(s)", len(self.ids))

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        if self.topic not in await consumer.topics():
            return []
        return [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]

    async def _follow(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        behind = {tp: end for tp, end in ends.items() if end > 0}
        if not behind:
            self.caught_up.set()
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away for a while: keep the ids we have, try again
                log.warning("device registry: %s; retrying", exc)
                await asyncio.sleep(1.0)
                continue
            for tp, messages in batches.items():
                for message in messages:
                    self.apply(message.key, message.value)
                if tp in behind and messages and messages[-1].offset + 1 >= behind[tp]:
                    del behind[tp]
            if behind:  # a partition whose last records were compacted away: ask where it is
                for tp in list(behind):
                    if await consumer.position(tp) >= behind[tp]:
                        del behind[tp]
            if not behind and not self.caught_up.is_set():
                self.caught_up.set()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One registry record: a value registers its key, a tombstone removes it."""
        if not key:
            return
        device_id = key.decode(errors="replace")
        if value is None:
            self.ids.discard(device_id)
        else:
            self.ids.add(device_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
