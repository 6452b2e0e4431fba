"""A TCP connection's acks follow Kafka's confirmations (`Publisher.submit` calls back; no task
per frame): in frame order, one write per settled batch, nothing acked after a failure, a close
asked for while frames are unconfirmed waits for them; and the publisher's watchdog fails a batch
Kafka never confirms.  Fake transport and publisher (unit tests of the callbacks)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from trackpipe.edge.publisher import KafkaUnavailable, Publisher, _Batch
from trackpipe.edge.server import Edge, TcpConnection
from trackpipe.protocols import gt06
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from trackpipe.config import Settings
from trackpipe.simulate import track

from .test_limits import _Transport

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class _Held:
    """Keeps every submitted record until the test settles it."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Any, Any]] = []  # topic, sender, token

    def submit(self, topic: str, key: bytes | None, value: bytes, sender: Any, token: Any) -> None:
        self.records.append((topic, sender, token))

    def settle(self, indexes: list[int], error: Exception | None = None) -> None:
        senders = []
        for i in indexes:
            _, sender, token = self.records[i]
            sender.record_done(token, error, 0 if error is None else -1, i if error is None else -1)
            senders.append(sender)
        for sender in dict.fromkeys(senders):
            sender.records_done()


def _logged_in(**settings: Any) -> tuple[TcpConnection, _Transport, _Held, Gt06Device]:
    held = _Held()
    edge = Edge(dataclasses.replace(Settings(), **settings), held)  # type: ignore[arg-type]
    conn = TcpConnection(edge)
    transport = _Transport()
    device = Gt06Device("359710049000777", "tcp")
    login = device.login()[0]
    conn.connection_made(transport)  # inside a running loop (the test's `_running`)
    conn.data_received(login)
    held.settle([0])
    assert transport.written == gt06.CODEC.inspect(login, "tcp").reply
    transport.written.clear()
    return conn, transport, held, device


def _running(test: Any) -> Any:
    """Run the test's body inside an event loop (the connection reads the loop's clock)."""

    def run() -> None:
        async def body() -> None:
            test()

        asyncio.run(body())

    run.__name__ = test.__name__
    return run


def _positions(device: Gt06Device, n: int) -> list[bytes]:
    return [device.position(track(7, k, NOW + timedelta(seconds=k))) for k in range(n)]


def _reply(frame: bytes) -> bytes:
    return gt06.CODEC.inspect(frame, "tcp").reply or b""


@_running
def test_acks_go_in_frame_order_once_everything_before_is_confirmed() -> None:
    conn, transport, held, device = _logged_in()
    frames = _positions(device, 4)
    conn.data_received(b"".join(frames))
    assert len(held.records) == 5 and transport.written == b""
    held.settle([2, 3])  # the 2nd and 3rd position confirmed first: nothing may be acked yet
    assert transport.written == b""
    held.settle([1])  # the 1st: the first three acks go, in order
    assert bytes(transport.written) == b"".join(_reply(f) for f in frames[:3])
    held.settle([4])
    assert bytes(transport.written) == b"".join(_reply(f) for f in frames)
    assert conn._queue is None and not transport.closed  # idle again: no queue kept


@_running
def test_a_failed_record_closes_the_connection_and_nothing_after_it_is_acked() -> None:
    conn, transport, held, device = _logged_in()
    frames = _positions(device, 3)
    conn.data_received(b"".join(frames))
    held.settle([3])  # the last is confirmed, the one before fails: only the first may be acked
    held.settle([2], KafkaUnavailable("kafka did not confirm in time"))
    assert transport.written == b"" and not transport.closed
    held.settle([1])
    assert bytes(transport.written) == _reply(frames[0])
    assert transport.closed and conn.edge.stats.closed.get("kafka unavailable") == 1


@_running
def test_a_close_waits_for_the_unconfirmed_frames() -> None:
    conn, transport, held, device = _logged_in()
    frames = _positions(device, 2)
    conn.data_received(b"".join(frames))
    conn.close("idle timeout: test")
    assert not transport.closed  # two frames still unconfirmed
    held.settle([1])
    assert not transport.closed
    held.settle([2])
    assert bytes(transport.written) == b"".join(_reply(f) for f in frames)  # both acked, then closed
    assert transport.closed


class _Told:
    def __init__(self) -> None:
        self.outcomes: list[tuple[Any, Exception | None]] = []
        self.settled = 0

    def record_done(self, token: Any, error: Exception | None, partition: int, offset: int) -> None:
        self.outcomes.append((token, error))

    def records_done(self) -> None:
        self.settled += 1


def test_the_watchdog_fails_a_batch_kafka_never_confirmed() -> None:
    async def run() -> tuple[_Told, Publisher]:
        publisher = Publisher("127.0.0.1:9", timeout=0.3)
        told = _Told()
        stale, fresh = _Batch("t", time.monotonic() - 1), _Batch("t", time.monotonic() + 60)
        stale.members += [(0, b"k", b"v0", told, "a"), (1, b"k", b"v1", told, "b")]
        fresh.members.append((0, b"k", b"v2", told, "c"))
        publisher._unsettled.extend([stale, fresh])
        publisher._watch()
        assert publisher._watcher is not None  # the fresh one is still watched
        publisher._watcher.cancel()
        return told, publisher

    told, publisher = asyncio.run(run())
    assert [token for token, _ in told.outcomes] == ["a", "b"] and told.settled == 1
    assert all(isinstance(error, KafkaUnavailable) for _, error in told.outcomes)
    assert publisher.last_error == "kafka did not confirm in time"
    assert list(publisher._unsettled) and not publisher._unsettled[0].settled
