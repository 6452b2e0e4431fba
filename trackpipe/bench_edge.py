"""Edge memory per idle connection:
`python -m trackpipe.bench_edge [connections] [sources] [--processes=N] [--tracemalloc]`.

An edge (the real `Edge`, with a publisher that confirms at once, so only the edge's own
memory is measured) runs in a child process on loopback; client processes open
`connections` TCP connections from several 127.0.0.x source addresses, each logs in as a
GT06 device and waits for its login reply; then the edge's RSS is read from /proc and
printed per connection.  The number of connections is capped by the file-descriptor limit
the edge process may have (raised with `resource.setrlimit` up to the hard limit); the cap
is printed.  Bounded: every step has a deadline and every process started is stopped by PID.

With `--tracemalloc` the edge traces its Python allocations and also prints the heap bytes
held per connection, by allocating source line (where an idle connection's bytes go).
Tracing costs memory of its own, so the RSS figure of such a run is not the edge's: compare
RSS figures from runs without it.

With `--processes=N` the edge is N such children on one port with SO_REUSEPORT (as
`trackpipe edge --processes N`): the fd cap and the RSS are summed over them, and each one's
share of the connections is printed.  That is how one edge holds more connections than one
process's fd hard limit allows (20,000 on the machine these figures come from).

The edge child runs on the loop `trackpipe edge` would choose (`TRACKPIPE_LOOP`, see
`trackpipe.loops`); the summary names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import queue
import resource
import selectors
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

IP_BIND_ADDRESS_NO_PORT = 24  # Linux: the port is chosen at connect, per destination
FD_MARGIN = 256  # descriptors the edge needs besides connections (listeners, epoll, pipes, logs)
LOGIN_REPLY = 10  # bytes of a GT06 login reply (78 78 05 01 sn sn crc crc 0d 0a)
LIFETIME = 600.0  # s: the edge child stops by itself after this
TRACE_FRAMES = 3  # with --tracemalloc: an allocation is told by its line and two callers


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


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """The kind of the running loop, "uvloop" or "asyncio" (the child says which it got)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# -- the edge child ------------------------------------------------------------------------


class NullPublisher:
    """Confirms every record at once: the edge's memory without a Kafka client's."""

    def submit(self, topic: str, key: bytes | None, value: bytes, sender: Any, token: Any) -> None:
        asyncio.get_running_loop().call_soon(self._confirmed, sender, token)  # as a batch would: later

    @staticmethod
    def _confirmed(sender: Any, token: Any) -> None:
        sender.record_done(token, None, 0, 0)
        sender.records_done()

    async def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    @contextlib.asynccontextmanager
    async def deadline(self) -> AsyncIterator[None]:
        yield

    async def confirm(self, future: asyncio.Future[Any]) -> None:
        await future


def heap_breakdown(snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot, per: int, top: int = 20) -> list[str]:
    """The heap growth from `base` to `snapshot` by allocating line, in bytes (and blocks) per
    one of `per` connections, largest first; the last line is the total."""
    stats = snapshot.compare_to(base, "traceback")
    total = sum(stat.size_diff for stat in stats)
    lines = []
    for stat in stats[:top]:
        where = " < ".join(f"{'/'.join(f.filename.split('/')[-2:])}:{f.lineno}" for f in stat.traceback)
        lines.append(f"  {stat.size_diff / per:8.1f} B {stat.count_diff / per:6.2f} blocks  {where}")
    lines.append(f"  {total / per:8.1f} B per connection in all (Python heap, tracemalloc)")
    return lines


async def _serve(wanted_fds: int, trace: bool = False, port: int = 0, slot: int = -1, processes: int = 1) -> None:
    import logging

    from trackpipe.config import Settings
    from trackpipe.edge.server import Edge

    logging.basicConfig(level=logging.WARNING)
    limit = raise_fd_limit(wanted_fds)
    settings = Settings(
        host="127.0.0.1",
        port=port,
        edge_id="bench" if slot < 0 else f"bench.{slot}",
        idle_timeout=LIFETIME,
        log_level="warning",
        edge_slot=slot,  # >= 0: one of `processes` edge processes sharing the port (SO_REUSEPORT)
        edge_processes=processes,
    )
    edge = Edge(settings, NullPublisher())  # type: ignore[arg-type]
    await edge.start()
    if trace:
        tracemalloc.start(TRACE_FRAMES)
    base = tracemalloc.take_snapshot() if trace else None
    loop = asyncio.get_running_loop()
    print(f"{edge.tcp_port} {limit} {loop_name(loop)}", flush=True)
    commands: asyncio.Queue[str] = asyncio.Queue()
    pending = b""

    def readable() -> None:
        nonlocal pending
        chunk = os.read(sys.stdin.fileno(), 4096)
        if not chunk:
            loop.remove_reader(sys.stdin.fileno())
            commands.put_nowait("")  # the parent closed stdin (or died)
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            commands.put_nowait(line.decode().strip() or "?")

    loop.add_reader(sys.stdin.fileno(), readable)
    stop_at = loop.time() + LIFETIME
    while (left := stop_at - loop.time()) > 0:
        try:
            command = await asyncio.wait_for(commands.get(), left)
        except TimeoutError:
            break
        if not command:
            break
        if command == "count":
            print(f"open {edge.stats.open_connections} replies {edge.stats.replies}", flush=True)
            continue
        if command == "measure" and base is not None:
            per = max(edge.stats.open_connections, 1)
            gc.collect()
            for line in heap_breakdown(tracemalloc.take_snapshot(), base, per):
                print(line, flush=True)
        print("measured", flush=True)
    print(f"open {edge.stats.open_connections} replies {edge.stats.replies}", flush=True)
    await edge.stop()


# -- the clients -------------------------------------------------------------------------------


def _clients(port: int, sources: list[str], first: int, count: int, ready: Any, done: Any, timeout: float) -> None:
    """Open `count` logged-in connections, report how many got their login reply, hold them.
    Reports (connected, replied, first error) whatever happens, so the parent never waits blind."""
    from trackpipe.protocols.devices.gt06 import Device

    socks: list[socket.socket] = []
    replied = 0
    error = ""
    try:
        raise_fd_limit(count + FD_MARGIN)
        sel = selectors.DefaultSelector()
        got: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        for i in range(count):
            if time.monotonic() > deadline:
                error = error or f"connect deadline ({timeout:g}s) passed after {i} connections"
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((sources[i % len(sources)], 0))
                s.settimeout(5.0)
                s.connect(("127.0.0.1", port))
                s.sendall(Device(f"35{first + i:013d}", "tcp").login()[0])
            except OSError as exc:
                error = error or f"connect: {exc}"
                s.close()
                continue
            s.setblocking(False)
            socks.append(s)
            got[s.fileno()] = 0
            sel.register(s, selectors.EVENT_READ)
        waiting = len(socks)
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(256)
                except OSError as exc:
                    error = error or f"recv: {exc}"
                    data = b""
                got[sock.fileno()] += len(data)
                if not data or got[sock.fileno()] >= LOGIN_REPLY:
                    sel.unregister(sock)
                    waiting -= 1
                    replied += 1 if data else 0
    except Exception as exc:  # reported to the parent, never a silent hang
        error = error or f"{type(exc).__name__}: {exc}"
    finally:
        ready.put((len(socks), replied, error))
    done.wait(timeout)  # hold the connections until the parent has measured
    for s in socks:
        s.close()


def _read_line(stream: Any, deadline: float) -> str:
    """One line from the child's (unbuffered, binary) stdout, or "" at EOF or the deadline."""
    line = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                continue
            byte = os.read(stream.fileno(), 1)
            if not byte or byte == b"\n":
                break
            line += byte
    return line.decode()


@dataclass
class IdleResult:
    asked: int
    cap: int
    connected: int
    replied: int
    rss_before_kib: int
    rss_after_kib: int
    loop: str = ""  # the edge child's event loop (TRACKPIPE_LOOP, as `trackpipe edge` chooses it)
    errors: list[str] = field(default_factory=list)  # the first error of each client process
    heap: list[str] = field(default_factory=list)  # with tracing: where the bytes go
    processes: int = 1  # edge processes on the one port
    spread: list[int] = field(default_factory=list)  # connections each edge process held

    @property
    def bytes_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) * 1024 / max(self.replied, 1)

    def summary(self) -> str:
        lines = [
            f"idle connections ({self.loop or '?'} loop, {self.processes} edge process"
            f"{'es' if self.processes > 1 else ''}): asked {self.asked}, fd cap {self.cap}, "
            f"connected {self.connected}, "
            f"logged in {self.replied}; edge RSS {self.rss_before_kib / 1024:.1f} MiB -> "
            f"{self.rss_after_kib / 1024:.1f} MiB = {self.bytes_per_connection:.0f} bytes per connection"
        ]
        if self.processes > 1 and self.spread:
            lines.append(f"connections per edge process: {', '.join(str(n) for n in self.spread)}")
        lines += [f"client error: {e}" for e in self.errors]
        if self.heap:
            lines.append("edge heap per connection by allocating line (RSS above includes tracing):")
            lines += self.heap
        return "\n".join(lines)


def idle_connections(
    n: int = 100_000,
    sources: int = 5,
    per_process: int = 10_000,
    timeout: float = 120.0,
    trace: bool = False,
    processes: int = 1,
) -> IdleResult:
    """Open `n` (capped by the edge's fd limit) logged-in idle GT06 connections to one edge from
    `sources` source addresses 127.0.0.1.., and measure the edge's RSS per connection (with
    `trace`, also its Python heap per connection by allocating line).  `processes` > 1: the edge
    as that many processes on one port (SO_REUSEPORT, as `trackpipe edge --processes`); RSS and
    the fd cap are the sum over them."""
    from trackpipe.edge.group import reserve_port

    reserved = reserve_port("127.0.0.1", 0) if processes > 1 else None
    port = reserved.getsockname()[1] if reserved is not None else 0
    per_edge = n // processes + FD_MARGIN + (n // processes) // 10  # the kernel's spread is not exact
    edges = []
    for slot in range(processes) if processes > 1 else [-1]:
        code = (
            "import trackpipe.bench_edge as b, trackpipe.loops as l; "
            f"l.run(b._serve({per_edge}, {trace}, {port}, {slot}, {processes}), 'edge')"
        )
        edges.append(
            subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        )
    workers: list[multiprocessing.Process] = []
    ctx = multiprocessing.get_context("fork")
    done = ctx.Event()
    try:
        limit, kind = 0, ""
        for edge in edges:
            assert edge.stdout is not None
            first_line = _read_line(edge.stdout, time.monotonic() + 60).split()
            if len(first_line) != 3:
                raise RuntimeError(f"the edge did not start (exit code {edge.poll()})")
            port, kind = int(first_line[0]), first_line[2]
            limit += int(first_line[1]) - FD_MARGIN
        if reserved is not None:
            reserved.close()
        cap = min(n, limit)
        time.sleep(0.5)
        before = sum(rss_kib(edge.pid) for edge in edges)
        ready = ctx.Queue()
        addresses = [f"127.0.0.{i + 1}" for i in range(sources)]
        for first in range(0, cap, per_process):
            count = min(per_process, cap - first)
            worker = ctx.Process(target=_clients, args=(port, addresses, first, count, ready, done, timeout))
            worker.start()
            workers.append(worker)
        connected = replied = 0
        errors: list[str] = []
        for _ in workers:
            try:
                c, r, error = ready.get(timeout=timeout + 30)
            except queue.Empty:
                raise RuntimeError(f"a client process reported nothing within {timeout + 30:g}s") from None
            connected, replied = connected + c, replied + r
            if error:
                errors.append(error)
        time.sleep(1.0)  # let the edge settle (closed handshakes, freed buffers)
        after = sum(rss_kib(edge.pid) for edge in edges)
        result = IdleResult(n, cap, connected, replied, before, after, kind, errors, processes=len(edges))
        if trace:
            for edge in edges:
                assert edge.stdin is not None and edge.stdout is not None
                edge.stdin.write(b"measure\n")
                deadline = time.monotonic() + 120
                while (line := _read_line(edge.stdout, deadline)) and line != "measured":
                    result.heap.append(line)
        for edge in edges:  # each tells how many connections it holds (the kernel's spread)
            assert edge.stdin is not None and edge.stdout is not None
            edge.stdin.write(b"count\n")
            deadline = time.monotonic() + 30
            while (line := _read_line(edge.stdout, deadline)) and not line.startswith("open "):
                pass
            if line.startswith("open "):
                result.spread.append(int(line.split()[1]))
        return result
    finally:
        if reserved is not None:
            reserved.close()
        done.set()
        for worker in workers:
            worker.join(10)
            if worker.is_alive() and worker.pid is not None:
                worker.kill()
                worker.join(5)
        for edge in edges:
            if edge.stdin is not None and not edge.stdin.closed:
                edge.stdin.close()
            try:
                edge.wait(15)
            except subprocess.TimeoutExpired:
                edge.kill()
                edge.wait(5)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    trace = "--tracemalloc" in args
    processes = 1
    numbers: list[str] = []
    for arg in args:
        if arg.startswith("--processes="):
            processes = int(arg.split("=", 1)[1])
        elif arg != "--tracemalloc":
            numbers.append(arg)
    n = int(numbers[0]) if numbers else 100_000
    sources = int(numbers[1]) if len(numbers) > 1 else 5
    print(idle_connections(n, sources, trace=trace, processes=processes).summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
