"""The edge's own TCP serving (`SocketPoller`, `TcpListener`, `EdgeTransport`) on real
loopback sockets: reads, buffered writes and close after them, EOF, resets, flow control,
accept pauses, and the edge's shutdown."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from typing import Any

import pytest
from trackpipe.edge import server, sockets
from trackpipe.edge.server import Edge
from trackpipe.edge.sockets import EdgeTransport, SocketPoller, listen_tcp
from trackpipe.protocols.devices.gt06 import Device

from trackpipe.bench_edge import NullPublisher
from trackpipe.config import Settings

pytestmark = pytest.mark.skipif(not server.own_poller_available(), reason="the edge's poller needs epoll")


class Recorder(asyncio.BufferedProtocol):
    """Keeps what it reads and the calls it got; `on_made` runs at connection_made."""

    def __init__(self, on_made: Any = None, keep_open_at_eof: bool = False) -> None:
        self.buffer = bytearray(1024)
        self.data = bytearray()
        self.calls: list[str] = []
        self.lost: list[BaseException | None] = []
        self.transport: EdgeTransport | None = None
        self.on_made = on_made
        self.keep_open = keep_open_at_eof
        self.gone = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, EdgeTransport)
        self.transport = transport
        self.calls.append("made")
        if self.on_made:
            self.on_made(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self.buffer[:nbytes]

    def eof_received(self) -> bool | None:
        self.calls.append("eof")
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("lost")
        self.lost.append(exc)
        if not self.gone.done():
            self.gone.set_result(None)


async def _serve(protocols: list[Recorder], **kw: Any) -> tuple[SocketPoller, int]:
    poller = SocketPoller(asyncio.get_running_loop())

    def factory() -> Recorder:
        protocols.append(Recorder(**kw))
        return protocols[-1]

    listeners = await listen_tcp(poller, "127.0.0.1", 0, factory)
    return poller, listeners[0].port


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def test_reads_reach_the_protocol_and_eof_closes_once() -> None:
    async def scenario() -> Recorder:
        protocols: list[Recorder] = []
        poller, port = await _serve(protocols)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello " * 1000)
        await writer.drain()
        writer.write_eof()
        await _until(lambda: protocols and protocols[0].gone.done())
        assert await reader.read() == b""  # the edge closed its side
        writer.close()
        assert len(poller) == 0
        poller.close()
        return protocols[0]

    proto = asyncio.run(scenario())
    assert bytes(proto.data) == b"hello " * 1000
    assert proto.calls == ["made", "eof", "lost"] and proto.lost == [None]
    assert proto.transport is not None and proto.transport.get_extra_info("peername")[0] == "127.0.0.1"


def test_a_large_write_is_buffered_and_the_close_waits_for_it() -> None:
    payload = bytes(range(256)) * 40_000  # 10 MB: far more than the socket buffers take at once

    def write_and_close(transport: EdgeTransport) -> None:
        transport.write(payload)
        assert transport.get_write_buffer_size() > 0  # the socket did not take it all
        transport.close()
        assert transport.is_closing()
        transport.write(b"ignored after close")

    async def scenario() -> tuple[bytes, Recorder]:
        protocols: list[Recorder] = []
        poller, port = await _serve(protocols, on_made=write_and_close)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        await asyncio.sleep(0.2)  # a slow reader: the edge must keep the rest meanwhile
        got = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        await _until(lambda: protocols[0].gone.done())
        poller.close()
        return got, protocols[0]

    got, proto = asyncio.run(scenario())
    assert got == payload
    assert proto.calls == ["made", "lost"] and proto.lost == [None]


def test_a_reset_reaches_the_protocol_once() -> None:
    def write_later(transport: EdgeTransport) -> None:
        asyncio.get_running_loop().call_later(0.3, transport.write, b"x" * 100_000)

    async def scenario() -> Recorder:
        protocols: list[Recorder] = []
        poller, port = await _serve(protocols, on_made=write_later)
        client = socket.create_connection(("127.0.0.1", port))
        await _until(lambda: bool(protocols))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST
        await _until(lambda: protocols[0].gone.done())
        await asyncio.sleep(0.5)  # the late write finds a closed transport: nothing more happens
        poller.close()
        return protocols[0]

    proto = asyncio.run(scenario())
    assert proto.calls.count("lost") == 1 and proto.calls[-1] == "lost"


def test_paused_reading_reads_nothing_until_resumed() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        protocols: list[Recorder] = []
        poller, port = await _serve(protocols, on_made=lambda t: t.pause_reading())
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"while paused")
        await writer.drain()
        await asyncio.sleep(0.3)
        before = bytes(protocols[0].data)
        assert protocols[0].transport is not None
        protocols[0].transport.resume_reading()
        await _until(lambda: len(protocols[0].data) == 12)
        writer.close()
        await _until(lambda: protocols[0].gone.done())
        poller.close()
        return before, bytes(protocols[0].data)

    before, after = asyncio.run(scenario())
    assert before == b"" and after == b"while paused"


def test_a_half_close_kept_open_still_writes() -> None:
    async def scenario() -> bytes:
        protocols: list[Recorder] = []
        poller, port = await _serve(protocols, keep_open_at_eof=True)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write_eof()
        await _until(lambda: bool(protocols) and "eof" in protocols[0].calls)
        assert protocols[0].transport is not None
        protocols[0].transport.write(b"after eof")
        protocols[0].transport.close()
        got = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        poller.close()
        return got

    assert asyncio.run(scenario()) == b"after eof"


def test_out_of_descriptors_pauses_accepting_then_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sockets, "ACCEPT_RETRY", 0.2)

    async def scenario() -> tuple[int, int]:
        protocols: list[Recorder] = []
        poller, port = await _serve(protocols)
        # the listener's socket refuses once with EMFILE, as a process out of descriptors does
        real_accept = socket.socket.accept
        failures = [OSError(errno.EMFILE, "Too many open files")]

        def accept(self: socket.socket) -> tuple[socket.socket, Any]:
            if failures and self.getsockname()[1] == port:
                raise failures.pop()
            return real_accept(self)

        monkeypatch.setattr(socket.socket, "accept", accept)
        client = socket.create_connection(("127.0.0.1", port))
        await asyncio.sleep(0.1)
        during = len(protocols)  # refused once: the connection waits in the backlog
        await _until(lambda: len(protocols) == 1)
        client.close()
        await _until(lambda: protocols[0].gone.done())
        poller.close()
        return during, len(protocols)

    during, after = asyncio.run(scenario())
    assert during == 0 and after == 1


def test_the_edge_replies_on_its_own_sockets_and_stops_cleanly() -> None:
    async def scenario() -> tuple[bytes, int, bool]:
        settings = Settings(host="127.0.0.1", port=0, edge_id="t", log_level="warning")
        edge = Edge(settings, NullPublisher())  # type: ignore[arg-type]
        await edge.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.tcp_port)
        writer.write(Device("359000000000001", "tcp").login()[0])
        reply = await asyncio.wait_for(reader.readexactly(10), 5)
        await _until(lambda: edge.stats.open_connections == 1)
        (conn,) = edge.connections
        local_port = conn.local_port
        await edge.stop()
        rest = await asyncio.wait_for(reader.read(), 5)  # closed by the shutdown
        writer.close()
        await _until(lambda: edge.stats.open_connections == 0)
        assert edge._poller is not None
        return reply + rest, local_port, edge._poller._epoll.closed

    data, local_port, poller_closed = asyncio.run(scenario())
    assert data[:2] == b"\x78\x78" and len(data) == 10
    assert local_port > 0 and poller_closed
