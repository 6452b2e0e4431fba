"""Alarm and row latency under load, through `trackpipe run` (figures printed, never asserted).

    python -m trackpipe.bench_latency [--devices 100] [--rate 10] [--duration 60]

A whole embedded pipeline on loopback.  Background load: `--devices` simulated GT06 units, each
sending a position every 1/`--rate` s and waiting for its ack (one frame in flight per device, as
real units do).  Two probe units on the same edge:

- **alarm latency** -- an SOS alarm every 0.5 s; from the moment its frame is written to the socket
  to the moment its event is read from `tracker.events` by an ordinary aiokafka consumer (what an
  alerting consumer sees; it never waits for the ClickHouse batch);
- **row latency** -- a position every 0.5 s; from the write to the moment `SELECT ... FROM positions`
  first returns it (the store polled every `POLL` s: the figure is late by up to that much).

Printed: the background rate achieved (acked frames/s), then p50 / p90 / p99 / max of both.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trackpipe import schemas
from trackpipe.protocols import gt06
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

POLL = 0.05  # s between store polls for the row probe
PROBE_EVERY = 0.5  # s between probe frames
ALARM_PROBE, ROW_PROBE = "869000000000001", "869000000000002"


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
    from trackpipe.chaos import Load
    from trackpipe.launcher import start_pipeline, stop_pipeline

    p = start_pipeline(root / "pipeline")
    stop = threading.Event()
    alarm, row = Probe(ALARM_PROBE, alarm=True), Probe(ROW_PROBE, alarm=False)
    events: dict[datetime, float] = {}
    stages: dict[datetime, tuple[float, float, float]] = {}
    rows: dict[datetime, float] = {}
    load = Load(devices=devices, rate=rate)
    try:
        load.start(p)
        time.sleep(5.0)  # the load reaches its pace
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
        acked_before, started = len(load.acked), time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(duration)
        achieved = (len(load.acked) - acked_before) / (time.monotonic() - started)
        alarm.stop.set()
        row.stop.set()
        time.sleep(3.0)  # the last probes arrive
    finally:
        stop.set()
        load.stop.set()
        stop_pipeline(p)
    print(f"  background: {devices} GT06 units, one frame in flight each: {achieved:,.0f} acked frames/s")
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
