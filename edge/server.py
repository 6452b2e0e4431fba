"""TCP and UDP listeners on one shared port.

Per TCP connection (`TcpConnection`):
  detect the protocol from the first bytes (buffering until decisive, bounded in
  bytes and time) -> frame the stream incrementally -> `inspect` each frame (id,
  reply, checksum) -> publish it to `tracker.raw` -> once Kafka confirmed the
  frame, write the reply the protocol needs.  Frames and replies stay in order;
  no task per connection or frame: the publisher batches every connection's
  records per loop turn and calls each connection back once per confirmed batch
  (`records_done`), which writes its acks in one write.

Per UDP datagram (`UdpEndpoint`): detect, split, identify (ids learned from a
login are remembered per source address with a TTL), publish, reply to the
source after confirmation.

Abuse is bounded: one wheel (`DeadlineWheel`) times every connection (detection,
per-frame and idle deadlines; no timer per connection), a connection that
trickles a frame is closed when the frame's deadline passes, UDP sources are
rate limited before any decoding, and dead letters are bounded per connection,
per source host and for the whole edge (beyond: counted, not published), with
their log lines rate limited (`LogLimiter`, counts of what was suppressed).

Every refusal has a logged reason and, where bytes were received, a dead letter
(or, beyond the dead-letter bounds, a count).

TCP sockets (Linux): the edge accepts and polls them itself (`TcpListener`, one epoll set
in `SocketPoller` that the event loop watches as a single reader, one slotted
`EdgeTransport` per connection), so an idle logged-in connection costs ~1 KB of the
edge's RSS instead of ~3 KB through asyncio's transports; `python -m
trackpipe.bench_edge` measures it.  Elsewhere `loop.create_server` serves them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, FrameInfo, Framer, FramingError, ProtocolError

from trackpipe import schemas
from trackpipe.config import Settings
from trackpipe.metrics import MAX_LABEL_VALUES, PUBLISH_BUCKETS, LatencyHistogram, Tally

from .publisher import KafkaUnavailable, Publisher
from .sockets import SocketPoller, TcpListener, listen_tcp, own_poller_available

log = logging.getLogger("trackpipe.edge")

Clock = Callable[[], datetime]
UNREGISTERED = "unregistered device"  # dead-letter reason under TRACKPIPE_UNREGISTERED=reject
#: the raw record's fields that stay the same over a connection (encoded once per connection)
_RAW = schemas.spliced(
    "raw",
    frozenset(
        ("protocol", "device_id", "transport", "peer_host", "peer_port", "local_port", "connection_id", "edge_id")
    ),
)
UDP_RUNS_KEPT = 65_536  # UDP sources whose raw-record bytes are kept between sweeps
RECEIVE_BUFFER = 65536  # bytes read from one TCP socket at a time (one buffer for all connections)


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
    datagrams_dropped: int = 0  # refused while too many were unconfirmed (log lines rate limited)
    datagrams_shed: int = 0  # over their source's rate (`udp_source_rate`), dropped before any decoding
    deadletters_suppressed: int = 0  # over a dead-letter bound: counted, not published
    closed: dict[str, int] = field(default_factory=dict)
    udp_bytes: int = 0  # of bytes_in, those received over UDP
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)  # (protocol, transport) -> counts
    deadletter_reasons: dict[str, int] = field(default_factory=dict)  # published dead letters by reason
    #: per record: from its hand-off to the producer to Kafka's confirmation
    publish_latency: LatencyHistogram = field(default_factory=lambda: LatencyHistogram(PUBLISH_BUCKETS))

    def count_close(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1

    def tally(self, protocol: str, transport: str) -> Tally:
        """The counters of one protocol over one transport (a connection keeps its own reference,
        so a frame costs two int additions, not a lookup)."""
        key = (protocol, transport)
        found = self.tallies.get(key)
        if found is None:
            found = self.tallies[key] = Tally()
        return found

    def count_deadletter(self, reason: str) -> None:
        reasons = self.deadletter_reasons
        if reason not in reasons and len(reasons) >= MAX_LABEL_VALUES:
            reason = "other"  # bounded: a metric label per reason
        reasons[reason] = reasons.get(reason, 0) + 1


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; rate <= 0 allows everything."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self.stamp = now

    def refill(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def take(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        if self.refill(now) >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class SourceLimiter:
    """A token bucket per source host (burst = 2 s worth).  The table is bounded: buckets
    that refilled completely are forgotten at each sweep, and beyond `max_sources` hosts
    the newcomers share one bucket, so a spoofed flood cannot grow memory."""

    def __init__(self, rate: float, max_sources: int = 65536, sweep_every: float = 10.0) -> None:
        self.rate = rate
        self.max_sources = max_sources
        self.sweep_every = sweep_every
        self._buckets: dict[str, TokenBucket] = {}
        self._overflow: TokenBucket | None = None
        self._sweep_at = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, source: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        if now >= self._sweep_at:
            self._sweep(now)
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                if self._overflow is None:
                    self._overflow = TokenBucket(self.rate, 2 * self.rate, now)
                return self._overflow.take(now)
            bucket = self._buckets[source] = TokenBucket(self.rate, 2 * self.rate, now)
        return bucket.take(now)

    def _sweep(self, now: float) -> None:
        self._sweep_at = now + self.sweep_every
        full = [k for k, b in self._buckets.items() if b.refill(now) >= b.burst]
        for key in full:
            del self._buckets[key]


class LogLimiter:
    """At most `lines` log lines per `interval` seconds per key; the next line after a
    quiet spell says how many were suppressed."""

    def __init__(self, logger: logging.Logger, lines: int = 10, interval: float = 10.0) -> None:
        self.logger = logger
        self.lines = lines
        self.interval = interval
        self._windows: dict[str, list[float]] = {}  # key -> [window start, lines, suppressed]

    def log(self, level: int, key: str, msg: str, *args: object, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.interval:
            suppressed = int(window[2]) if window else 0
            window = self._windows[key] = [now, 0, 0]
            if suppressed:
                msg += f" (+{suppressed} similar lines suppressed in the last {self.interval:.0f}s)"
        if window[1] >= self.lines:
            window[2] += 1
            return False
        window[1] += 1
        self.logger.log(level, msg, *args)
        return True


class DeadlineWheel:
    """One timer for every connection.  Connections are filed in buckets of `tick`
    seconds by their earliest deadline; when a bucket comes due each connection checks
    its deadlines itself (`on_deadline`) and files itself again if it is not due yet, so
    activity (which only moves deadlines later) costs nothing but a float store."""

    def __init__(self, tick: float = 0.25) -> None:
        self.tick = tick
        self._buckets: dict[int, list[TcpConnection]] = {}
        self._next = 0
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def schedule(self, conn: TcpConnection, at: float) -> None:
        slot = max(int(at / self.tick) + 1, self._next)
        if conn._slot is not None and conn._slot <= slot:
            return  # filed earlier already: it files itself again then
        conn._slot = slot
        self._buckets.setdefault(slot, []).append(conn)

    def expire(self, now: float) -> int:
        """Check the connections whose bucket is due; returns how many were checked."""
        current = int(now / self.tick)
        if not self._next:
            self._next = min(current, min(self._buckets, default=current))
        checked = 0
        while self._next <= current:
            for conn in self._buckets.pop(self._next, ()):
                if conn._slot == self._next:  # else a stale entry: filed earlier since
                    conn._slot = None
                    checked += 1
                    conn.on_deadline(now)
            self._next += 1
        return checked

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="edge-deadlines")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            try:
                self.expire(loop.time())
            except Exception:  # one connection's bug must not stop every deadline
                log.exception("deadline sweep failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


# -- TCP sockets without an asyncio transport per connection --------------------------------
# An idle connection through `loop.create_server` costs ~1.5 KB of asyncio objects (transport,
# its extra-info dict with sockname and peername, a reader Handle with its Context, a
# SelectorKey, two bound methods, a weak reference, a socket object and its wrapper).  The
# edge's own poller keeps one slotted `EdgeTransport` per connection instead: a raw file
# descriptor in one epoll set that the event loop watches as a single reader.


@dataclass(slots=True)
class _Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    reply: bytes | None = None
    close_after: str | None = None  # close the connection with this reason once sent
    handed: float = 0.0  # monotonic time it went to the publisher
    done: bool = False  # its outcome came (`error` None: Kafka confirmed it)
    error: Exception | None = None


class Edge:
    """Owns the listeners, the publisher and the per-source UDP identities."""

    def __init__(
        self, settings: Settings, publisher: Publisher, clock: Clock = utcnow, registered: Container[str] | None = None
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        #: TRACKPIPE_UNREGISTERED=reject: the registered ids (edge/registry.py); None: every device is taken
        self.registered = registered
        self.clock = clock
        self.stats = EdgeStats()
        self.raw_topic = settings.topic("raw")
        self.deadletter_topic = settings.topic("deadletter")
        self._conn_ids = itertools.count(1)
        self._epoch = f"{int(time.time() * 1000):x}"
        self._servers: list[asyncio.AbstractServer | TcpListener] = []
        self._poller: SocketPoller | None = None  # serves every TCP connection (Linux)
        self._udp: asyncio.DatagramTransport | None = None
        self._pinned_udp: list[asyncio.DatagramTransport] = []
        self.connections: set[TcpConnection] = set()
        self.tcp_port: int | None = None
        self.udp_port: int | None = None
        self.wheel = DeadlineWheel()
        self.receive_buffer = memoryview(bytearray(RECEIVE_BUFFER))  # shared by every TCP connection
        now = time.monotonic()
        self.deadletter_sources = SourceLimiter(settings.deadletter_rate)
        self.deadletter_total = TokenBucket(settings.deadletter_rate_total, 2 * settings.deadletter_rate_total, now)
        self.udp_sources = SourceLimiter(settings.udp_source_rate)
        self.logs = LogLimiter(log)

    @property
    def shared_port(self) -> bool:
        """One of the processes of a multi-process edge: its listeners share the port (SO_REUSEPORT)."""
        return self.settings.edge_slot >= 0

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        self.tcp_port = await self._listen_tcp(s.port, lambda: TcpConnection(self))
        # UDP on the same port number as TCP (port 0 -> the one TCP got)
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: UdpEndpoint(self), local_addr=(s.host, self.tcp_port), reuse_port=self.shared_port
        )
        self.udp_port = self._udp.get_extra_info("sockname")[1]
        self._size_receive_buffer(self._udp)
        self.wheel.start()
        log.info("edge %s listening on tcp+udp %s:%s", s.edge_id, s.host, self.tcp_port)
        for port, name in s.pinned_ports.items():
            await self._listen_pinned(port, registry.get(name))

    async def _listen_pinned(self, port: int, codec: Codec) -> None:
        """A listener for one protocol only (Traccar's port-per-protocol), for device families
        whose first bytes are ambiguous; the shared port stays the default."""
        loop = asyncio.get_running_loop()
        s = self.settings
        if "tcp" in codec.transports:
            await self._listen_tcp(port, lambda: TcpConnection(self, codec))
        if "udp" in codec.transports:
            udp, _ = await loop.create_datagram_endpoint(
                lambda: UdpEndpoint(self, codec), local_addr=(s.host, port), reuse_port=self.shared_port
            )
            self._size_receive_buffer(udp)
            self._pinned_udp.append(udp)
        log.info(
            "edge %s listening on %s %s:%s for %s only",
            s.edge_id,
            "+".join(sorted(codec.transports)),
            s.host,
            port,
            codec.name,
        )

    async def _listen_tcp(self, port: int, factory: Callable[[], asyncio.BaseProtocol]) -> int:
        """Listen on `port` (0: any free one, returned); connections are served by the edge's
        own poller where there is epoll, else by asyncio's transports."""
        loop = asyncio.get_running_loop()
        if not own_poller_available():
            server = await loop.create_server(
                factory, self.settings.host, port, reuse_address=True, reuse_port=self.shared_port, backlog=4096
            )
            self._servers.append(server)
            return int(server.sockets[0].getsockname()[1])
        if self._poller is None:
            self._poller = SocketPoller(loop)
        listeners = await listen_tcp(self._poller, self.settings.host, port, factory, reuse_port=self.shared_port)
        self._servers.extend(listeners)
        return listeners[0].port

    def _size_receive_buffer(self, udp: asyncio.DatagramTransport) -> None:
        """A burst of datagrams waits in the kernel, not dropped there, while the loop is busy."""
        sock = udp.get_extra_info("socket")
        if sock is None or self.settings.udp_rcvbuf <= 0:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.settings.udp_rcvbuf)
        except OSError as exc:
            log.warning("udp SO_RCVBUF %d refused: %s", self.settings.udp_rcvbuf, exc)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        log.info("udp receive buffer %d bytes (asked %d; capped by net.core.rmem_max)", got, self.settings.udp_rcvbuf)

    async def stop(self) -> None:
        await self.wheel.stop()
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close("shutdown")
        for server in self._servers:
            await server.wait_closed()
        if self._poller is not None:
            self._poller.stop()  # closes once the connections still flushing have gone
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

    def rejects(self, device_id: str | None) -> bool:
        """True for a device the registry does not hold, when the policy is to reject those."""
        return self.registered is not None and device_id is not None and device_id not in self.registered

    def new_connection_id(self) -> str:
        return f"{self.settings.edge_id}-{self._epoch}-{next(self._conn_ids)}"

    def raw_runs(
        self,
        codec: Codec,
        device_id: str | None,
        transport: str,
        peer: tuple[str, int],
        connection_id: str,
        local_port: int,
    ) -> tuple[bytes, ...]:
        """The raw record's fields that stay the same over a connection's frames, encoded once
        (`raw_record` splices them in)."""
        return _RAW.bind(
            {
                "protocol": codec.name,
                "device_id": device_id,
                "transport": transport,
                "peer_host": peer[0],
                "peer_port": peer[1],
                "local_port": local_port,
                "connection_id": connection_id,
                "edge_id": self.settings.edge_id,
            }
        )

    def raw_record(self, frame: bytes, info: FrameInfo, seq: int, runs: tuple[bytes, ...]) -> bytes:
        """The `tracker.raw` record of one frame, the connection's fields from `raw_runs`."""
        return _RAW.encode({"frame": frame, "kind": info.kind, "received_at": self.clock(), "seq": seq}, runs)

    def deadletter_allowed(self, host: str, reason: str) -> bool:
        """Within the dead-letter rate of this source host and of the whole edge?  Beyond it
        a dead letter is counted (and its log line rate limited), not published."""
        now = time.monotonic()
        if self.deadletter_sources.allow(host, now) and self.deadletter_total.take(now):
            return True
        self.stats.deadletters_suppressed += 1
        self.logs.log(
            logging.WARNING,
            "deadletter-suppressed",
            "dead letter rate exceeded: %s from %s not published (%d suppressed so far)",
            reason,
            host,
            self.stats.deadletters_suppressed,
        )
        return False

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
        self.stats.count_deadletter(reason)
        self.logs.log(
            logging.WARNING,
            f"deadletter:{reason}",
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


class TcpConnection(asyncio.BufferedProtocol):
    """One device connection.  All decisions are synchronous; nothing awaits (Kafka calls back).

    Slotted and lazy (no timer, queue or detection buffer until needed) so that an idle
    logged-in connection costs little beyond its transport; bytes are read into one
    receive buffer shared by all connections (`get_buffer`), not a fresh 256 KiB
    allocation per read.  Works with any asyncio transport (the edge's `EdgeTransport`,
    or asyncio's own where there is no epoll)."""

    __slots__ = (
        "_close_pending",
        "_closing",
        "_dead",
        "_frame_started",
        "_head",
        "_last_activity",
        "_n",
        "_opened",
        "_paused",
        "_queue",
        "_runs",
        "_seq",
        "_slot",
        "_tally",
        "codec",
        "device_id",
        "edge",
        "framer",
        "pinned",
        "transport",
    )

    def __init__(self, edge: Edge, pinned: Codec | None = None) -> None:
        self.edge = edge
        self.pinned = pinned  # a listener for one protocol: no detection
        self.transport: asyncio.Transport | None = None
        self._n = next(edge._conn_ids)
        self.codec: Codec | None = None
        self.framer: Framer | None = None
        self.device_id: str | None = None
        self._head: bytearray | None = None  # bytes seen while detecting
        self._seq = 0
        self._runs: tuple[bytes, ...] | None = None  # the raw record's per-connection bytes (`Edge.raw_runs`)
        self._queue: deque[_Outgoing] | None = None  # handed to the publisher, not yet acked
        self._paused = False
        self._closing = False  # read nothing more
        self._close_pending = False  # close once what was received is published
        self._opened = 0.0
        self._last_activity = 0.0
        self._frame_started: float | None = None  # loop time of the first byte of an incomplete frame
        self._slot: int | None = None  # the deadline wheel's bucket this connection is filed in
        self._dead = 0  # dead letters from this connection
        self._tally: Tally | None = None  # this connection's protocol's counters, once detected

    @property
    def settings(self) -> Settings:
        return self.edge.settings

    @property
    def peer(self) -> tuple[str, int]:
        """The peer's address, as the transport keeps it (not copied per connection)."""
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return (str(peer[0]), int(peer[1])) if peer else ("?", 0)

    @property
    def local_port(self) -> int:
        sockname = self.transport.get_extra_info("sockname") if self.transport is not None else None
        return int(sockname[1]) if sockname else 0

    @property
    def connection_id(self) -> str:
        return f"{self.edge.settings.edge_id}-{self.edge._epoch}-{self._n}"

    # -- asyncio callbacks -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, but not always an asyncio.Transport subclass (uvloop's are not)
        self.transport = transport  # type: ignore[assignment]
        self.edge.connections.add(self)
        self.edge.stats.connections += 1
        self.edge.stats.open_connections += 1
        now = asyncio.get_running_loop().time()
        self._opened = self._last_activity = now
        self.edge.wheel.schedule(self, now + self.settings.detect_timeout)
        log.debug("open %s peer=%s:%s", self.connection_id, *self.peer)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.edge.receive_buffer

    def buffer_updated(self, nbytes: int) -> None:
        # data_received copies what it keeps: the shared buffer is reused by the next read
        self.data_received(bytes(self.edge.receive_buffer[:nbytes]))

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

    # -- detection ---------------------------------------------------------------
    def _detect(self, data: bytes) -> None:
        if self._head is None:
            self._head = bytearray()
        self._head += data
        verdict = registry.Verdict(self.pinned, False) if self.pinned else registry.detect(bytes(self._head), "tcp")
        if verdict.codec is not None:
            self.codec = verdict.codec
            self.framer = verdict.codec.new_framer()
            self.framer.max_frame = min(self.framer.max_frame, self.settings.max_frame)
            self._tally = self.edge.stats.tally(verdict.codec.name, "tcp")
            head, self._head = bytes(self._head), None
            self._frame_started = self._opened  # the first frame began with the first byte
            self.framer.feed(head)
            self.edge.wheel.schedule(self, self.deadline())
            log.debug("%s detected %s", self.connection_id, self.codec.name)
            self._drain_frames()
        elif verdict.unknown or len(self._head) > self.settings.detect_max_bytes:
            detail = "no protocol matches" if verdict.unknown else f"undecided after {len(self._head)} bytes"
            self._reject_unknown(detail)

    def _reject_unknown(self, detail: str) -> None:
        raw = bytes(self._head or b"")
        self._head = None
        self._deadletter("unknown", detail, raw, close_after="unknown protocol")

    # -- frames -------------------------------------------------------------------
    def _drain_frames(self) -> None:
        assert self.framer is not None and self.codec is not None
        completed = False
        while not self._closing:
            try:
                frame = self.framer.next_frame()
            except FramingError as exc:
                self._deadletter(exc.reason, exc.detail, exc.discarded, close_after=exc.reason if exc.fatal else None)
                completed = True
                continue
            if frame is None:
                break
            completed = True
            self._frame(frame)
        self._track_partial(completed)

    def _track_partial(self, completed: bool) -> None:
        """The per-frame deadline runs from the first byte of a frame, whatever trickles after."""
        if self.framer is None or not self.framer.buffered:
            self._frame_started = None
        elif completed or self._frame_started is None:
            self._frame_started = self._last_activity  # a new frame began in these bytes
            self.edge.wheel.schedule(self, self._frame_started + self.settings.frame_timeout)

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
            self._runs = None
        if self.edge.rejects(self.device_id):  # no ack, no raw record: a dead letter, then the close
            detail = f"device {self.device_id} is not registered (TRACKPIPE_UNREGISTERED=reject)"
            self._deadletter(UNREGISTERED, detail, frame, close_after=f"unregistered device {self.device_id}")
            return
        self.edge.stats.frames += 1
        tally = self._tally
        if tally is not None:
            tally[0] += 1
            tally[1] += len(frame)
        seq = self._seq
        self._seq += 1
        runs = self._runs
        if runs is None:  # the first frame, or the device id changed
            runs = self._runs = self.edge.raw_runs(
                self.codec, self.device_id, "tcp", self.peer, self.connection_id, self.local_port
            )
        value = self.edge.raw_record(frame, info, seq, runs)
        self._enqueue(
            _Outgoing(self.edge.raw_topic, self._key(), value, self.edge.reply(self.codec, frame, info, "tcp"))
        )

    def _key(self) -> bytes:
        return (self.device_id or self.connection_id).encode()

    def _deadletter(self, reason: str, detail: str, raw: bytes, close_after: str | None = None) -> None:
        """Bounded: `deadletter_per_connection` per connection (reaching it closes the
        connection) and the edge's rates per source host and in total (beyond: counted)."""
        self._dead += 1
        limit = self.settings.deadletter_per_connection
        if limit > 0 and self._dead > limit:
            self.edge.stats.deadletters_suppressed += 1
            return
        if limit > 0 and self._dead == limit and close_after is None:
            close_after = f"dead letter limit: {limit} from this connection"
        if not self.edge.deadletter_allowed(self.peer[0], reason):
            if close_after:
                self._closing = True
                self.close(close_after)
            return
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
            self._closing = True  # read nothing more; closed once the dead letter is durable
            if self.transport is not None:
                self.transport.pause_reading()

    def _finish_partial(self, why: str) -> None:
        """At close: bytes that never became a frame are dead-lettered, not forgotten."""
        rest = self.framer.take_rest() if self.framer is not None else bytes(self._head or b"")
        self._head = None
        self._frame_started = None
        if rest:
            reason = "truncated" if self.framer is not None else "unknown"
            self._deadletter(reason, f"{len(rest)} bytes pending at {why}", rest)

    # -- publishing in order, replies after confirmation --------------------------
    def _enqueue(self, item: _Outgoing) -> None:
        """Hand `item` to the publisher; its ack is written once it and everything handed
        before it is confirmed (`records_done`).  No task per frame: the publisher calls back."""
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        item.handed = time.monotonic()
        try:
            self.edge.publisher.submit(item.topic, item.key, item.value, self, item)
        except KafkaUnavailable as exc:  # spool full: nothing unconfirmed is acknowledged
            self._fail_queue(f"kafka unavailable: {exc}")
            return
        queue.append(item)
        if len(queue) >= self.settings.max_inflight and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def record_done(self, token: Any, error: Exception | None, partition: int, offset: int) -> None:
        token.done = True
        token.error = error

    def records_done(self) -> None:
        """Confirmations came: ack, in frame order, every frame confirmed with all before it
        (one write); the first failure closes the connection, acking nothing after it."""
        queue = self._queue
        if not queue:
            return
        replies: list[bytes] = []
        latency = self.edge.stats.publish_latency
        now = time.monotonic()
        closing = None
        while queue and queue[0].done:
            item = queue.popleft()
            if item.error is not None:
                # nothing unconfirmed was acknowledged: the device keeps its data and resends
                closing = f"kafka unavailable: {item.error}"
                break
            latency.observe(now - item.handed)
            if item.reply:
                replies.append(item.reply)  # durable: its ack may go
            if item.close_after:
                closing = item.close_after
                break
        self._write_replies(replies)  # before any close: what is confirmed is acked
        if closing is not None:
            self._fail_queue(closing)
            return
        if self._paused and len(queue) < self.settings.max_inflight // 2:
            self._paused = False
            if self.transport is not None and not self._closing:
                self.transport.resume_reading()
        if not queue:
            self._queue = None  # an idle connection keeps no queue
            if self._close_pending and self.transport is not None:
                self.transport.close()

    def _fail_queue(self, reason: str) -> None:
        if self._queue is not None:
            self._queue.clear()
        self._queue = None
        self.close(reason, after_confirmations=True)
        if self._close_pending and self.transport is not None:  # closing already: now nothing waits
            self.transport.close()

    def _write_replies(self, replies: list[bytes]) -> None:
        if replies and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(replies))
            self.edge.stats.replies += len(replies)
            if self._tally is not None:
                self._tally[2] += len(replies)

    # -- deadlines (checked by the edge's wheel) and closing ---------------------------
    def deadline(self) -> float:
        """The earliest of the detection, per-frame and idle deadlines (loop time)."""
        s = self.settings
        if self.framer is None:
            return self._opened + s.detect_timeout
        due = self._last_activity + s.idle_timeout
        if self._frame_started is not None:
            due = min(due, self._frame_started + s.frame_timeout)
        return due

    def on_deadline(self, now: float) -> None:
        if self._closing or self.transport is None or self.transport.is_closing():
            return
        s = self.settings
        if self.framer is None:
            if now < self._opened + s.detect_timeout:
                self.edge.wheel.schedule(self, self._opened + s.detect_timeout)
            elif self._head:
                self._reject_unknown(f"undecided after {s.detect_timeout}s ({len(self._head)} bytes)")
            else:
                self.close("silent: no bytes within the detection timeout")
            return
        idle = now - self._last_activity
        started = self._frame_started
        if idle >= s.idle_timeout:
            self._finish_partial("idle timeout")
            self.close(f"idle timeout: idle for {idle:.0f}s")
        elif started is not None and now - started >= s.frame_timeout:
            pending = self.framer.buffered
            self._finish_partial(f"frame timeout ({now - started:.0f}s since its first byte)")
            self.close(f"frame timeout: {pending} bytes of a frame not completed within {s.frame_timeout:g}s")
        else:
            self.edge.wheel.schedule(self, self.deadline())

    def close(self, reason: str, *, after_confirmations: bool = False) -> None:
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
        if self._queue and not after_confirmations:
            # frames and dead letters already received are still published; `records_done` closes after
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
        #: (source, device id, protocol) -> the raw record's per-source bytes (`Edge.raw_runs`)
        self._runs: dict[tuple[tuple[str, int], str | None, str], tuple[bytes, ...]] = {}
        self._inflight = 0
        self._sweep_at = 0.0
        self._seq = itertools.count()  # frame number over this endpoint: (connection_id, seq) is unique

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport
        self.local_port = int((transport.get_extra_info("sockname") or ("", 0))[1])

    def error_received(self, exc: Exception) -> None:
        self.edge.logs.log(logging.WARNING, "udp-error", "udp error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        edge = self.edge
        edge.stats.datagrams += 1
        edge.stats.bytes_in += len(data)
        edge.stats.udp_bytes += len(data)
        now = time.monotonic()
        host = str(addr[0])
        # cheapest refusals first: a flooding source or an overloaded edge costs no decoding
        if not edge.udp_sources.allow(host, now):
            edge.stats.datagrams_shed += 1
            edge.logs.log(
                logging.WARNING,
                "udp-shed",
                "udp source %s over %g datagrams/s: shedding (%d shed so far)",
                host,
                self.settings.udp_source_rate,
                edge.stats.datagrams_shed,
            )
            return
        if self._inflight >= self.settings.max_inflight * 8:
            edge.stats.datagrams_dropped += 1
            edge.logs.log(
                logging.WARNING,
                "udp-overload",
                "udp overload: %d datagrams unconfirmed; dropping one from %s (%d dropped so far)",
                self._inflight,
                host,
                edge.stats.datagrams_dropped,
            )
            return
        peer = (host, int(addr[1]))
        conn_id = f"udp-{peer[0]}:{peer[1]}"
        self._sweep(now)
        known = self._ids.get(peer)
        device_id = known[0] if known and known[1] > now else None

        def dead(reason: str, detail: str, raw: bytes, protocol: str | None) -> None:
            if not edge.deadletter_allowed(host, reason):
                return
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
        tally = edge.stats.tally(codec.name, "udp")
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
            if edge.rejects(device_id):  # no ack, no raw record
                dead(
                    UNREGISTERED,
                    f"device {device_id} is not registered (TRACKPIPE_UNREGISTERED=reject)",
                    frame,
                    codec.name,
                )
                continue
            edge.stats.frames += 1
            tally[0] += 1
            tally[1] += len(frame)
            seq = next(self._seq)
            runs = self._runs.get((peer, device_id, codec.name))
            if runs is None:  # encoded once per source, device and protocol (bounded: cleared by `_sweep`)
                if len(self._runs) >= UDP_RUNS_KEPT:
                    self._runs.clear()
                runs = edge.raw_runs(codec, device_id, "udp", peer, conn_id, self.local_port)
                self._runs[(peer, device_id, codec.name)] = runs
            value = edge.raw_record(frame, info, seq, runs)
            items.append(
                (edge.raw_topic, (device_id or conn_id).encode(), value, edge.reply(codec, frame, info, "udp"))
            )
        if items:
            self._publish(items, peer, tally)

    def _publish(
        self, items: list[tuple[str, bytes, bytes, bytes | None]], peer: tuple[str, int], tally: Tally | None = None
    ) -> None:
        self._inflight += 1
        asyncio.get_running_loop().create_task(self._send(items, peer, tally))

    async def _send(
        self, items: list[tuple[str, bytes, bytes, bytes | None]], peer: tuple[str, int], tally: Tally | None
    ) -> None:
        publisher = self.edge.publisher
        try:
            handed = time.monotonic()
            sent = [(await publisher.send(topic, value, key), reply) for topic, key, value, reply in items]
            replies: list[bytes] = []
            try:
                async with publisher.deadline():  # spooled (if spooling) when it exits
                    latency = self.edge.stats.publish_latency
                    for future, reply in sent:
                        await publisher.confirm(future)
                        latency.observe(time.monotonic() - handed)
                        if reply:
                            replies.append(reply)
            finally:
                if self.transport is not None:
                    for reply in replies:  # each confirmed frame's ack, also when a later one failed
                        self.transport.sendto(reply, peer)
                    self.edge.stats.replies += len(replies)
                    if tally is not None:
                        tally[2] += len(replies)
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
        self._runs.clear()  # sources come and go: what is still talking is encoded again once
        for key in [k for k, (_, exp) in self._ids.items() if exp <= now]:
            del self._ids[key]
