"""Edge memory per idle connection: `python -m trackpipe.bench_edge [connections] [sources]`.

An edge (the real `Edge`, with a publisher that confirms at once, so only the edge's own
memory is measured) runs in a child process on loopback; client processes open
`connections` TCP connections from several 127.0.0.x source addresses, each logs in as a
GT06 device and waits for its login reply; then the edge's RSS is read from /proc and
printed per connection.  The number of connections is capped by the file-descriptor limit
the edge process may have (raised with `resource.setrlimit` up to the hard limit); the cap
is printed.  Bounded: every step has a deadline and every process started is stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

IP_BIND_ADDRESS_NO_PORT = 24  # Linux: the port is chosen at connect, per destination
FD_MARGIN = 256  # descriptors the edge needs besides connections (listeners, epoll, pipes, logs)
LOGIN_REPLY = 10  # bytes of a GT06 login reply (78 78 05 01 sn sn crc crc 0d 0a)
LIFETIME = 600.0  # s: the edge child stops by itself after this


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards `wanted` where allowed; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (wanted, hard):
        if target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# -- the edge child ------------------------------------------------------------------------


class NullPublisher:
    """Confirms every record at once: the edge's memory without a Kafka client's."""

    async def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    @contextlib.asynccontextmanager
    async def deadline(self) -> AsyncIterator[None]:
        yield

    async def confirm(self, future: asyncio.Future[Any]) -> None:
        await future


async def _serve(wanted_fds: int) -> None:
    import logging

    from trackpipe.config import Settings
    from trackpipe.edge.server import Edge

    logging.basicConfig(level=logging.WARNING)
    limit = raise_fd_limit(wanted_fds)
    settings = Settings(host="127.0.0.1", port=0, edge_id="bench", idle_timeout=LIFETIME, log_level="warning")
    edge = Edge(settings, NullPublisher())  # type: ignore[arg-type]
    await edge.start()
    print(f"{edge.tcp_port} {limit}", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stdin_closed.done() or stdin_closed.set_result(None))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stdin_closed, LIFETIME)  # the parent closes stdin (or dies)
    print(f"open {edge.stats.open_connections} replies {edge.stats.replies}", flush=True)
    await edge.stop()


# -- the clients -------------------------------------------------------------------------------


def _clients(port: int, sources: list[str], first: int, count: int, ready: Any, done: Any, timeout: float) -> None:
    """Open `count` logged-in connections, report how many got their login reply, hold them."""
    from trackpipe.protocols.devices.gt06 import Device

    raise_fd_limit(count + FD_MARGIN)
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    got: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    for i in range(count):
        if time.monotonic() > deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((sources[i % len(sources)], 0))
        s.settimeout(5.0)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(Device(f"35{first + i:013d}", "tcp").login()[0])
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
        got[s.fileno()] = 0
        sel.register(s, selectors.EVENT_READ)
    replied = 0
    while replied < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            data = sock.recv(256)
            got[sock.fileno()] += len(data)
            if not data or got[sock.fileno()] >= LOGIN_REPLY:
                sel.unregister(sock)
                replied += 1 if data else 0
    ready.put((len(socks), replied))
    done.wait(timeout)  # hold the connections until the parent has measured
    for s in socks:
        s.close()


@dataclass
class IdleResult:
    asked: int
    cap: int
    connected: int
    replied: int
    rss_before_kib: int
    rss_after_kib: int

    @property
    def bytes_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) * 1024 / max(self.replied, 1)

    def summary(self) -> str:
        return (
            f"idle connections: asked {self.asked}, fd cap {self.cap}, connected {self.connected}, "
            f"logged in {self.replied}; edge RSS {self.rss_before_kib / 1024:.1f} MiB -> "
            f"{self.rss_after_kib / 1024:.1f} MiB = {self.bytes_per_connection:.0f} bytes per connection"
        )


def idle_connections(
    n: int = 100_000, sources: int = 5, per_process: int = 10_000, timeout: float = 120.0
) -> IdleResult:
    """Open `n` (capped by the edge's fd limit) logged-in idle GT06 connections to one edge from
    `sources` source addresses 127.0.0.1.., and measure the edge's RSS per connection."""
    edge = subprocess.Popen(
        [sys.executable, "-c", f"import asyncio, trackpipe.bench_edge as b; asyncio.run(b._serve({n + FD_MARGIN}))"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    workers: list[multiprocessing.Process] = []
    ctx = multiprocessing.get_context("fork")
    done = ctx.Event()
    try:
        assert edge.stdout is not None
        port_text, limit_text = edge.stdout.readline().split()
        cap = min(n, int(limit_text) - FD_MARGIN)
        time.sleep(0.5)
        before = rss_kib(edge.pid)
        ready = ctx.Queue()
        addresses = [f"127.0.0.{i + 1}" for i in range(sources)]
        for first in range(0, cap, per_process):
            count = min(per_process, cap - first)
            worker = ctx.Process(target=_clients, args=(int(port_text), addresses, first, count, ready, done, timeout))
            worker.start()
            workers.append(worker)
        connected = replied = 0
        for _ in workers:
            c, r = ready.get(timeout=timeout + 10)
            connected, replied = connected + c, replied + r
        time.sleep(1.0)  # let the edge settle (closed handshakes, freed buffers)
        return IdleResult(n, cap, connected, replied, before, rss_kib(edge.pid))
    finally:
        done.set()
        for worker in workers:
            worker.join(10)
            if worker.is_alive() and worker.pid is not None:
                worker.kill()
                worker.join(5)
        if edge.stdin is not None:
            edge.stdin.close()
        try:
            edge.wait(15)
        except subprocess.TimeoutExpired:
            edge.kill()
            edge.wait(5)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 100_000
    sources = int(args[1]) if len(args) > 1 else 5
    print(idle_connections(n, sources).summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
