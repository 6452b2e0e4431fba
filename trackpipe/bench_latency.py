"""Alarm and row latency under load, through `trackpipe run` (figures printed, never asserted).

    python -m trackpipe.bench_latency [--devices 100] [--rate 10] [--duration 60]

A whole embedded pipeline on loopback.  Background load: `--devices` simulated GT06 units, each
reporting a position every 1/`--rate` s on its own schedule (as a unit's report timer does) with one
frame in flight (a slot that comes while the last frame is unacked is sent on its ack), from a
load-generator process of its own (so neither the load's CPU nor its GIL sits in the probes'
process).  Two probe units on the same edge:

- **alarm latency** -- an SOS alarm every 0.5 s; from the moment its frame is written to the socket
  to the moment its event is read from `tracker.events` by an ordinary aiokafka consumer (what an
  alerting consumer sees; it never waits for the ClickHouse batch);
- **row latency** -- a position every 0.5 s; from the write to the moment `SELECT ... FROM positions`
  first returns it (the store polled every `POLL` s: the figure is late by up to that much).

Printed: the background rate achieved (acked frames/s, and the slots sent late), then p50 / p90 /
p99 / max of both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trackpipe import loops, schemas
from trackpipe.protocols import gt06
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device as Gt06Device
from trackpipe.simulate import track

POLL = 0.05  # s between store polls for the row probe
PROBE_EVERY = 0.5  # s between probe frames
ALARM_PROBE, ROW_PROBE = "869000000000001", "869000000000002"


CONNECTS_AT_ONCE = 128  # the load's connects in flight


async def _paced_unit(
    index: int, host: str, port: int, period: float, base: datetime, stats: dict[str, int], gate: asyncio.Semaphore
) -> None:
    """A GT06 unit (`trackpipe.chaos.Link`): logs in, then writes a position at each of its report
    slots (every `period` s from a random phase); one frame in flight: a slot that comes while the
    last frame is unacked is sent on its ack (counted `late`)."""
    from trackpipe.chaos import Link

    loop = asyncio.get_running_loop()
    device = Gt06Device(f"86{index:013d}", "tcp")
    link: Link | None = None
    try:
        async with gate:  # connects (and logins) in flight bounded
            _, link = await loop.create_connection(Link, host, port)
            for frame in device.login():
                await link.exchange(frame)
        next_at = loop.time() + random.random() * period
        step = 0
        while True:
            wait = next_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                stats["late"] += 1
            next_at += period
            step += 1
            stats["sent"] += 1
            if await link.exchange(device.position(track(index, step, base + timedelta(seconds=step)))):
                stats["acked"] += 1
    except (OSError, EOFError, TimeoutError):
        stats["dropped"] += 1
    finally:
        if link is not None:
            link.close()


async def _paced_load(host: str, port: int, devices: int, rate: float, warmup: float, duration: float) -> dict:
    stats = {"acked": 0, "late": 0, "sent": 0, "dropped": 0}
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    tasks = [asyncio.ensure_future(_paced_unit(i, host, port, 1 / rate, base, stats, gate)) for i in range(devices)]
    await asyncio.sleep(warmup)
    before, cpu, started = dict(stats), time.process_time(), time.monotonic()
    await asyncio.sleep(duration)
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {k: (stats[k] - before[k]) / elapsed for k in ("acked", "late", "sent")}
    result["dropped"] = stats["dropped"]
    result["cpu"] = (time.process_time() - cpu) / elapsed
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


def _load_process(host: str, port: int, devices: int, rate: float, warmup: float, duration: float, out: Any) -> None:
    """The load generator's process: its figures (or its error) on `out`."""
    try:
        loop = "uvloop" if loops.uvloop_available() else "asyncio"
        with asyncio.Runner(loop_factory=loops.loop_factory(loop)) as runner:
            out.put(runner.run(_paced_load(host, port, devices, rate, warmup, duration)))
    except BaseException as exc:  # reported, never a silent hang of the parent
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"p50 {statistics.median(ordered) * 1000:.0f} ms, p90 {at(0.90):.0f} ms, p99 {at(0.99):.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms ({len(ordered)} samples)"
    )


class Probe:
    """One unit sending a frame every PROBE_EVERY s; the write time of each, by fix time."""

    def __init__(self, device_id: str, alarm: bool) -> None:
        self.device = Gt06Device(device_id, "tcp")
        self.alarm = alarm
        self.sent: dict[datetime, float] = {}
        self.sent_wall: dict[datetime, float] = {}  # the same instants on the wall clock (for the breakdown)
        self.stop = threading.Event()

    async def run(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        base = datetime.now(UTC).replace(microsecond=0)
        try:
            for frame in self.device.login():
                writer.write(frame)
                await reader.readexactly(len(gt06.CODEC.inspect(frame, "tcp").reply or b""))
            step = 0
            while not self.stop.is_set():
                step += 1
                fix = Fix(base + timedelta(seconds=step), 52.2 + step * 1e-5, 21.0, speed=30.0)
                frame = self.device.alarm(fix, "sos") if self.alarm else self.device.position(fix)
                self.sent[fix.time] = time.monotonic()
                self.sent_wall[fix.time] = time.time()
                writer.write(frame)
                await writer.drain()
                reply = gt06.CODEC.inspect(frame, "tcp").reply or b""
                await asyncio.wait_for(reader.readexactly(len(reply)), 30)
                await asyncio.sleep(PROBE_EVERY)
        finally:
            writer.close()


async def read_events(
    bootstrap: str,
    topic: str,
    probe: Probe,
    seen: dict[datetime, float],
    stop: threading.Event,
    stages: dict[datetime, tuple[float, float, float]] | None = None,
) -> None:
    """Record when each alarm of `probe` is read; `stages`: per alarm, on the wall clock, the
    edge's receive time (the event's server_time), the worker's produce time (the record's
    Kafka timestamp) and the read time."""
    from aiokafka import AIOKafkaConsumer

    from trackpipe import kafka_compat

    kafka_compat.install_long_poll()  # the embedded broker answers an empty fetch at once: do not spin
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest", fetch_max_wait_ms=50)
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for messages in batches.values():
                for message in messages:
                    event = schemas.decode("events", message.value)
                    if event["device_id"] == probe.device.device_id and event["type"] == "alarm":
                        seen.setdefault(event["time"], now)
                        if stages is not None and event["time"] not in stages:
                            stages[event["time"]] = (
                                event["server_time"].timestamp(),
                                message.timestamp / 1000,
                                time.time(),
                            )
    finally:
        await consumer.stop()


def watch_rows(pipeline: Any, probe: Probe, seen: dict[datetime, float], stop: threading.Event) -> None:
    from trackpipe.devices import as_datetime

    last = datetime(2000, 1, 1, tzinfo=UTC)
    while not stop.is_set():
        rows = pipeline.query(
            f"SELECT fix_time FROM positions WHERE device_id = '{probe.device.device_id}' "
            f"AND fix_time > toDateTime64('{last.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}', 3, 'UTC')"
        )
        now = time.monotonic()
        for row in rows:
            when = as_datetime(row["fix_time"])
            if when is not None:
                seen.setdefault(when, now)
                last = max(last, when)
        time.sleep(POLL)


def latencies(sent: dict[datetime, float], seen: dict[datetime, float]) -> list[float]:
    return [seen[t] - at for t, at in sent.items() if t in seen]


def breakdown(
    sent: dict[datetime, float], stages: dict[datetime, tuple[float, float, float]]
) -> dict[str, list[float]]:
    """The alarm latency in its stages (wall clock: the processes share this machine's clock)."""
    parts: dict[str, list[float]] = {
        "socket write -> edge received": [],
        "edge received -> worker published": [],
        "worker published -> read": [],
    }
    for when, (received, published, read) in stages.items():
        if when in sent:
            for name, (a, b) in zip(
                parts, ((sent[when], received), (received, published), (published, read)), strict=True
            ):
                parts[name].append(b - a)
    return parts


def run(devices: int, rate: float, duration: float, root: Path) -> None:
    from trackpipe.chaos import supervisor_state
    from trackpipe.launcher import start_pipeline, stop_pipeline
    from trackpipe.procs import cpu_seconds

    p = start_pipeline(root / "pipeline")
    stop = threading.Event()
    alarm, row = Probe(ALARM_PROBE, alarm=True), Probe(ROW_PROBE, alarm=False)
    events: dict[datetime, float] = {}
    stages: dict[datetime, tuple[float, float, float]] = {}
    rows: dict[datetime, float] = {}
    warmup = 5.0  # the load reaches its pace
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    load = context.Process(
        target=_load_process, args=(p.host, p.port, devices, rate, warmup, duration + 1.0, out), daemon=True
    )
    figures: dict[str, Any] = {}
    cores: dict[str, float] = {}
    try:
        load.start()
        time.sleep(warmup + 1.0)  # connects, then the warm-up
        threads = [
            threading.Thread(target=asyncio.run, args=(probe.run(p.host, p.port),), daemon=True)
            for probe in (alarm, row)
        ]
        threads.append(
            threading.Thread(
                target=asyncio.run,
                args=(read_events(p.bootstrap(), p.settings.topic("events"), alarm, events, stop, stages),),
                daemon=True,
            )
        )
        threads.append(threading.Thread(target=watch_rows, args=(p, row, rows, stop), daemon=True))
        for thread in threads:
            thread.start()
        pids = {name: part["pid"] for name, part in supervisor_state(p)["parts"].items() if part.get("pid")}
        cpu_before, cpu_since = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
        with contextlib.suppress(Exception):
            figures = out.get(timeout=duration + 120)
        cpu_for = time.monotonic() - cpu_since
        cores = {name: (cpu_seconds(pid) - cpu_before[name]) / cpu_for for name, pid in pids.items()}
        alarm.stop.set()
        row.stop.set()
        time.sleep(3.0)  # the last probes arrive
    finally:
        stop.set()
        load.join(10)
        if load.is_alive():
            load.kill()
        stop_pipeline(p)
    if "error" in figures or not figures:
        print(f"  background load failed: {figures.get('error', 'no figures')}")
    else:
        print(
            f"  background: {devices} GT06 units x {rate:g}/s, one frame in flight each: "
            f"{figures['acked']:,.0f} acked frames/s ({figures['late']:,.0f} slots/s sent late, "
            f"{figures['dropped']} connections lost; load generator {figures['cpu']:.2f} core)"
        )
        print("  cores used: " + ", ".join(f"{name} {used:.2f}" for name, used in sorted(cores.items())))
    print(f"  alarm latency (socket write -> read from tracker.events): {percentiles(latencies(alarm.sent, events))}")
    print(
        f"  row latency (socket write -> SELECT returns it, polled every {POLL * 1000:.0f} ms): "
        f"{percentiles(latencies(row.sent, rows))}"
    )
    for name, part in breakdown(alarm.sent_wall, stages).items():
        print(f"    {name}: {percentiles(part)}")
    missing = len(alarm.sent) - len(latencies(alarm.sent, events))
    if missing:
        print(f"  ({missing} alarm probes not seen on tracker.events within the run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="frames/s per background device")
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    print(f"== latency under load: {args.devices} devices x {args.rate:g}/s for {args.duration:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        run(args.devices, args.rate, args.duration, Path(tmp))


if __name__ == "__main__":
    main()
