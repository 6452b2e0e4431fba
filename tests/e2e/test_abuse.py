"""Abuse is bounded and well-behaved devices keep being served (issue 6, item 5), against
the real pipeline: a trickling connection is closed and dead-lettered, a garbage-spewing
connection yields a bounded number of dead letters, and real UDP devices get every reply
during a UDP garbage flood.  Counts are asserted, times only printed."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from trackpipe.edge.publisher import Publisher
from trackpipe.edge.server import Edge
from trackpipe.protocols import registry
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device as Gt06Device
from trackpipe.protocols.devices.teltonika import Device as TeltonikaDevice

from trackpipe.config import Settings

from .conftest import Pipeline


@asynccontextmanager
async def _edge(pipeline: Pipeline, **settings: Any) -> AsyncIterator[Edge]:
    """An edge in this process (settings of the test's choosing) on the pipeline's broker."""
    base = Settings.from_env(host="127.0.0.1", port=0, data_dir=pipeline.data_dir)
    publisher = Publisher(pipeline.bootstrap(), timeout=5.0)
    edge = Edge(dataclasses.replace(base, **settings), publisher)
    await publisher.start(wait=True)
    await edge.start()
    try:
        yield edge
    finally:
        await edge.stop()
        await publisher.stop()


def _count(pipeline: Pipeline, sql: str, want: Callable[[int], bool], timeout: float = 20.0) -> int:
    rows = pipeline.wait_rows(sql, lambda r: bool(r) and want(int(r[0]["n"])), timeout)
    return int(rows[0]["n"]) if rows else 0


def test_a_trickling_connection_is_closed_and_dead_lettered(pipeline: Pipeline) -> None:
    device = Gt06Device("359000000600001", "tcp")
    beat = device.heartbeat()

    async def scenario() -> tuple[int, float, dict[str, int]]:
        async with _edge(pipeline, frame_timeout=1.0, idle_timeout=60.0) as edge:
            reader, writer = await asyncio.open_connection("127.0.0.1", edge.tcp_port)
            writer.write(device.login()[0])
            await writer.drain()
            assert len(await asyncio.wait_for(reader.read(10), 10)) == 10  # login acknowledged
            started, sent = time.monotonic(), 0
            for byte in beat[:-1]:  # a byte every 0.2 s: the idle timer alone never fires
                if reader.at_eof():
                    break
                writer.write(bytes([byte]))
                sent += 1
                try:
                    if await asyncio.wait_for(reader.read(), 0.2) == b"":
                        break  # the edge closed the connection
                except TimeoutError:
                    continue
                except ConnectionResetError:
                    break  # closed with bytes still in flight: a reset is a close too
            took = time.monotonic() - started
            writer.close()
            await asyncio.sleep(0.3)
            return sent, took, dict(edge.stats.closed)

    sent, took, closed = asyncio.run(scenario())
    print(f"trickle: {sent} of {len(beat)} bytes sent, closed after {took:.1f}s, close reasons {closed}")
    assert sent < len(beat) - 1 and "frame timeout" in closed, closed
    n = _count(
        pipeline,
        f"SELECT count() AS n FROM deadletter WHERE device_id = '{device.device_id}' AND reason = 'truncated'",
        lambda n: n >= 1,
    )
    assert n == 1


def test_a_garbage_spewing_connection_gives_bounded_dead_letters(pipeline: Pipeline) -> None:
    device = Gt06Device("359000000600002", "tcp")
    limit, spewed = 8, 500
    bad = bytearray(device.heartbeat())
    bad[-4] ^= 0xFF  # a wrong CRC: each one a dead letter

    async def scenario() -> dict[str, int]:
        async with _edge(pipeline, deadletter_per_connection=limit, deadletter_rate=1000.0) as edge:
            reader, writer = await asyncio.open_connection("127.0.0.1", edge.tcp_port)
            writer.write(device.login()[0] + bytes(bad) * spewed)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 10)  # the login ack, then the edge closes
            writer.close()
            await asyncio.sleep(0.3)
            return dict(edge.stats.closed)

    closed = asyncio.run(scenario())
    assert "dead letter limit" in closed, closed
    time.sleep(1.0)  # nothing more may arrive: wait a little beyond the first count
    n = _count(
        pipeline,
        f"SELECT count() AS n FROM deadletter WHERE device_id = '{device.device_id}'",
        lambda n: n >= limit,
    )
    print(f"garbage connection: {spewed} bad frames sent, {n} dead letters stored, close reasons {closed}")
    assert n == limit


FLOOD = """
import socket, sys
port, count, hosts = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(hosts):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((f"127.0.0.{i + 2}", 0))
    socks.append(s)
garbage = bytes(range(0x20, 0x20 + 8)) * 8  # no protocol matches (checked by the test)
for n in range(count):
    try:
        socks[n % hosts].sendto(garbage, ("127.0.0.1", port))
    except OSError:
        pass
print(count, flush=True)
"""
GARBAGE = bytes(range(0x20, 0x20 + 8)) * 8


def _udp_device(port: int, device: TeltonikaDevice, fixes: list[Fix], tries: int = 20) -> tuple[int, int]:
    """Send each position, resending (as a device does) until its ack; returns (acked, resends)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    acked = resends = 0
    try:
        for fix in fixes:
            datagram = device.position(fix)
            for _ in range(tries):
                sock.sendto(datagram, ("127.0.0.1", port))
                try:
                    reply = sock.recv(256)
                except TimeoutError:
                    resends += 1
                    continue
                assert device.check_reply(datagram, reply), reply.hex()
                acked += 1
                break
            else:
                return acked, resends
    finally:
        sock.close()
    return acked, resends


def test_real_udp_devices_are_served_during_a_garbage_flood(pipeline: Pipeline) -> None:
    assert registry.detect(GARBAGE, "udp").codec is None  # the flood is garbage to every protocol
    devices = [TeltonikaDevice(f"3520940600{i:05d}", "udp") for i in range(5)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    fixes = [Fix(start + timedelta(seconds=s), 48.85 + s / 1e4, 2.35, speed=10.0) for s in range(10)]
    count, hosts = 50_000, 8
    flood = subprocess.Popen(
        [sys.executable, "-c", FLOOD, str(pipeline.port), str(count), str(hosts)], stdout=subprocess.PIPE, text=True
    )
    try:
        began = time.monotonic()
        with ThreadPoolExecutor(len(devices)) as pool:
            results = list(pool.map(lambda d: _udp_device(pipeline.port, d, fixes), devices))
        served = time.monotonic() - began
        out, _ = flood.communicate(timeout=60)
        flood_took = time.monotonic() - began
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait(5)
    acked = sum(a for a, _ in results)
    resends = sum(r for _, r in results)
    print(
        f"udp flood: {out.strip()} garbage datagrams from {hosts} sources in ~{flood_took:.1f}s; "
        f"{len(devices)} devices got {acked}/{len(devices) * len(fixes)} acks in {served:.1f}s "
        f"with {resends} resends"
    )
    assert acked == len(devices) * len(fixes), results
    ids = ", ".join(f"'{d.device_id}'" for d in devices)
    stored = _count(
        pipeline,
        f"SELECT count() AS n FROM positions FINAL WHERE device_id IN ({ids})",
        lambda n: n >= acked,
    )
    assert stored == acked
    sources = ", ".join(f"'127.0.0.{i + 2}'" for i in range(hosts))
    time.sleep(1.0)
    dead = pipeline.query(f"SELECT count() AS n FROM deadletter WHERE splitByChar(':', peer)[1] IN ({sources})")[0]["n"]
    # per source host: a burst of 2 s at 10/s plus 10/s while the flood lasted
    bound = hosts * (20 + 10 * (flood_took + 1))
    log = (pipeline.data_dir / "logs" / "edge.log").read_text(errors="replace").splitlines()
    shed_lines = sum("shedding" in line or "dead letter rate exceeded" in line for line in log)
    print(
        f"udp flood: {dead} dead letters stored for {count} garbage datagrams (bound {bound:.0f}); "
        f"{shed_lines} log lines about shedding in the edge's whole log so far (rate limited)"
    )
    assert 0 < dead <= bound
