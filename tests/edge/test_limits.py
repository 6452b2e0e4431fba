"""The edge's abuse bounds, without sockets: rate limiters, the deadline wheel, the
per-frame deadline of a trickling connection and the dead-letter bound per connection."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from trackpipe.edge.server import DeadlineWheel, Edge, LogLimiter, SourceLimiter, TcpConnection, TokenBucket
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from trackpipe.bench_edge import NullPublisher
from trackpipe.config import Settings


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(100)) == 20
    assert sum(bucket.take(1.0) for _ in range(100)) == 10  # one second refills 10
    assert sum(bucket.take(100.0) for _ in range(100)) == 20  # never more than the burst
    unlimited = TokenBucket(rate=0, burst=1, now=0.0)
    assert all(unlimited.take(0.0) for _ in range(1000))


def test_source_limiter_is_per_host_and_bounded() -> None:
    limiter = SourceLimiter(rate=5, max_sources=3)
    assert sum(limiter.allow("10.0.0.1", 0.0) for _ in range(50)) == 10  # burst = 2 s worth
    assert sum(limiter.allow("10.0.0.2", 0.0) for _ in range(50)) == 10  # another host: its own bucket
    for i in range(3, 100):  # a spoofed flood: the table stops growing, newcomers share one bucket
        limiter.allow(f"10.0.0.{i}", 0.0)
    assert len(limiter) == 3
    assert sum(limiter.allow(f"10.1.0.{i}", 0.0) for i in range(50)) == 0  # the shared bucket is spent
    assert limiter.allow("10.0.0.1", 100.0)  # the sweep forgets refilled buckets...
    assert len(limiter) == 1  # ...and the one asked again is new


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_log_limiter_counts_what_it_suppressed() -> None:
    logger = logging.getLogger("test.loglimiter")
    logger.propagate = False
    handler = _Lines()
    logger.addHandler(handler)
    limiter = LogLimiter(logger, lines=3, interval=10.0)
    written = sum(limiter.log(logging.WARNING, "k", "bad %d", i, now=1.0) for i in range(100))
    assert written == 3 and len(handler.lines) == 3
    assert limiter.log(logging.WARNING, "other", "another key", now=1.0)  # keys are independent
    assert limiter.log(logging.WARNING, "k", "bad again", now=12.0)
    assert handler.lines[-1] == "bad again (+97 similar lines suppressed in the last 10s)"


class _Conn:
    def __init__(self, due: float) -> None:
        self._slot: int | None = None
        self.due = due
        self.checked: list[float] = []

    def on_deadline(self, now: float) -> None:
        self.checked.append(now)


def test_deadline_wheel_checks_due_connections_once() -> None:
    wheel = DeadlineWheel(tick=1.0)
    late, soon = _Conn(100.0), _Conn(5.0)
    wheel.schedule(late, 100.0)  # type: ignore[arg-type]
    wheel.schedule(soon, 5.0)  # type: ignore[arg-type]
    wheel.schedule(late, 3.0)  # type: ignore[arg-type]  # its deadline moved earlier: filed again
    wheel.schedule(soon, 50.0)  # type: ignore[arg-type]  # later: stays where it is (checks itself then)
    assert wheel.expire(2.0) == 0
    assert wheel.expire(4.5) == 1 and late.checked == [4.5]
    assert wheel.expire(6.5) == 1 and soon.checked == [6.5]
    assert wheel.expire(200.0) == 0  # the stale entry of `late` at 100 s is skipped
    assert late.checked == [4.5] and len(wheel) == 0


# -- one TCP connection with a fake transport and a publisher that confirms at once ---------


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("192.0.2.7", 40000), "sockname": ("127.0.0.1", 5023)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class _Publisher(NullPublisher):
    """Confirms at once (as the bench's) and keeps what was published."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []

    def submit(self, topic: str, key: bytes | None, value: bytes, sender: Any, token: Any) -> None:
        self.records.append((topic, value))
        super().submit(topic, key, value, sender, token)

    async def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
        self.records.append((topic, value))
        return await super().send(topic, value, key)

    def topics(self, suffix: str) -> int:
        return sum(1 for topic, _ in self.records if topic.endswith(suffix))


def _connection(**settings: Any) -> tuple[Edge, TcpConnection, _Transport, _Publisher]:
    publisher = _Publisher()
    edge = Edge(dataclasses.replace(Settings(), **settings), publisher)  # type: ignore[arg-type]
    conn = TcpConnection(edge)
    transport = _Transport()
    conn.connection_made(transport)
    return edge, conn, transport, publisher


async def _settle() -> None:
    """Let the pump tasks run (no sleeping: the hand-moved clock does not advance)."""
    for _ in range(20):
        await asyncio.sleep(0)


class _Clock:
    """The running loop's clock, moved by hand (only the edge's deadline arithmetic reads it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        asyncio.get_running_loop().time = lambda: self.now  # type: ignore[method-assign]


def test_a_trickled_frame_is_closed_at_its_deadline_and_dead_lettered() -> None:
    async def scenario() -> tuple[Edge, _Transport, _Publisher, set[float], int]:
        clock = _Clock()
        edge, conn, transport, publisher = _connection(frame_timeout=10.0, idle_timeout=60.0)
        device = Gt06Device("359000000000077", "tcp")
        conn.data_received(device.login()[0])
        await _settle()  # the pump publishes the login, the reply goes out
        frame = device.heartbeat() * 2  # 30 bytes, one a second: every byte resets the idle timer
        deadlines, sent = set(), 0
        for byte in frame[:-1]:
            clock.now += 1.0
            conn.data_received(bytes([byte]))
            sent += 1
            deadlines.add(conn.deadline())
            conn.on_deadline(clock.now)
            if conn._closing:
                break
        await _settle()
        return edge, transport, publisher, deadlines, sent

    edge, transport, publisher, deadlines, sent = asyncio.run(scenario())
    assert deadlines == {1001.0 + 10.0}  # from the frame's first byte, not moved by later bytes
    assert sent == 11  # closed at the deadline, not after the idle timeout
    assert transport.closed
    assert "frame timeout" in edge.stats.closed, edge.stats.closed
    assert publisher.topics("raw") == 1 and publisher.topics("deadletter") == 1  # the partial bytes
    assert len(transport.written) > 0  # the login was acknowledged


def test_a_complete_frame_restarts_the_frame_deadline() -> None:
    async def scenario() -> list[float | None]:
        clock = _Clock()
        _, conn, _, _ = _connection(frame_timeout=10.0)
        device = Gt06Device("359000000000078", "tcp")
        beat = device.heartbeat()
        conn.data_received(device.login()[0] + beat[:3])  # a frame, and the start of the next
        first = conn._frame_started
        clock.now += 7.0
        conn.data_received(beat[3:] + beat[:2])  # that frame completes, a new one starts
        second = conn._frame_started
        clock.now += 1.0
        conn.data_received(beat[2:])
        await _settle()
        return [first, second, conn._frame_started]

    first, second, third = asyncio.run(scenario())
    assert first == 1000.0 and second == 1007.0
    assert third is None  # nothing pending: no frame deadline


def test_dead_letters_are_bounded_per_connection() -> None:
    async def scenario() -> tuple[Edge, _Transport, _Publisher]:
        edge, conn, transport, publisher = _connection(deadletter_per_connection=5, deadletter_rate=1000)
        device = Gt06Device("359000000000079", "tcp")
        conn.data_received(device.login()[0])
        bad = bytearray(device.heartbeat())
        bad[-4] ^= 0xFF  # wrong CRC: a dead letter, the connection stays
        for _ in range(50):
            conn.data_received(bytes(bad))
        await _settle()
        return edge, transport, publisher

    edge, transport, publisher = asyncio.run(scenario())
    assert publisher.topics("deadletter") == 5
    assert transport.closed and "dead letter limit" in edge.stats.closed, edge.stats.closed


def test_dead_letters_beyond_the_source_rate_are_counted_not_published() -> None:
    async def scenario() -> tuple[Edge, _Publisher]:
        edge, conn, _, publisher = _connection(deadletter_per_connection=0, deadletter_rate=2)
        device = Gt06Device("359000000000080", "tcp")
        conn.data_received(device.login()[0])
        bad = bytearray(device.heartbeat())
        bad[-4] ^= 0xFF
        for _ in range(30):
            conn.data_received(bytes(bad))
        await _settle()
        return edge, publisher

    edge, publisher = asyncio.run(scenario())
    assert publisher.topics("deadletter") == 4  # burst = 2 s at 2/s
    assert edge.stats.deadletters_suppressed == 26
