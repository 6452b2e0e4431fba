"""Simulated trackers that speak real protocols over real sockets.

Each device: connects (TCP) or picks a source port (UDP), logs in, uploads a
buffered batch of older points (archive), sends live points at `rate` per second
with heartbeats, raises one alarm, and waits for every reply the protocol
requires, checking its bytes.  The device-side frames come from the protocol
module's `Device` (sans-I/O); the expected reply comes from the same module's
`inspect`, so the simulator reads exactly the bytes the server must send.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import pkgutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, Context, DeviceSession, Fix, ProtocolError

REPLY_TIMEOUT = 10.0
PROGRESS_EVERY = 5.0  # s between progress lines (stderr)
ALARMS = ("sos", "powerCut", "lowBattery", "vibration", "overspeed")


class SimulationError(Exception):
    pass


@dataclass
class Report:
    protocol: str
    transport: str
    devices: int
    sent: int = 0
    replies_expected: int = 0
    acknowledged: int = 0
    bad_replies: int = 0
    missing_replies: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    record: list[tuple[str, bytes]] | None = None  # (device id, frame) of every frame sent, when asked
    replies: bool = True  # the protocol answers some frames
    connected: int = 0  # devices whose socket opened
    refused: int = 0  # devices the server refused (nothing listens on the port)

    @property
    def ok(self) -> bool:
        return not self.errors and self.acknowledged == self.replies_expected and self.sent > 0

    def progress(self, elapsed: float) -> str:
        return (
            f"{self.protocol}/{self.transport}: {elapsed:.0f}s, {self.sent} frames sent, "
            f"{self.acknowledged} of {self.replies_expected} acknowledged, {len(self.errors)} error(s)"
        )

    def summary(self) -> str:
        lines = [
            f"{self.protocol}/{self.transport}: {self.devices} device(s), {self.seconds:.1f}s",
            f"frames sent: {self.sent}",
            f"acknowledged: {self.acknowledged} of {self.replies_expected} replies the protocol requires",
        ]
        if self.replies_expected == 0 and self.sent and not self.replies:
            lines[-1] += f" ({self.protocol} sends no replies)"
        if self.refused:
            lines.append(f"connection refused: {self.refused} of {self.devices} device(s) could not connect")
        if self.bad_replies or self.missing_replies:
            lines.append(f"wrong replies: {self.bad_replies}, missing replies: {self.missing_replies}")
        lines += [f"error: {e}" for e in self.errors[:10]]
        return "\n".join(lines)


def device_id(cls: type[DeviceSession], index: int) -> str:
    prefix, length = cls.id_shape
    return prefix + str(index).zfill(length - len(prefix))


def load(protocol: str) -> tuple[Codec, type[DeviceSession], tuple[str, ...]]:
    """The protocol's codec, its device side, and the alarms that device can raise."""
    try:
        codec = registry.get(protocol)
    except KeyError:
        raise SimulationError(f"unknown protocol {protocol!r} (see `trackpipe protocols`)") from None
    try:
        device = importlib.import_module(f"trackpipe.protocols.devices.{codec.name}").Device
    except ModuleNotFoundError:
        names = ", ".join(simulated())
        raise SimulationError(f"no device simulator for {codec.name!r} yet (simulated: {names})") from None
    return codec, device, _expressible(codec, device)


def simulated() -> list[str]:
    """The protocols that have a device side (`trackpipe.protocols.devices.<name>`)."""
    from trackpipe.protocols import devices

    return sorted(m.name for m in pkgutil.iter_modules(devices.__path__) if not m.name.startswith("_"))


def _expressible(codec: Codec, cls: type[DeviceSession]) -> tuple[str, ...]:
    """The alarms this protocol's device can put on the wire so that they decode as that
    alarm (not every protocol has every alarm; some have none without per-device options)."""
    probe = cls(device_id(cls, 1), "tcp")
    fix = track(1, 0, datetime(2026, 1, 1, tzinfo=UTC))
    ctx = Context("tcp", probe.device_id, fix.time, {})
    usable = []
    for alarm in ALARMS:
        try:
            frame = probe.alarm(fix, alarm)
        except ValueError:
            continue
        framer = codec.new_framer()
        framer.feed(frame)
        decoded = []
        try:
            while (cut := framer.next_frame()) is not None:
                decoded += codec.decode(cut, ctx).records
        except ProtocolError:
            continue
        if any(alarm in r.alarms for r in decoded):
            usable.append(alarm)
    return tuple(usable)


def track(index: int, step: int, when: datetime) -> Fix:
    """A plausible moving point: devices spread around a city, driving small circles."""
    angle = (step * 7 + index * 37) % 360
    lat = 52.2297 + (index % 100) * 0.01 + 0.002 * math.sin(math.radians(angle))
    lon = 21.0122 + (index // 100) * 0.01 + 0.002 * math.cos(math.radians(angle))
    return Fix(
        time=when.replace(microsecond=0),
        latitude=round(lat, 5),
        longitude=round(lon, 5),
        speed=42.0,
        course=float(angle),
        altitude=110.0,
        satellites=9,
    )


class _Link:
    """One device's socket, TCP stream or UDP datagrams."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()
        self.failure: OSError | None = None  # an error the UDP socket reported (port unreachable ...)

    async def open(self, host: str, port: int) -> None:
        if self.transport == "tcp":
            self.reader, self.writer = await asyncio.open_connection(host, port)
            return
        queue = self.datagrams
        link = self

        class _Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                queue.put_nowait(data)

            def error_received(self, exc: Exception) -> None:
                if isinstance(exc, OSError):
                    link.failure = exc

        loop = asyncio.get_running_loop()
        self.udp, _ = await loop.create_datagram_endpoint(_Proto, remote_addr=(host, port))

    async def send(self, frame: bytes) -> None:
        if self.writer is not None:
            self.writer.write(frame)
            await self.writer.drain()
        elif self.udp is not None:
            if self.failure is not None:
                raise self.failure
            self.udp.sendto(frame)

    async def receive(self, size: int) -> bytes:
        if self.reader is not None:
            return await asyncio.wait_for(self.reader.readexactly(size), REPLY_TIMEOUT)
        return await asyncio.wait_for(self.datagrams.get(), REPLY_TIMEOUT)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        if self.udp is not None:
            self.udp.close()


async def _exchange(codec: Codec, session: DeviceSession, link: _Link, frame: bytes, report: Report) -> None:
    await link.send(frame)
    report.sent += 1
    if report.record is not None:
        report.record.append((session.device_id, frame))
    info = codec.inspect(frame, link.transport)
    # a reply built from the server's clock (time sync, login with UTC time): its length is
    # known, its bytes are not; it is judged by the device's own check
    clocked = info.clock_reply
    expected = codec.reply_at(frame, link.transport, datetime.now(UTC)) if clocked else info.reply
    if not expected:
        if link.transport == "udp":
            await asyncio.sleep(0)  # let an ICMP "port unreachable" for this datagram come back
        return
    report.replies_expected += 1
    try:
        reply = await link.receive(len(expected))
    except (TimeoutError, asyncio.IncompleteReadError):
        report.missing_replies += 1
        raise SimulationError(f"{session.device_id}: no reply to a {len(frame)}-byte frame") from None
    if (clocked or reply == expected) and session.check_reply(frame, reply):
        report.acknowledged += 1
    else:
        report.bad_replies += 1
        raise SimulationError(f"{session.device_id}: wrong reply {reply.hex()} (expected {expected.hex()})")


async def _device(
    codec: Codec, cls: type[DeviceSession], index: int, args: dict, report: Report, start_at: float
) -> None:
    transport = args["transport"]
    session = cls(device_id(cls, index), transport)
    link = _Link(transport)
    now = datetime.now(UTC)
    try:
        try:
            await link.open(args["host"], args["port"])
        except ConnectionRefusedError:
            report.refused += 1
            return
        report.connected += 1
        for frame in session.login():
            await _exchange(codec, session, link, frame, report)
        if args["batch"]:
            older = [track(index, -k, now - timedelta(hours=2, minutes=k)) for k in range(args["batch"], 0, -1)]
            for frame in session.batch(older):
                await _exchange(codec, session, link, frame, report)
        interval = 1.0 / args["rate"] if args["rate"] > 0 else args["duration"] or 1.0
        steps = max(1, int(args["duration"] * args["rate"]))
        alarm_at = steps // 2
        for step in range(steps):
            when = datetime.now(UTC)
            fix = track(index, step, when)
            if step == alarm_at and args["alarms"]:
                await _exchange(
                    codec, session, link, session.alarm(fix, args["alarms"][index % len(args["alarms"])]), report
                )
            else:
                await _exchange(codec, session, link, session.position(fix), report)
            if step % 10 == 9:
                await _exchange(codec, session, link, session.heartbeat(), report)
            delay = start_at + (step + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    except SimulationError as exc:
        report.errors.append(str(exc))
    except ConnectionRefusedError:
        report.refused += 1  # UDP: the port answered "unreachable"
        report.errors.append(f"{session.device_id}: connection refused ({transport} port closed)")
    except OSError as exc:
        report.errors.append(f"{session.device_id}: {exc}")
    finally:
        await link.close()


async def simulate(
    *,
    protocol: str,
    devices: int,
    rate: float,
    transport: str,
    duration: float,
    host: str,
    port: int,
    batch: int = 5,
    first_id: int = 1,
    record: list[tuple[str, bytes]] | None = None,
    progress: float | None = None,
    progress_out: TextIO | None = None,
) -> Report:
    """`progress`: seconds between progress lines on `progress_out` (stderr), None for none.
    Raises SimulationError when not one device could connect (nothing listens there)."""
    codec, cls, alarms = load(protocol)
    if transport not in codec.transports:
        raise SimulationError(f"{protocol} does not run over {transport}")
    if devices < 1:
        raise SimulationError("--devices must be at least 1")
    report = Report(protocol, transport, devices, record=record, replies=codec.replies)
    args = {
        "protocol": protocol,
        "transport": transport,
        "rate": rate,
        "duration": duration,
        "host": host,
        "port": port,
        "batch": batch,
        "alarms": alarms,
    }
    started = time.monotonic()
    ticker = asyncio.create_task(_progress(report, started, progress, progress_out or sys.stderr)) if progress else None
    try:
        await asyncio.gather(*(_device(codec, cls, first_id + i, args, report, started) for i in range(devices)))
    finally:
        if ticker is not None:
            ticker.cancel()
    report.seconds = time.monotonic() - started
    if report.refused == devices:
        raise SimulationError(
            f"connection refused: nothing listens on {transport} {host}:{port} (is `trackpipe run` started?)"
        )
    return report


async def _progress(report: Report, started: float, every: float, out: TextIO) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            print(report.progress(time.monotonic() - started), file=out, flush=True)
        except (OSError, ValueError):  # stderr closed: the run goes on without progress lines
            return
