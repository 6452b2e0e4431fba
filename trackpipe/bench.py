"""`make bench`: first figures, printed (never asserted).

1. Edge throughput: N GT06 devices on loopback each log in and pipeline F
   location frames, waiting for every ack.  The edge acks a frame only after
   Kafka (embedded noida-db, acks=all) confirmed it.  The same traffic goes to a
   bare asyncio TCP server that frames and acks with the same codec but stores
   nothing.  frames/s for both and their ratio.
0. Detection + framing cost per connection: the first bytes of every corpus capture of a
   supported protocol (and of every other protocol's, which must come out unknown) through
   the registry's first-byte index and the chosen codec's framer, with all codecs registered
   and with only the first five; microseconds per connection (median of rounds).
2. Latency: through the whole embedded pipeline (`trackpipe run`), Carscop
   devices send live points; each point's time from send to its row being
   queryable in ClickHouse; p50/p99.
3. The worker (`trackpipe.bench_worker`): pure per-frame cost of its steps on a mix of
   Carscop, GT06, JT808 and Teltonika frames, and one `trackpipe worker` draining
   pre-produced frames vs a bare aiokafka loop on the same frames (frames/s, ratio).
4. Alarm and row latency under background load (`trackpipe.bench_latency`).
5. Scale-out (`trackpipe.scale`): workers joining and leaving under load, counted.

    python -m trackpipe.bench [--devices 200] [--frames 50] [--latency-points 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trackpipe import bench_worker
from trackpipe.broker import ensure_topics, free_port, start_embedded, wait_port
from trackpipe.config import Settings
from trackpipe.launcher import Pipeline, start_pipeline, stop_pipeline
from trackpipe.procs import child_preexec, stop
from trackpipe.protocols import gt06
from trackpipe.protocols.devices import carscop as carscop_device
from trackpipe.protocols.devices import gt06 as gt06_device
from trackpipe.simulate import track


# -- bare server: framing + inspect + immediate ack, no Kafka -----------------------------
class _Bare(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.framer = gt06.CODEC.new_framer()

    def data_received(self, data: bytes) -> None:
        self.framer.feed(data)
        while (frame := self.framer.next_frame()) is not None:
            reply = gt06.CODEC.inspect(frame, "tcp").reply
            if reply:
                self.transport.write(reply)  # type: ignore[attr-defined]


async def _bare_server(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Bare, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# -- load ----------------------------------------------------------------------------------
async def _device(port: int, index: int, frames: int) -> int:
    dev = gt06_device.Device(f"35{index:013d}", "tcp")
    base = datetime.now(UTC).replace(microsecond=0)
    burst = [dev.position(track(index, k, base + timedelta(seconds=k))) for k in range(frames)]
    replies = [gt06.CODEC.inspect(f, "tcp").reply or b"" for f in burst]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    login = dev.login()[0]
    writer.write(login)
    await reader.readexactly(len(gt06.CODEC.inspect(login, "tcp").reply or b""))
    writer.write(b"".join(burst))
    await reader.readexactly(sum(len(r) for r in replies))
    writer.close()
    return frames + 1


async def _load(port: int, devices: int, frames: int) -> tuple[int, float]:
    started = time.perf_counter()
    counts = await asyncio.gather(*(_device(port, i, frames) for i in range(devices)))
    return sum(counts), time.perf_counter() - started


def _spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=child_preexec
    )


def edge_throughput(devices: int, frames: int, rounds: int) -> None:
    print(f"== edge throughput: {devices} GT06 devices x {frames} location frames, each acked ({rounds} rounds)")
    with tempfile.TemporaryDirectory() as tmp:
        broker, bootstrap = start_embedded(Path(tmp) / "kafka")
        try:
            settings = Settings.from_env(data_dir=tmp)
            asyncio.run(ensure_topics(settings, bootstrap))
            results: dict[str, list[float]] = {"edge -> kafka (acks=all)": [], "bare asyncio server": []}
            for _ in range(rounds):
                port = free_port()
                env = dict(
                    os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, TRACKPIPE_DATA_DIR=tmp, TRACKPIPE_LOG_LEVEL="warning"
                )
                edge = _spawn(
                    [sys.executable, "-m", "trackpipe.cli", "edge", "--host", "127.0.0.1", "--port", str(port)], env
                )
                try:
                    while not (Path(tmp) / "run" / "edge.json").exists():
                        time.sleep(0.05)
                    n, secs = asyncio.run(_load(port, devices, frames))
                    results["edge -> kafka (acks=all)"].append(n / secs)
                finally:
                    stop(edge, 5)
                    (Path(tmp) / "run" / "edge.json").unlink(missing_ok=True)
                port = free_port()
                bare = _spawn([sys.executable, "-m", "trackpipe.bench", "--bare-server", str(port)])
                try:
                    wait_port("127.0.0.1", port, 10)
                    n, secs = asyncio.run(_load(port, devices, frames))
                    results["bare asyncio server"].append(n / secs)
                finally:
                    stop(bare, 5)
        finally:
            stop(broker, 5)
    for name, rates in results.items():
        print(
            f"  {name:28s} median {statistics.median(rates):10,.0f} frames/s  (runs: "
            + ", ".join(f"{r:,.0f}" for r in rates)
            + ")"
        )
    edge_rate, bare_rate = (statistics.median(v) for v in results.values())
    print(f"  ratio edge/bare: {edge_rate / bare_rate:.2f}")


# -- through the whole pipeline ------------------------------------------------------
def pipeline_figures(points: int, devices: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = start_pipeline(Path(tmp), extra_env={"TRACKPIPE_SINK_INTERVAL": "1.0"})
        try:
            latency(pipeline, points, devices)
        finally:
            stop_pipeline(pipeline)


def latency(pipeline: Pipeline, points: int, devices: int) -> None:
    print(
        f"== latency: frame sent -> row queryable, {points} Carscop points from {devices} devices, "
        "through trackpipe run (sink flush 1 s)"
    )
    sent: dict[tuple[str, str], float] = {}
    seen: dict[tuple[str, str], float] = {}

    async def send() -> None:
        conns = []
        for d in range(devices):
            dev = carscop_device.Device(f"BN{d:013d}", "tcp")
            _, writer = await asyncio.open_connection(pipeline.host, pipeline.port)
            for frame in dev.login():
                writer.write(frame)
            conns.append((dev, writer))
        base = datetime(2026, 6, 1, tzinfo=UTC)
        interval = 2.0 / points * devices  # spread over about 2 s per device round
        for k in range(points // devices):
            for dev, writer in conns:
                when = base + timedelta(seconds=k)
                writer.write(dev.position(track(1, k, when)))
                sent[(dev.device_id, when.strftime("%Y-%m-%d %H:%M:%S"))] = time.perf_counter()
            await asyncio.sleep(interval)
        for _, writer in conns:
            writer.close()

    async def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < points:
            rows = await asyncio.to_thread(
                pipeline.query,
                "SELECT device_id, toString(toDateTime(fix_time)) AS t FROM positions "
                "WHERE device_id LIKE 'BN%' AND fix_time >= '2026-06-01' AND fix_time < '2026-06-02'",
            )
            now = time.perf_counter()
            for r in rows:
                seen.setdefault((r["device_id"], r["t"]), now)
            await asyncio.sleep(0.05)

    async def both() -> None:
        await asyncio.gather(send(), watch())

    asyncio.run(both())
    lat = sorted((seen[k] - t) * 1000 for k, t in sent.items() if k in seen)
    if not lat:
        print("  no rows arrived")
        return
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"  rows {len(lat)}/{len(sent)}: p50 {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms, "
        f"max {lat[-1]:.0f} ms (query polling every ~50 ms adds up to its own duration)"
    )


def detection_cost(rounds: int) -> None:
    from trackpipe import conformance
    from trackpipe.protocols import registry

    corpus = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors" / "traccar-samples.jsonl"
    corpus = Path(os.environ.get("TRACKPIPE_VECTORS", corpus.parent)) / "traccar-samples.jsonl"
    if not corpus.exists():
        print(f"== detection cost: skipped, no corpus at {corpus}")
        return
    heads = []
    for record in conformance.read_records(corpus):
        try:
            heads.append(conformance.payload(record)[:1024])
        except (ValueError, KeyError):
            continue
    five_names = ("carscop", "gt06", "jt808", "h02", "teltonika")
    five = registry.index(registry.get(n) for n in five_names)
    everyone = registry.index(registry.CODECS)
    own_five = [
        conformance.payload(r)[:1024]
        for r in conformance.read_records(corpus)
        if registry.supported(r.get("protocol", "")) and registry.get(r["protocol"]).name in five_names
    ]

    def cost(heads: list[bytes], by_first: dict | None) -> float:
        per_round = []
        for _ in range(rounds):
            start = time.perf_counter()
            for head in heads:
                verdict = registry.detect(head, "tcp", by_first=by_first)
                if verdict.codec is not None:
                    framer = verdict.codec.new_framer()
                    framer.feed(head)
                    try:
                        framer.next_frame()
                    except Exception:
                        pass
            per_round.append((time.perf_counter() - start) / len(heads) * 1e6)
        return statistics.median(per_round)

    n = len(registry.CODECS)
    print(f"== detection + framing cost per connection (TCP first frames of the corpus, median of {rounds} rounds)")
    print(f"  the five first protocols' {len(own_five)} captures, first-byte index only:")
    wide, narrow = cost(own_five, everyone), cost(own_five, five)
    print(f"    {n} codecs registered: {wide:.1f} us; 5 codecs registered: {narrow:.1f} us")
    asked = statistics.mean(len(registry.candidates(h, transport="tcp")) for h in heads if h)
    print(
        f"  all {len(heads)} captures (253 protocols), {n} codecs, first + second byte level: "
        f"{cost(heads, None):.1f} us per connection; {asked:.2f} codecs asked on average"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-points", type=int, default=400)
    parser.add_argument("--latency-devices", type=int, default=20)
    parser.add_argument("--worker-frames", type=int, default=20000)
    parser.add_argument("--load-devices", type=int, default=100, help="latency bench: background GT06 units (0: skip)")
    parser.add_argument("--scale-seconds", type=float, default=45.0, help="scale-out run length (0: skip)")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--detection-only", action="store_true", help="only the detection + framing cost")
    args = parser.parse_args()
    if args.bare_server:
        asyncio.run(_bare_server(args.bare_server))
        return
    detection_cost(max(args.rounds, 5))
    if args.detection_only:
        return
    edge_throughput(args.devices, args.frames, args.rounds)
    if args.latency_points > 0:
        pipeline_figures(args.latency_points, args.latency_devices)
    if args.worker_frames > 0:
        bench_worker.pure_cost(args.worker_frames, args.rounds, bench_worker.DEFAULT_BATCH)
        bench_worker.throughput(args.worker_frames, args.rounds)
    if args.load_devices > 0:
        from trackpipe import bench_latency

        print(f"== latency under load: {args.load_devices} devices x 4/s for 45 s")
        with tempfile.TemporaryDirectory() as tmp:
            bench_latency.run(args.load_devices, 4.0, 45.0, Path(tmp))
    if args.scale_seconds > 0:
        from trackpipe import scale

        print(f"== scale-out: a+b, c joins and leaves; 200 frames/s for {args.scale_seconds:.0f} s, 6 partitions")
        with tempfile.TemporaryDirectory() as tmp:
            scale.report(scale.run(200.0, args.scale_seconds, 40, 6, Path(tmp)))


if __name__ == "__main__":
    main()
