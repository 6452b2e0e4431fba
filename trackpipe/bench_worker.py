"""The worker's cost and throughput, printed (never asserted).

1. Pure per-frame cost, outside Faust, on a mix of simulated Carscop, GT06, JT808 and
   Teltonika frames (positions, some heartbeats and alarms): Avro decode of the raw
   record -> `process` -> Avro encode of positions/events -> the columnar INSERT into an
   embedded ClickHouse (chDB, temporary directory).  Microseconds per frame and step,
   median of rounds.
2. Worker throughput: the same mix pre-produced into the embedded broker; one
   `trackpipe worker` process drains it into chDB (decode, enrich, publish to
   tracker.positions / tracker.events, store, ack).  In the same run a bare loop
   (aiokafka getmany -> the same decode -> the same INSERT, no Faust, no publish) on the
   same frames.  frames/s of both (wall time, and per CPU-second of the process: steadier on a
   shared machine) and their ratios.

    python -m trackpipe.bench_worker [--frames 20000] [--rounds 3] [--pure-only]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import fastavro

from trackpipe import procs, schemas, store
from trackpipe.config import Settings
from trackpipe.protocols import registry
from trackpipe.protocols.base import Context, DeviceSession
from trackpipe.protocols.devices import carscop, gt06, jt808, teltonika
from trackpipe.simulate import track
from trackpipe.supervisor import EMBEDDED_COMPACT_SEGMENT

#: protocol -> (device class, device id of unit n)
_MIX: dict[str, tuple[type[DeviceSession], Callable[[int], str]]] = {
    "carscop": (carscop.Device, lambda n: f"WC{n:013d}"),
    "gt06": (gt06.Device, lambda n: f"35{n:013d}"),
    "jt808": (jt808.Device, lambda n: f"{13800000000 + n:012d}"),
    "teltonika": (teltonika.Device, lambda n: f"35{n + 5 * 10**12:013d}"),
}
DEFAULT_BATCH = int(os.environ.get("TRACKPIPE_SINK_BATCH", "5000"))  # the worker's INSERT batch
HEARTBEAT_EVERY = 20  # one frame in 20 is a heartbeat
ALARM_EVERY = 50  # one in 50 an SOS alarm


def mix(frames: int, devices: int = 100, local_port: int = 8888) -> list[tuple[bytes, dict[str, Any]]]:
    """`frames` raw records (key, tracker.raw value) as the edge publishes them, round-robin
    over `devices` units of the four protocols; each unit's frames in time order."""
    units = []
    for n in range(devices):
        protocol = list(_MIX)[n % len(_MIX)]
        cls, ident = _MIX[protocol]
        units.append((protocol, cls(ident(n), "tcp")))  # type: ignore[call-arg]
    base = datetime(2026, 3, 1, tzinfo=UTC)
    received = datetime.now(UTC).replace(microsecond=0)
    out = []
    for k in range(frames):
        n = k % devices
        protocol, dev = units[n]
        step = k // devices
        fix = track(n, step, base + timedelta(seconds=step))
        slot = step + n  # staggered, so every protocol sends some heartbeats and alarms
        if slot % ALARM_EVERY == ALARM_EVERY - 1:
            frame = dev.alarm(fix, "sos")
        elif slot % HEARTBEAT_EVERY == HEARTBEAT_EVERY - 1:
            frame = dev.heartbeat()
        else:
            frame = dev.position(fix)
        info = registry.get(protocol).inspect(frame, "tcp")
        raw = {
            "frame": frame,
            "protocol": protocol,
            "kind": info.kind,
            "device_id": info.device_id or dev.device_id,
            "transport": "tcp",
            "peer_host": "127.0.0.1",
            "peer_port": 40000 + n,
            "local_port": local_port,
            "connection_id": f"bench-{n}",
            "edge_id": "bench",
            "received_at": received,
            "seq": step,
        }
        out.append((raw["device_id"].encode(), raw))  # keyed as the edge keys it: by the id it read
    return out


# -- 1. pure per-frame cost ------------------------------------------------------------


def pure_cost(frames: int, rounds: int, batch: int, devices: int = 100) -> dict[str, float]:
    from trackpipe.streams import derive
    from trackpipe.streams.process import Batch, process
    from trackpipe.streams.rules import DeviceState

    procs.settle_gc()  # as the worker runs its steps, once ready (the frames made after it: not frozen)
    records = mix(frames, devices)
    values = [schemas.encode("raw", raw) for _, raw in records]
    kinds: dict[str, int] = {}
    for _, raw in records:
        kinds[f"{raw['protocol']}/{raw['kind']}"] = kinds.get(f"{raw['protocol']}/{raw['kind']}", 0) + 1
    print(
        f"== worker pure cost per frame: {frames} frames of {devices} devices "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), median of {rounds} rounds"
    )

    def lookup(device_id: str) -> None:
        return None

    steps: dict[str, list[float]] = {"raw decode": [], "process": [], "rules": [], "encode": [], "insert": []}
    refs: dict[str, list[float]] = {"codecs decode": [], "fastavro encode": [], "gather": [], "cpu total": []}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(data_dir=tmp)
        client = store.connect(settings, ensure=True)
        rule_settings = derive.base_settings(settings)
        for _ in range(rounds):
            states: dict[str, DeviceState] = {}  # every round starts from devices never seen
            cpu = time.process_time()  # the steps' CPU time too: steadier than wall time on a shared machine
            t0 = time.perf_counter()
            raws = [schemas.decode("raw", v) for v in values]
            t1 = time.perf_counter()
            outs = [process(raw, lookup) for raw in raws]
            t2 = time.perf_counter()
            # the rules per store batch, as the worker runs them, and each new state as its
            # changelog record (what the worker writes to the rule_state table per batch)
            for lo in range(0, len(outs), batch):
                positions = [row for out in outs[lo : lo + batch] for row in out.positions]
                contacts = {out.status["device_id"]: out.status for out in outs[lo : lo + batch] if out.status}
                derived = derive.derive(positions, states.get, lambda _: rule_settings, contacts.values())
                for device_id, state in derived.states.items():
                    state.to_bytes()
                    states[device_id] = state
            t2b = time.perf_counter()
            for out in outs:
                for row in out.positions:
                    schemas.encode("positions", row)
                for row in out.events:
                    schemas.encode("events", row)
            t3, cpu3 = time.perf_counter(), time.process_time()
            gathered = Batch()
            for raw, out in zip(raws, outs, strict=True):
                gathered.add(raw, out, b"")
            tables = dict(gathered.tables())
            t4, cpu4 = time.perf_counter(), time.process_time()
            for table, rows in tables.items():
                for lo in range(0, len(rows), batch):
                    store.insert(client, table, rows[lo : lo + batch])
            t5 = time.perf_counter()
            refs["gather"].append((t4 - t3) / frames * 1e6)  # Batch.add + tables (not in the total)
            refs["cpu total"].append((time.process_time() - cpu - (cpu4 - cpu3)) / frames * 1e6)
            counts = {table: len(rows) for table, rows in tables.items()}
            for name, secs in zip(steps, (t1 - t0, t2 - t1, t2b - t2, t3 - t2b, t5 - t4), strict=True):
                steps[name].append(secs / frames * 1e6)
            # references in the same round: the protocol codecs alone; fastavro's writer
            t0 = time.perf_counter()
            for raw in raws:
                ctx = Context(transport=raw["transport"], device_id=raw["device_id"], received_at=raw["received_at"])
                registry.get(raw["protocol"]).decode(raw["frame"], ctx)
            t1 = time.perf_counter()
            for out in outs:
                for row in out.positions:
                    fastavro.schemaless_writer(io.BytesIO(), schemas.schema("positions"), row)
                for row in out.events:
                    fastavro.schemaless_writer(io.BytesIO(), schemas.schema("events"), row)
            t2 = time.perf_counter()
            for name, secs in zip(("codecs decode", "fastavro encode"), (t1 - t0, t2 - t1), strict=True):
                refs[name].append(secs / frames * 1e6)
    medians = {name: statistics.median(v) for name, v in steps.items()}
    medians["total"] = statistics.median([sum(r) for r in zip(*steps.values(), strict=True)])
    for name, value in medians.items():
        runs = ", ".join(f"{v:.1f}" for v in steps[name]) if name in steps else ""
        print(f"  {name:12s} {value:6.1f} us/frame" + (f"  (rounds: {runs})" if runs else ""))
    ref = {name: statistics.median(v) for name, v in refs.items()}
    print(
        f"  of which the protocol codecs' own decode (in process) {ref['codecs decode']:.1f} us; "
        f"fastavro's writer instead of schemas.encode: {ref['fastavro encode']:.1f} us/frame"
    )
    print(
        f"  the total in CPU time of this process {ref['cpu total']:.1f} us/frame; "
        f"gathering the batch (Batch.add, not in the total) {ref['gather']:.1f} us/frame"
    )
    print(
        f"  rows per round: {counts['positions']} positions, {counts['events']} events, "
        f"{counts['device_status']} status, {counts['raw_frames']} raw frames (INSERTs of <= {batch} rows); "
        f"{1e6 / medians['total']:,.0f} frames/s on one core"
    )
    return medians


# -- 2. worker throughput, and a bare loop on the same frames ---------------------------


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _env(bootstrap: str, data_dir: Path, app_id: str) -> dict[str, str]:
    return dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TRACKPIPE_DATA_DIR=str(data_dir),
        TRACKPIPE_APP_ID=app_id,
        TRACKPIPE_LOG_LEVEL="warn",
        # as `trackpipe run` sets it for the embedded broker (its changelogs compacted)
        TRACKPIPE_COMPACT_SEGMENT_BYTES=str(EMBEDDED_COMPACT_SEGMENT),
    )


def _spawn(argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen:
    from trackpipe.procs import child_preexec

    with log_file.open("ab") as out:
        return subprocess.Popen(  # cwd: Faust puts its <app id>-data directory there
            argv, env=env, cwd=log_file.parent, stdout=out, stderr=subprocess.STDOUT, preexec_fn=child_preexec
        )


def _post(url: str, sql: str) -> Any:
    import urllib.request

    import orjson

    request = urllib.request.Request(url + "/query", data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return orjson.loads(response.read())["rows"]


class Rate(NamedTuple):
    """Frames per second of wall time, and per second of the process's CPU time (all threads,
    user + system): the second holds up better when other work shares the machine."""

    wall: float
    cpu: float


def _worker_run(
    bootstrap: str, data_dir: Path, app_id: str, expected: int, timeout: float, extra: Mapping[str, str] | None = None
) -> Rate:
    """frames/s of one `trackpipe worker` (its environment plus `extra`) from ready (partitions
    assigned) to `expected` positions stored."""
    import urllib.error
    import urllib.request

    import orjson

    from trackpipe.procs import stop

    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(_env(bootstrap, data_dir, app_id), **(extra or {}))
    proc = _spawn([sys.executable, "-m", "trackpipe.cli", "worker"], env, data_dir / "worker.log")
    run_file = data_dir / "run" / "worker.json"
    try:
        deadline = time.monotonic() + timeout
        url = ""
        ready_at = 0.0
        while time.monotonic() < deadline and proc.poll() is None:
            if not url and run_file.exists():
                try:
                    url = orjson.loads(run_file.read_bytes())["url"]
                except (orjson.JSONDecodeError, KeyError):  # being written
                    pass
            if url:
                try:
                    with urllib.request.urlopen(url + "/ready", timeout=5) as response:
                        if response.status == 200:
                            ready_at, ready_cpu = time.perf_counter(), procs.cpu_seconds(proc.pid)
                            break
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.02)
        if not ready_at:
            raise RuntimeError(f"worker not ready: {_tail(data_dir / 'worker.log')}")
        while time.monotonic() < deadline and proc.poll() is None:
            stored = _post(url, "SELECT count() FROM positions")[0][0]
            if stored >= expected:
                wall, cpu = time.perf_counter() - ready_at, procs.cpu_seconds(proc.pid) - ready_cpu
                return Rate(expected / wall, expected / cpu if cpu > 0 else 0.0)
            time.sleep(0.25)
        raise RuntimeError(f"worker stored {stored}/{expected} positions in time: {_tail(data_dir / 'worker.log')}")
    finally:
        stop(proc, 10)


def _tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"


def _bare_run(bootstrap: str, data_dir: Path, group: str, frames: int, timeout: float) -> Rate:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "trackpipe.bench_worker", "--bare-loop", group, "--frames", str(frames)]
    env = _env(bootstrap, data_dir, group)
    out = subprocess.run(argv, env=env, cwd=data_dir, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bare loop failed: {out.stderr[-2000:]}")
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return Rate(float(wall), float(cpu))


async def bare_loop(group: str, frames: int) -> Rate:
    """aiokafka getmany -> raw decode -> process -> one columnar INSERT per table -> commit;
    no Faust, no publish.  Returns frames/s (wall and CPU) from the first fetch to the last commit."""
    from aiokafka import AIOKafkaConsumer

    from trackpipe import kafka_compat
    from trackpipe.streams.process import Batch, process

    kafka_compat.install_long_poll()  # the worker's fetch floor; no Faust here
    settings = Settings.from_env()
    client = store.connect(settings, ensure=True)
    consumer = AIOKafkaConsumer(
        settings.topic("raw"),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    procs.settle_gc()  # as the worker does once ready
    late_after = timedelta(seconds=settings.late_after)
    done = 0
    started = started_cpu = 0.0
    try:
        while done < frames:
            batches = await consumer.getmany(timeout_ms=1000, max_records=settings.sink_batch)
            messages = [m for ms in batches.values() for m in ms]
            if not messages:
                continue
            if not started:
                started, started_cpu = time.perf_counter(), time.process_time()
            batch = Batch()
            for message in messages:
                raw = schemas.decode("raw", message.value)
                batch.add(raw, process(raw, lambda _: None, late_after=late_after), b"")
            for table, rows in batch.tables():
                if rows:
                    store.insert(client, table, rows)
            await consumer.commit()
            done += len(messages)
    finally:
        await consumer.stop()
    cpu = time.process_time() - started_cpu
    return Rate(done / (time.perf_counter() - started), done / cpu if cpu > 0 else 0.0)


async def _published(bootstrap: str, settings: Settings) -> dict[str, Any]:
    """What the workers published to tracker.positions / tracker.events, and whether every record
    sits on the partition Kafka's default partitioner gives its key (subscribers rely on it)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    counts: dict[str, Any] = {"placed": True}
    for name in ("positions", "events"):
        consumer = AIOKafkaConsumer(settings.topic(name), bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = sorted(consumer.partitions_for_topic(settings.topic(name)) or [])
            ends = await consumer.end_offsets(list(consumer.assignment()))
            total = sum(ends.values())
            seen = 0
            while seen < total:
                for tp, messages in (await consumer.getmany(timeout_ms=2000, max_records=10000)).items():
                    seen += len(messages)
                    for m in messages:
                        counts["placed"] &= partitioner(m.key, partitions, partitions) == tp.partition
            counts[name] = total
        finally:
            await consumer.stop()
    return counts


def throughput(frames: int, rounds: int, variant: Mapping[str, str] | None = None, devices: int = 100) -> None:
    """`variant`: settings of a second worker run in each round (paired with the first), e.g.
    {"TRACKPIPE_FAST_DELIVERY": "0"}: the same worker with Faust's own delivery."""
    from trackpipe.broker import ensure_topics, start_embedded
    from trackpipe.procs import stop
    from trackpipe.streams.process import process

    print(
        f"== worker throughput: {frames} frames of the same mix from {devices} devices pre-produced on tracker.raw; "
        f"one `trackpipe worker` vs a bare aiokafka loop, paired, {rounds} rounds"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker, bootstrap = start_embedded(root / "kafka", log_file=root / "broker.log")
        try:
            settings = Settings.from_env(data_dir=tmp)
            asyncio.run(ensure_topics(settings, bootstrap))
            records = mix(frames, devices)
            expected = sum(len(process(raw, lambda _: None).positions) for _, raw in records)
            started = time.perf_counter()
            asyncio.run(_produce(bootstrap, settings.topic("raw"), [(k, schemas.encode("raw", r)) for k, r in records]))
            print(f"  produced in {time.perf_counter() - started:.1f} s; {expected} positions expected")
            named = " ".join(f"{k}={v}" for k, v in (variant or {}).items())
            rates: dict[str, list[Rate]] = {"worker": [], "bare loop": []}
            if variant:
                rates[named] = []
            for i in range(rounds):
                rates["worker"].append(_worker_run(bootstrap, root / f"w{i}", f"bench-w{i}", expected, 600))
                if variant:
                    rates[named].append(_worker_run(bootstrap, root / f"v{i}", f"bench-v{i}", expected, 600, variant))
                rates["bare loop"].append(_bare_run(bootstrap, root / f"b{i}", f"bench-b{i}", frames, 600))
                print(
                    f"  round {i + 1}: "
                    + ", ".join(f"{name} {r[-1].wall:,.0f}" for name, r in rates.items())
                    + " frames/s; per CPU-second "
                    + ", ".join(f"{name} {r[-1].cpu:,.0f}" for name, r in rates.items())
                )
            published = asyncio.run(_published(bootstrap, settings))
        finally:
            stop(broker, 5)
    alarms = sum(len(process(raw, lambda _: None).events) for _, raw in records)
    runs = rounds * (2 if variant else 1)  # worker runs: each publishes every position once
    print(
        f"  published by the workers: {published['positions']} positions (expected {runs * expected}), "
        f"{published['events']} events ({runs * alarms} of them alarms, the rest derived); "
        f"on their key's partition: {published['placed']}"
    )
    for name, values in rates.items():
        wall, cpu = statistics.median(r.wall for r in values), statistics.median(r.cpu for r in values)
        print(f"  {name:10s} median {wall:8,.0f} frames/s, {cpu:8,.0f} frames per CPU-second")
    for name in [n for n in rates if n != "bare loop"]:
        for what in ("wall", "cpu"):
            ratios = [getattr(w, what) / getattr(b, what) for w, b in zip(rates[name], rates["bare loop"], strict=True)]
            each = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"  ratio {name}/bare ({what}): median {statistics.median(ratios):.2f} (per round: {each})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument(
        "--devices",
        type=int,
        default=5000,
        help="units the frames come from (a fleet sends each unit's frames seconds apart: "
        "a store batch holds each unit about once at the default)",
    )
    parser.add_argument("--pure-only", action="store_true")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also run, in each round, a worker with this setting (paired), e.g. TRACKPIPE_FAST_DELIVERY=0",
    )
    parser.add_argument("--bare-loop", metavar="GROUP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_loop:
        rate = asyncio.run(bare_loop(args.bare_loop, args.frames))
        print(f"{rate.wall:.1f} {rate.cpu:.1f}")
        return
    if not args.throughput_only:
        pure_cost(args.frames, args.rounds, args.batch, args.devices)
    if not args.pure_only:
        throughput(args.frames, args.rounds, dict(v.split("=", 1) for v in args.variant), args.devices)


if __name__ == "__main__":
    main()
