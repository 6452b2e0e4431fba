"""Kafka producer for the edge: `acks=all`, and a frame counts as durable only
when its send future resolved.  While Kafka is unreachable `publish` waits up to
`publish_timeout` and then fails, so the edge never acknowledges a device's data
that is not safe yet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = logging.getLogger("trackpipe.edge.kafka")


class KafkaUnavailable(Exception):
    pass


class Publisher:
    def __init__(self, bootstrap: str, timeout: float, **producer_options: Any) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self._options = {"acks": "all", "linger_ms": 5, "request_timeout_ms": int(timeout * 1000)} | producer_options
        self._producer: AIOKafkaProducer | None = None
        self._ready = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, wait: bool = False) -> None:
        """Connect in the background (retrying while Kafka is down)."""
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

    async def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
        """Hand one record to the producer; the returned future resolves once Kafka confirmed it.
        (aiokafka bounds this wait itself by request_timeout_ms, our publish timeout.)"""
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._ready.wait()
            except TimeoutError:
                raise KafkaUnavailable(f"kafka {self.bootstrap} not reachable") from None
        assert self._producer is not None
        try:
            return await self._producer.send(topic, value, key=key)
        except KafkaError as exc:
            raise KafkaUnavailable(f"kafka refused the record: {exc!r}") from exc

    @contextlib.asynccontextmanager
    async def deadline(self) -> AsyncIterator[None]:
        """Bound the confirmations awaited inside by the publish timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError:
            raise KafkaUnavailable("kafka did not confirm in time") from None

    async def confirm(self, future: asyncio.Future[Any]) -> None:
        """Wait for Kafka's confirmation of one record (inside `deadline`)."""
        try:
            await future
        except Exception as exc:
            raise KafkaUnavailable(f"kafka refused the record: {exc!r}") from exc

    async def stop(self) -> None:
        self._stopping = True
        if self._starter is not None:
            self._starter.cancel()
            try:
                await self._starter
            except (asyncio.CancelledError, Exception):
                pass
        if self._producer is not None:
            await self._producer.stop()
