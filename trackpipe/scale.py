"""Scale-out, counted: workers in one consumer group under load, one joining and leaving.

    python -m trackpipe.scale [--rate 400] [--duration 60] [--devices 120] [--partitions 6]

An embedded broker; a producer sends the bench mix (Carscop, GT06, JT808, Teltonika; positions,
heartbeats, SOS alarms) to `tracker.raw` at `--rate` frames/s for `--duration` s.  Workers A and B
(`trackpipe worker`, one consumer group) take it from the start; worker C joins at a third of the
run and is stopped (SIGTERM) at two thirds.  Each worker keeps its own chDB store (chDB is one
process per directory), so the union of the stores is what one shared ClickHouse would hold.

Printed: for each membership change the time until every live worker was ready again and the
`tracker.raw` partitions were split among them exactly once; then positions expected vs stored
(union of the stores, by (device, fix time)): lost, and stored by two workers (a re-delivery across a
rebalance: one row in a shared ClickHouse, whose ReplacingMergeTree collapses it); deviceOnline
events per device (a second one with another time would mean rule state lost in a hand-over).
Figures only; the e2e test tests/e2e/test_scale_out.py asserts the counts on a shorter run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trackpipe import schemas
from trackpipe.config import Settings
from trackpipe.status import http_get, scrape


@dataclass
class Worker:
    name: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    started: float

    def info(self) -> dict[str, Any]:
        try:
            return json.loads((self.data_dir / "run" / "worker.json").read_text())
        except (OSError, ValueError):
            return {}

    def ready(self) -> bool:
        url = self.info().get("metrics")
        try:
            return bool(url) and http_get(url + "/ready")[0] == 200
        except (OSError, ValueError):
            return False

    def raw_partitions(self, topic: str) -> set[int] | None:
        """The tracker.raw partitions this worker holds (its consumer-lag series), None if unreadable."""
        url = self.info().get("metrics")
        try:
            samples = scrape(url) if url else None
        except (OSError, ValueError):
            return None
        if samples is None:
            return None
        lags = samples.get("trackpipe_worker_consumer_lag", [])
        return {int(labels["partition"]) for labels, _ in lags if labels.get("topic") == topic}


@dataclass
class Run:
    bootstrap: str
    root: Path
    settings: Settings
    app_id: str = "scale"
    workers: dict[str, Worker] = field(default_factory=dict)
    changes: list[tuple[str, float]] = field(default_factory=list)  # (what, seconds to settle)

    def env(self, data_dir: Path) -> dict[str, str]:
        return dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            TRACKPIPE_DATA_DIR=str(data_dir),
            TRACKPIPE_APP_ID=self.app_id,
            TRACKPIPE_PARTITIONS=str(self.settings.partitions),
            TRACKPIPE_LOG_LEVEL="info",
            TRACKPIPE_QUERY_ENDPOINT="0",
            TRACKPIPE_SESSION_TIMEOUT="10",
        )

    def start(self, name: str) -> Worker:
        from trackpipe.procs import child_preexec

        data_dir = self.root / name
        data_dir.mkdir(parents=True, exist_ok=True)
        with (data_dir / "worker.log").open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "trackpipe.cli", "worker"],
                env=self.env(data_dir),
                cwd=data_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=child_preexec,
            )
        worker = self.workers[name] = Worker(name, data_dir, proc, time.monotonic())
        return worker

    def settled(self) -> bool:
        """Every live worker ready and the raw partitions split among them exactly once."""
        topic = self.settings.topic("raw")
        held: list[int] = []
        live = self.live()
        for worker in live:
            if not worker.ready():
                return False
            mine = worker.raw_partitions(topic)
            if mine is None or (not mine and len(live) <= self.settings.partitions):
                return False  # a worker without a share while there are enough partitions: not settled
            held += sorted(mine)
        return sorted(held) == list(range(self.settings.partitions))

    def live(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.proc.poll() is None]

    def settle(self, what: str, since: float, timeout: float = 120.0) -> float:
        deadline = since + timeout
        while time.monotonic() < deadline:
            if self.settled():
                took = time.monotonic() - since
                self.changes.append((what, took))
                return took
            time.sleep(0.2)
        raise RuntimeError(f"{what}: not settled within {timeout:.0f}s ({self.logs()})")

    def logs(self) -> str:
        return "; ".join(f"{w.name}: {_tail(w.data_dir / 'worker.log')}" for w in self.workers.values())


def _tail(path: Path, size: int = 1500) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], rate: float) -> float:
    """Send at `rate` records/s (in 0.1 s slices); returns the rate achieved."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.monotonic()
    try:
        step = max(1, int(rate / 10))
        futures = []
        for i in range(0, len(records), step):
            for key, value in records[i : i + step]:
                futures.append(await producer.send(topic, value, key=key))
            pause = started + (i + step) / rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(records) / (time.monotonic() - started)


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


def stored(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of a stopped worker's own chDB store (read in a child: chDB is one directory per process)."""
    out = subprocess.run(
        [sys.executable, "-m", "trackpipe.cli", "query", sql, "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL")},
    )
    if out.returncode != 0:
        raise RuntimeError(f"query of {data_dir} failed: {out.stderr[-1000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@dataclass
class Outcome:
    produced: int
    rate: float
    expected_positions: int
    stored_positions: int  # distinct (device, fix time) in the union of the stores
    lost_positions: int
    twice_positions: int  # stored by two workers (collapses in one shared store)
    devices: int
    devices_online_once: int  # devices with exactly one deviceOnline time in the union
    changes: list[tuple[str, float]]
    per_worker: dict[str, int]


def run(rate: float, duration: float, devices: int, partitions: int, root: Path) -> Outcome:
    from trackpipe.bench_worker import mix
    from trackpipe.broker import ensure_topics, start_embedded
    from trackpipe.procs import stop
    from trackpipe.streams.process import process

    broker, bootstrap = start_embedded(root / "kafka", log_file=root / "broker.log")
    settings = dataclasses.replace(Settings.from_env(data_dir=root), partitions=partitions)
    scale = Run(bootstrap, root, settings)
    try:
        asyncio.run(ensure_topics(settings, bootstrap))
        now = datetime.now(UTC)
        records = [  # received as they are sent: the rules' arrival clock moves (a lost state shows)
            (key, raw | {"received_at": now + timedelta(seconds=k / rate)})
            for k, (key, raw) in enumerate(mix(int(rate * duration), devices=devices))
        ]
        expected = {(r["device_id"], p["fix_time"]) for _, r in records for p in process(r, lambda _: None).positions}
        values = [(key, schemas.encode("raw", raw)) for key, raw in records]
        topic = settings.topic("raw")
        t0 = time.monotonic()
        scale.start("a")
        scale.start("b")
        scale.settle("a and b start (cold, from spawn)", t0)

        async def load_and_churn() -> float:
            sending = asyncio.create_task(produce(bootstrap, topic, values, rate))
            await asyncio.sleep(duration / 3)
            joined = time.monotonic()
            scale.start("c")
            await asyncio.to_thread(scale.settle, "c joins under load (from spawn)", joined)
            await asyncio.sleep(max(0.0, t_leave - time.monotonic()))
            left = time.monotonic()
            await asyncio.to_thread(stop, scale.workers["c"].proc, 20)
            await asyncio.to_thread(scale.settle, "c leaves under load (from SIGTERM)", left)
            return await sending

        t_leave = time.monotonic() + 2 * duration / 3
        achieved = asyncio.run(load_and_churn())
        ends = asyncio.run(end_offsets(bootstrap, topic, partitions))
        deadline = time.monotonic() + 120
        while any(
            (done := asyncio.run(committed(bootstrap, scale.app_id, topic))).get(p, 0) < end for p, end in ends.items()
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the group committed {done} of {ends} in 120 s after the load: {scale.logs()}")
            time.sleep(0.5)
    finally:
        for worker in scale.workers.values():
            stop(worker.proc, 20)
        stop(broker, 5)
    union: Counter[tuple[str, str]] = Counter()
    online: dict[str, set[str]] = {}
    per_worker = {}
    for name, worker in scale.workers.items():
        rows = stored(worker.data_dir, "SELECT device_id, toString(fix_time) AS t FROM positions FINAL")
        per_worker[name] = len(rows)
        union.update((r["device_id"], r["t"]) for r in rows)
        events = stored(
            worker.data_dir, "SELECT device_id, toString(time) AS t FROM events FINAL WHERE type = 'deviceOnline'"
        )
        for r in events:
            online.setdefault(r["device_id"], set()).add(r["t"])
    keys = {(d, t.isoformat(sep=" ", timespec="milliseconds").replace("+00:00", "")) for d, t in expected}
    return Outcome(
        produced=len(records),
        rate=achieved,
        expected_positions=len(keys),
        stored_positions=len(set(union) & keys),
        lost_positions=len(keys - set(union)),
        twice_positions=sum(1 for n in union.values() if n > 1),
        devices=devices,
        devices_online_once=sum(1 for times in online.values() if len(times) == 1),
        changes=scale.changes,
        per_worker=per_worker,
    )


def report(o: Outcome) -> None:
    print(f"  produced {o.produced:,} frames at {o.rate:,.0f}/s")
    for what, took in o.changes:
        print(f"  {what}: settled in {took:.1f}s (all ready, raw partitions split exactly once)")
    print(f"  positions: expected {o.expected_positions:,}, stored {o.stored_positions:,}, lost {o.lost_positions:,}; "
          f"stored by two workers {o.twice_positions:,} (one row in a shared store)")  # fmt: skip
    print(f"  rows per worker store: {o.per_worker}")
    print(f"  deviceOnline: {o.devices_online_once} of {o.devices} devices exactly once (state kept across hand-overs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--devices", type=int, default=120)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    third = args.duration / 3
    print(
        f"== scale-out: workers a+b, c joins at {third:.0f}s and leaves at {2 * third:.0f}s; {args.rate:.0f} "
        f"frames/s for {args.duration:.0f}s, {args.devices} devices, {args.partitions} partitions"
    )
    with tempfile.TemporaryDirectory() as tmp:
        report(run(args.rate, args.duration, args.devices, args.partitions, Path(tmp)))


if __name__ == "__main__":
    main()
