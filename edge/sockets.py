"""The edge's own TCP socket layer (Linux): a listener that accepts, one epoll set for every
connection watched by the event loop as a single reader (`SocketPoller`), and one slotted
`EdgeTransport` per connection that reads into the edge's one shared buffer and writes at once,
keeping only what the socket did not take.  An idle logged-in connection then costs ~1 KB of the
edge's RSS instead of ~3 KB through asyncio's transports (`python -m trackpipe.bench_edge`).
The protocols on top (`edge.server.TcpConnection`) are ordinary asyncio BufferedProtocols;
without epoll the edge uses `loop.create_server` instead."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import select
import socket
from collections.abc import Callable

log = logging.getLogger("trackpipe.edge")

ACCEPT_BATCH = 256  # connections accepted per readiness callback of a listener
POLL_BATCH = 1024  # socket events handled per callback of the poller (the loop stays fair)
ACCEPT_RETRY = 1.0  # s: out of descriptors, a listener pauses this long

HOSTS_SHARED = 65536  # distinct peer host strings shared between connections (then the table restarts)
_IN = getattr(select, "EPOLLIN", 1)
_OUT = getattr(select, "EPOLLOUT", 4)
_HANGUP = getattr(select, "EPOLLERR", 8) | getattr(select, "EPOLLHUP", 16)
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def own_poller_available() -> bool:
    """The edge serves TCP itself on Linux (epoll); elsewhere through asyncio's transports."""
    return hasattr(select, "epoll")


class SocketPoller:
    """One epoll set for every TCP connection of an edge, watched by the loop as one reader.
    Level-triggered: a socket with more to read is reported again at the next callback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll = select.epoll()
        self._transports: dict[int, EdgeTransport] = {}  # fd -> transport
        self._hosts: dict[str, str] = {}  # one str per peer host, shared by its connections
        self._stopping = False
        loop.add_reader(self._epoll.fileno(), self._ready)

    def __len__(self) -> int:
        return len(self._transports)

    def host(self, name: str) -> str:
        shared = self._hosts.get(name)
        if shared is None:
            if len(self._hosts) >= HOSTS_SHARED:
                self._hosts.clear()
            shared = self._hosts[name] = name
        return shared

    def add(self, transport: EdgeTransport) -> None:
        self._transports[transport._fd] = transport

    def watch(self, transport: EdgeTransport, mask: int) -> None:
        """Ask epoll for `mask` on the transport's socket (0: nothing, it is left out)."""
        if mask == transport._mask or transport._fd < 0:
            return
        if not mask:
            self._epoll.unregister(transport._fd)
        elif transport._mask:
            self._epoll.modify(transport._fd, mask)
        else:
            self._epoll.register(transport._fd, mask)
        transport._mask = mask

    def forget(self, transport: EdgeTransport) -> None:
        if transport._mask:
            with contextlib.suppress(OSError):
                self._epoll.unregister(transport._fd)
            transport._mask = 0
        self._transports.pop(transport._fd, None)
        if self._stopping and not self._transports:
            self.close()

    def _ready(self) -> None:
        try:
            events = self._epoll.poll(0, POLL_BATCH)
        except InterruptedError:
            return
        for fd, mask in events:
            transport = self._transports.get(fd)
            if transport is None:  # closed earlier in this batch
                continue
            try:
                transport.on_events(mask)
            except Exception as exc:  # one connection's bug must not stop the others
                log.exception("socket event handling failed")
                transport.fail(exc)

    def stop(self) -> None:
        """Close once every transport has gone (those still flushing a reply may finish)."""
        self._stopping = True
        if not self._transports:
            self.close()

    def close(self) -> None:
        if self._epoll.closed:
            return
        for transport in list(self._transports.values()):
            transport.abort()
        self.loop.remove_reader(self._epoll.fileno())
        self._epoll.close()


class EdgeTransport(asyncio.Transport):
    """The transport of one accepted TCP socket, driven by the edge's `SocketPoller`: reads
    into the protocol's buffer (`get_buffer`/`buffer_updated`), writes at once and keeps only
    what the socket did not take, closes after the pending bytes are written, and calls the
    protocol's `connection_lost` soon after, as asyncio's transports do."""

    __slots__ = ("_closing", "_fd", "_listener", "_mask", "_peer", "_protocol", "_reading", "_wbuf")

    def __init__(self, listener: TcpListener, fd: int, peer: tuple[str, int], protocol: asyncio.BaseProtocol) -> None:
        # no super().__init__(): it would give every connection an extra-info dict
        self._listener = listener
        self._fd = fd
        self._peer = peer
        self._protocol = protocol
        self._mask = 0  # the epoll events asked for
        self._reading = True
        self._closing = False
        self._wbuf: bytearray | None = None  # bytes the socket did not take yet

    # -- the asyncio.Transport surface the edge uses --------------------------------------
    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "peername":
            return self._peer
        if name == "sockname":
            return self._listener.sockname  # the listener's: every connection shares it
        return default

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._watch()

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._watch()

    def get_write_buffer_size(self) -> int:
        return len(self._wbuf) if self._wbuf else 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._fd < 0 or not data:
            return
        if self._wbuf:
            self._wbuf += data
            return
        try:
            sent = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.fail(exc)
            return
        if sent < len(data):
            self._wbuf = bytearray(memoryview(data)[sent:])
            self._watch()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._wbuf:
            self._watch()  # read nothing more; close once written
        else:
            self._finish(None)

    def abort(self) -> None:
        self._closing = True
        self._wbuf = None
        self._finish(None)

    # -- driven by the poller -------------------------------------------------------------
    def start(self) -> None:
        self._watch()

    def on_events(self, mask: int) -> None:
        if self._wbuf and mask & (_OUT | _HANGUP):
            self._flush()
        if self._fd >= 0 and self._reading and not self._closing and mask & (_IN | _HANGUP):
            self._read()

    def fail(self, exc: BaseException | None) -> None:
        """A socket error: close at once, pending bytes dropped (the protocol is told why)."""
        self._closing = True
        self._wbuf = None
        self._finish(exc)

    def _watch(self) -> None:
        mask = (_IN if self._reading and not self._closing else 0) | (_OUT if self._wbuf else 0)
        self._listener.poller.watch(self, mask)

    def _read(self) -> None:
        protocol: asyncio.BufferedProtocol = self._protocol  # type: ignore[assignment]
        try:
            count = os.readv(self._fd, [protocol.get_buffer(-1)])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.fail(exc)
            return
        if count:
            protocol.buffer_updated(count)
        elif protocol.eof_received():
            self.pause_reading()  # half-closed: the protocol still writes
        else:
            self.close()

    def _flush(self) -> None:
        assert self._wbuf is not None
        try:
            sent = os.write(self._fd, self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.fail(exc)
            return
        del self._wbuf[:sent]
        if self._wbuf:
            return
        self._wbuf = None
        if self._closing:
            self._finish(None)
        else:
            self._watch()

    def _finish(self, exc: BaseException | None) -> None:
        if self._fd < 0:
            return
        self._listener.poller.forget(self)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
        self._listener.poller.loop.call_soon(self._protocol.connection_lost, exc)


class TcpListener:
    """A listening socket whose connections the edge's poller serves (see `EdgeTransport`);
    quacks like the `asyncio.Server` the edge used to keep (`close`, `wait_closed`)."""

    def __init__(self, sock: socket.socket, poller: SocketPoller, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self.sock = sock
        self.poller = poller
        self.factory = factory
        self.sockname = sock.getsockname()
        self.port = int(self.sockname[1])
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        poller.loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:  # out of descriptors: new connections wait in the backlog
                    log.warning("tcp accept on port %s paused %gs: %s", self.port, ACCEPT_RETRY, exc)
                    self.poller.loop.remove_reader(self.sock.fileno())
                    self._retry = self.poller.loop.call_later(ACCEPT_RETRY, self._resume)
                else:
                    log.warning("tcp accept on port %s failed: %s", self.port, exc)
                return
            try:
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                log.info("tcp connection from %s dropped at accept: %s", addr, exc)
                conn.close()
                continue
            peer = (self.poller.host(str(addr[0])), int(addr[1]))
            protocol = self.factory()
            transport = EdgeTransport(self, conn.detach(), peer, protocol)
            self.poller.add(transport)
            try:
                protocol.connection_made(transport)
            except Exception as exc:
                log.exception("tcp connection_made failed for %s:%s", *peer)
                transport.fail(exc)
                continue
            transport.start()

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self.poller.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        self.poller.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    async def wait_closed(self) -> None:
        return None


async def listen_tcp(
    poller: SocketPoller,
    host: str,
    port: int,
    factory: Callable[[], asyncio.BaseProtocol],
    backlog: int = 4096,
    reuse_port: bool = False,
) -> list[TcpListener]:
    """Listening sockets for every address `host` resolves to (as `loop.create_server`);
    `reuse_port`: SO_REUSEPORT (processes of one edge on one port)."""
    infos = await poller.loop.getaddrinfo(
        host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners: list[TcpListener] = []
    seen: set[tuple[object, ...]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, *address[:2]) in seen:
                continue
            seen.add((family, *address[:2]))
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(backlog)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            listeners.append(TcpListener(sock, poller, factory))
    except OSError:
        for listener in listeners:
            listener.close()
        raise
    return listeners
