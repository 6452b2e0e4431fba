"""TCP and UDP listeners on one shared port.

Per TCP connection (`TcpConnection`):
  detect the protocol from the first bytes (buffering until decisive, bounded in
  bytes and time) -> frame the stream incrementally -> `inspect` each frame (id,
  reply, checksum) -> publish it to `tracker.raw` -> once Kafka confirmed the
  frame, write the reply the protocol needs.  Frames and replies stay in order;
  a pump task exists only while a connection has unconfirmed frames, so idle
  connections cost no task.

Per UDP datagram (`UdpEndpoint`): detect, split, identify (ids learned from a
login are remembered per source address with a TTL), publish, reply to the
source after confirmation.

Every refusal has a logged reason and, where bytes were received, a dead letter.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, FrameInfo, Framer, FramingError, ProtocolError

from trackpipe import schemas
from trackpipe.config import Settings

from .publisher import KafkaUnavailable, Publisher

log = logging.getLogger("trackpipe.edge")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class EdgeStats:
    connections: int = 0
    open_connections: int = 0
    frames: int = 0
    bytes_in: int = 0
    replies: int = 0
    deadletters: int = 0
    datagrams: int = 0
    datagrams_dropped: int = 0  # refused while too many were unconfirmed (logged each time)
    closed: dict[str, int] = field(default_factory=dict)

    def count_close(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1


@dataclass(slots=True)
class _Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    reply: bytes | None = None
    close_after: str | None = None  # close the connection with this reason once sent


class Edge:
    """Owns the listeners, the publisher and the per-source UDP identities."""

    def __init__(self, settings: Settings, publisher: Publisher, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.publisher = publisher
        self.clock = clock
        self.stats = EdgeStats()
        self.raw_topic = settings.topic("raw")
        self.deadletter_topic = settings.topic("deadletter")
        self._conn_ids = itertools.count(1)
        self._epoch = f"{int(time.time() * 1000):x}"
        self._servers: list[asyncio.AbstractServer] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._pinned_udp: list[asyncio.DatagramTransport] = []
        self.connections: set[TcpConnection] = set()
        self.tcp_port: int | None = None
        self.udp_port: int | None = None

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        server = await loop.create_server(lambda: TcpConnection(self), s.host, s.port, reuse_address=True, backlog=4096)
        self._servers.append(server)
        self.tcp_port = server.sockets[0].getsockname()[1]
        # UDP on the same port number as TCP (port 0 -> the one TCP got)
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: UdpEndpoint(self), local_addr=(s.host, self.tcp_port)
        )
        self.udp_port = self._udp.get_extra_info("sockname")[1]
        log.info("edge %s listening on tcp+udp %s:%s", s.edge_id, s.host, self.tcp_port)
        for port, name in s.pinned_ports.items():
            await self._listen_pinned(port, registry.get(name))

    async def _listen_pinned(self, port: int, codec: Codec) -> None:
        """A listener for one protocol only (Traccar's port-per-protocol), for device families
        whose first bytes are ambiguous; the shared port stays the default."""
        loop = asyncio.get_running_loop()
        s = self.settings
        if "tcp" in codec.transports:
            server = await loop.create_server(
                lambda: TcpConnection(self, codec), s.host, port, reuse_address=True, backlog=4096
            )
            self._servers.append(server)
        if "udp" in codec.transports:
            udp, _ = await loop.create_datagram_endpoint(lambda: UdpEndpoint(self, codec), local_addr=(s.host, port))
            self._pinned_udp.append(udp)
        log.info(
            "edge %s listening on %s %s:%s for %s only",
            s.edge_id,
            "+".join(sorted(codec.transports)),
            s.host,
            port,
            codec.name,
        )

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close("shutdown")
        for server in self._servers:
            await server.wait_closed()
        if self._udp is not None:
            self._udp.close()
        for udp in self._pinned_udp:
            udp.close()

    # -- shared helpers ------------------------------------------------------
    def reply(self, codec: Codec, frame: bytes, info: FrameInfo, transport: str) -> bytes | None:
        """The bytes to send once the frame is durable (a time reply carries the edge's clock)."""
        if info.clock_reply:
            return codec.reply_at(frame, transport, self.clock())
        return info.reply

    def new_connection_id(self) -> str:
        return f"{self.settings.edge_id}-{self._epoch}-{next(self._conn_ids)}"

    def raw_record(
        self,
        frame: bytes,
        codec: Codec,
        info: FrameInfo,
        device_id: str | None,
        transport: str,
        peer: tuple[str, int],
        connection_id: str,
        seq: int,
        local_port: int,
    ) -> bytes:
        return schemas.encode(
            "raw",
            {
                "frame": frame,
                "protocol": codec.name,
                "kind": info.kind,
                "device_id": device_id,
                "transport": transport,
                "peer_host": peer[0],
                "peer_port": peer[1],
                "local_port": local_port,
                "connection_id": connection_id,
                "edge_id": self.settings.edge_id,
                "received_at": self.clock(),
                "seq": seq,
            },
        )

    def deadletter_record(
        self,
        reason: str,
        detail: str,
        raw: bytes,
        *,
        protocol: str | None,
        transport: str,
        peer: tuple[str, int],
        device_id: str | None,
        connection_id: str,
        local_port: int,
    ) -> bytes:
        self.stats.deadletters += 1
        log.warning(
            "dead letter %s: %s (%s) peer=%s:%s protocol=%s device=%s %d bytes",
            connection_id,
            reason,
            detail,
            peer[0],
            peer[1],
            protocol,
            device_id,
            len(raw),
        )
        return schemas.encode(
            "deadletter",
            {
                "time": self.clock(),
                "reason": reason,
                "detail": detail,
                "stage": "edge",
                "protocol": protocol,
                "transport": transport,
                "peer": f"{peer[0]}:{peer[1]}",
                "local_port": local_port,
                "device_id": device_id,
                "edge_id": self.settings.edge_id,
                "connection_id": connection_id,
                "raw": raw[: self.settings.deadletter_max_bytes],
            },
        )


class TcpConnection(asyncio.Protocol):
    """One device connection.  All decisions are synchronous; only the pump awaits Kafka."""

    def __init__(self, edge: Edge, pinned: Codec | None = None) -> None:
        self.edge = edge
        self.settings = edge.settings
        self.pinned = pinned  # a listener for one protocol: no detection
        self.local_port = 0
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("?", 0)
        self.connection_id = edge.new_connection_id()
        self.codec: Codec | None = None
        self.framer: Framer | None = None
        self.device_id: str | None = None
        self._head = bytearray()  # bytes seen while detecting
        self._seq = 0
        self._queue: deque[_Outgoing] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._paused = False
        self._closing = False  # read nothing more
        self._close_pending = False  # close once the pump has published what was received
        self._last_activity = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        self.local_port = int((transport.get_extra_info("sockname") or ("", 0))[1])
        self.edge.connections.add(self)
        self.edge.stats.connections += 1
        self.edge.stats.open_connections += 1
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        self._timer = loop.call_later(self.settings.detect_timeout, self._on_timer)
        log.debug("open %s peer=%s:%s", self.connection_id, *self.peer)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.edge.stats.bytes_in += len(data)
        self._last_activity = asyncio.get_running_loop().time()
        if self.framer is None:
            self._detect(data)
        else:
            self.framer.feed(data)
            self._drain_frames()

    def eof_received(self) -> bool | None:
        self._finish_partial("eof")
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closing:
            self._finish_partial("peer closed" if exc is None else f"connection error: {exc}")
            self._closing = True
        self.edge.connections.discard(self)
        self.edge.stats.open_connections -= 1
        if self._timer is not None:
            self._timer.cancel()

    # -- detection ---------------------------------------------------------------
    def _detect(self, data: bytes) -> None:
        self._head += data
        verdict = registry.Verdict(self.pinned, False) if self.pinned else registry.detect(bytes(self._head), "tcp")
        if verdict.codec is not None:
            self.codec = verdict.codec
            self.framer = verdict.codec.new_framer()
            self.framer.max_frame = min(self.framer.max_frame, self.settings.max_frame)
            self.framer.feed(bytes(self._head))
            self._head.clear()
            self._reschedule(self.settings.idle_timeout)
            log.debug("%s detected %s", self.connection_id, self.codec.name)
            self._drain_frames()
        elif verdict.unknown or len(self._head) > self.settings.detect_max_bytes:
            detail = "no protocol matches" if verdict.unknown else f"undecided after {len(self._head)} bytes"
            self._reject_unknown(detail)

    def _reject_unknown(self, detail: str) -> None:
        raw = bytes(self._head)
        self._head.clear()
        self._deadletter("unknown", detail, raw, close_after="unknown protocol")

    # -- frames -------------------------------------------------------------------
    def _drain_frames(self) -> None:
        assert self.framer is not None and self.codec is not None
        while not self._closing:
            try:
                frame = self.framer.next_frame()
            except FramingError as exc:
                self._deadletter(exc.reason, exc.detail, exc.discarded, close_after=exc.reason if exc.fatal else None)
                continue
            if frame is None:
                return
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        assert self.codec is not None
        try:
            info = self.codec.inspect(frame, "tcp")
        except ProtocolError as exc:  # bad checksum etc.: dead letter, keep the connection
            self._deadletter(exc.reason, exc.detail, frame)
            return
        if info.device_id and info.device_id != self.device_id:
            if self.device_id is not None:
                log.info("%s device id changed %s -> %s", self.connection_id, self.device_id, info.device_id)
            self.device_id = info.device_id
        self.edge.stats.frames += 1
        seq = self._seq
        self._seq += 1
        value = self.edge.raw_record(
            frame, self.codec, info, self.device_id, "tcp", self.peer, self.connection_id, seq, self.local_port
        )
        self._enqueue(
            _Outgoing(self.edge.raw_topic, self._key(), value, self.edge.reply(self.codec, frame, info, "tcp"))
        )

    def _key(self) -> bytes:
        return (self.device_id or self.connection_id).encode()

    def _deadletter(self, reason: str, detail: str, raw: bytes, close_after: str | None = None) -> None:
        value = self.edge.deadletter_record(
            reason,
            detail,
            raw,
            protocol=self.codec.name if self.codec else None,
            transport="tcp",
            peer=self.peer,
            device_id=self.device_id,
            connection_id=self.connection_id,
            local_port=self.local_port,
        )
        self._enqueue(_Outgoing(self.edge.deadletter_topic, self._key(), value, None, close_after))
        if close_after:
            self._closing = True  # read nothing more; the pump closes once the dead letter is durable
            if self.transport is not None:
                self.transport.pause_reading()

    def _finish_partial(self, why: str) -> None:
        """At close: bytes that never became a frame are dead-lettered, not forgotten."""
        rest = self.framer.take_rest() if self.framer is not None else bytes(self._head)
        self._head.clear()
        if rest:
            reason = "truncated" if self.framer is not None else "unknown"
            self._deadletter(reason, f"{len(rest)} bytes pending at {why}", rest)

    # -- publishing in order, replies after confirmation --------------------------
    def _enqueue(self, item: _Outgoing) -> None:
        self._queue.append(item)
        if len(self._queue) >= self.settings.max_inflight and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _run_pump(self) -> None:
        publisher = self.edge.publisher
        try:
            while self._queue:
                batch = list(self._queue)
                self._queue.clear()
                sent = [(await publisher.send(i.topic, i.value, i.key), i) for i in batch]
                replies: list[bytes] = []
                try:
                    async with publisher.deadline():  # one deadline for the whole batch
                        for future, item in sent:
                            await publisher.confirm(future)
                            if item.reply:
                                replies.append(item.reply)  # durable: its ack may go
                            if item.close_after:
                                self._queue.clear()
                                self.close(item.close_after, from_pump=True)
                                return
                finally:
                    self._write_replies(replies)  # one write per batch, in frame order
                if self._paused and len(self._queue) < self.settings.max_inflight // 2:
                    self._paused = False
                    if self.transport is not None and not self._closing:
                        self.transport.resume_reading()
        except KafkaUnavailable as exc:
            # nothing unconfirmed was acknowledged: the device keeps its data and resends
            self._queue.clear()
            self.close(f"kafka unavailable: {exc}", from_pump=True)
        except Exception:
            log.exception("%s publish failed", self.connection_id)
            self._queue.clear()
            self.close("internal error", from_pump=True)
        finally:
            self._pump = None
            if self._close_pending and self.transport is not None:
                self.transport.close()

    def _write_replies(self, replies: list[bytes]) -> None:
        if replies and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(replies))
            self.edge.stats.replies += len(replies)

    # -- timers and closing -----------------------------------------------------
    def _reschedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        if self._closing:
            return
        if self.framer is None:  # still detecting after detect_timeout
            if self._head:
                self._reject_unknown(f"undecided after {self.settings.detect_timeout}s ({len(self._head)} bytes)")
            else:
                self.close("silent: no bytes within the detection timeout")
            return
        idle = asyncio.get_running_loop().time() - self._last_activity
        if idle >= self.settings.idle_timeout:
            self._finish_partial("idle timeout")
            self.close(f"idle for {idle:.0f}s")
        else:
            self._reschedule(self.settings.idle_timeout - idle)

    def close(self, reason: str, *, from_pump: bool = False) -> None:
        if self.transport is None or self.transport.is_closing() or self._close_pending:
            return
        self._closing = True
        self.edge.stats.count_close(reason.split(":")[0])
        log.info(
            "close %s peer=%s:%s protocol=%s device=%s reason=%s",
            self.connection_id,
            *self.peer,
            self.codec.name if self.codec else None,
            self.device_id,
            reason,
        )
        if self._pump is not None and not from_pump:
            # frames and dead letters already received are still published; the pump closes after
            self._close_pending = True
            self.transport.pause_reading()
            return
        self.transport.close()


class UdpEndpoint(asyncio.DatagramProtocol):
    """All UDP devices on the shared port; each datagram is detected on its own."""

    def __init__(self, edge: Edge, pinned: Codec | None = None) -> None:
        self.edge = edge
        self.settings = edge.settings
        self.pinned = pinned  # a listener for one protocol: no detection
        self.local_port = 0
        self.transport: asyncio.DatagramTransport | None = None
        self._ids: dict[tuple[str, int], tuple[str, float]] = {}  # source -> (device id, expiry)
        self._inflight = 0
        self._sweep_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport
        self.local_port = int((transport.get_extra_info("sockname") or ("", 0))[1])

    def error_received(self, exc: Exception) -> None:
        log.warning("udp error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        edge = self.edge
        edge.stats.datagrams += 1
        edge.stats.bytes_in += len(data)
        peer = (str(addr[0]), int(addr[1]))
        conn_id = f"udp-{peer[0]}:{peer[1]}"
        now = time.monotonic()
        self._sweep(now)
        known = self._ids.get(peer)
        device_id = known[0] if known and known[1] > now else None

        def dead(reason: str, detail: str, raw: bytes, protocol: str | None) -> None:
            value = edge.deadletter_record(
                reason,
                detail,
                raw,
                protocol=protocol,
                transport="udp",
                peer=peer,
                device_id=device_id,
                connection_id=conn_id,
                local_port=self.local_port,
            )
            self._publish([(edge.deadletter_topic, (device_id or conn_id).encode(), value, None)], peer)

        if self._inflight >= self.settings.max_inflight * 8:
            log.warning("udp overload: %d datagrams unconfirmed; dropping one from %s:%s", self._inflight, *peer)
            edge.stats.datagrams_dropped += 1
            return
        codec = self.pinned or registry.detect(data, "udp").codec
        if codec is None:
            dead("unknown", "no protocol matches the datagram", data, None)
            return
        try:
            frames = codec.split_datagram(data)
        except ProtocolError as exc:
            dead(exc.reason, exc.detail, data, codec.name)
            return
        items = []
        for frame in frames:
            try:
                info = codec.inspect(frame, "udp")
            except ProtocolError as exc:
                dead(exc.reason, exc.detail, frame, codec.name)
                continue
            if info.device_id:
                device_id = info.device_id
                self._ids[peer] = (device_id, now + self.settings.udp_id_ttl)
            elif known:  # refresh the TTL while the source keeps talking
                self._ids[peer] = (known[0], now + self.settings.udp_id_ttl)
            edge.stats.frames += 1
            value = edge.raw_record(frame, codec, info, device_id, "udp", peer, conn_id, 0, self.local_port)
            items.append(
                (edge.raw_topic, (device_id or conn_id).encode(), value, edge.reply(codec, frame, info, "udp"))
            )
        if items:
            self._publish(items, peer)

    def _publish(self, items: list[tuple[str, bytes, bytes, bytes | None]], peer: tuple[str, int]) -> None:
        self._inflight += 1
        asyncio.get_running_loop().create_task(self._send(items, peer))

    async def _send(self, items: list[tuple[str, bytes, bytes, bytes | None]], peer: tuple[str, int]) -> None:
        publisher = self.edge.publisher
        try:
            sent = [(await publisher.send(topic, value, key), reply) for topic, key, value, reply in items]
            async with publisher.deadline():
                for future, reply in sent:
                    await publisher.confirm(future)
                    if reply and self.transport is not None:
                        self.transport.sendto(reply, peer)
                        self.edge.stats.replies += 1
        except KafkaUnavailable as exc:
            log.warning("udp %s:%s not acknowledged: %s", *peer, exc)
        except Exception:
            log.exception("udp publish failed for %s:%s", *peer)
        finally:
            self._inflight -= 1

    def _sweep(self, now: float) -> None:
        if now < self._sweep_at:
            return
        self._sweep_at = now + 60.0
        for key in [k for k, (_, exp) in self._ids.items() if exp <= now]:
            del self._ids[key]
