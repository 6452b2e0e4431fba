"""`make bench`: first figures, printed (never asserted).

1. Edge throughput, a matrix paired per round: event loop {asyncio, uvloop} x traffic
   {pipelined: log in, write F location frames at once, wait for every ack; round-trip: log in,
   write each frame only after the previous one's ack} x {200, 2,000} GT06 devices on loopback.
   The edge (`trackpipe edge`, TRACKPIPE_LOOP set) acks a frame only after Kafka (embedded
   noida-db, acks=all) confirmed it; a bare server on the same loop frames and acks with the same
   codec but stores nothing.  frames/s of both, their ratio, and the cores each process used (the
   load generator's included: it must not be what limits).  One cell: --loop/--traffic/--devices.
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
4. Alarm and row latency under background load (`trackpipe.bench_latency`; default 500 GT06 units x
   10/s, i.e. 5k frames/s, for 60 s: `--load-devices`, `--load-rate`).
5. Scale-out (`trackpipe.scale`): workers joining and leaving under load, counted.

    python -m trackpipe.bench [--latency-points 400] [--edge-only [--loop uvloop] [--traffic round-trip]
                              [--devices 2000] [--frames 8 | --cell-frames 16000] [--clients 2]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trackpipe import bench_worker, loops
from trackpipe.broker import ensure_topics, free_port, start_embedded, wait_port
from trackpipe.config import Settings
from trackpipe.launcher import Pipeline, start_pipeline, stop_pipeline
from trackpipe.procs import child_preexec, cpu_seconds, stop
from trackpipe.protocols import gt06
from trackpipe.protocols.devices import carscop as carscop_device
from trackpipe.protocols.devices import gt06 as gt06_device
from trackpipe.simulate import track

# -- bare server: framing + inspect + immediate ack, no Kafka -----------------------------
LOOPS = ("asyncio", "uvloop")
TRAFFIC = ("pipelined", "round-trip")
DEVICE_COUNTS = (200, 2000)
CELL_FRAMES = 16_000  # frames per run of a cell unless --frames: F = CELL_FRAMES // devices per device
CONNECTS_AT_ONCE = 256  # a client's connects in flight (the rest wait: no SYN-backlog overflow retries)
LOGIN_DEADLINE = 60.0  # s: every device of a run connected and logged in
LOAD_DEADLINE = 120.0  # s: every frame of a run acked
SERVER_DEADLINE = 30.0  # s: a server child listens


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
    server = await asyncio.get_running_loop().create_server(_Bare, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# -- load: GT06 devices in client processes ---------------------------------------------------
class _Device(asyncio.Protocol):
    """One GT06 unit on a bare protocol (cheaper than streams, so the client limits less): it logs
    in; on `go` it writes its frames all at once (pipelined) or each after the previous frame's ack
    (round-trip), and counts reply bytes until every frame is acked (`finished`: the time)."""

    def __init__(self, index: int, frames: int, round_trip: bool, loop: asyncio.AbstractEventLoop) -> None:
        dev = gt06_device.Device(f"35{index:013d}", "tcp")
        base = datetime.now(UTC).replace(microsecond=0)
        self.login = dev.login()[0]
        self.frames = [dev.position(track(index, k, base + timedelta(seconds=k))) for k in range(frames)]
        self.replies = [len(gt06.CODEC.inspect(f, "tcp").reply or b"") for f in self.frames]
        self.round_trip = round_trip
        self.logged_in: asyncio.Future[None] = loop.create_future()
        self.finished: asyncio.Future[float] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.got = 0  # reply bytes received
        self.want = len(gt06.CODEC.inspect(self.login, "tcp").reply or b"")  # ... before the next step
        self.sent = 0  # frames written
        self.started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.login)  # type: ignore[union-attr]

    def go(self) -> None:
        self.started = True
        if not self.round_trip and self.transport is not None:
            self.transport.write(b"".join(self.frames))
            self.want += sum(self.replies)
            self.sent = len(self.frames)
        self._step()

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        self._step()

    def _step(self) -> None:
        while self.got >= self.want:
            if not self.logged_in.done():
                self.logged_in.set_result(None)
                return
            if not self.started:
                return
            if self.sent < len(self.frames) and self.transport is not None:  # round-trip: the next frame
                self.transport.write(self.frames[self.sent])
                self.want += self.replies[self.sent]
                self.sent += 1
                continue
            if not self.finished.done():
                self.finished.set_result(time.monotonic())
            return

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.logged_in, self.finished):
            if not future.done():
                future.set_exception(ConnectionError(f"closed by the server after {self.got} reply bytes: {exc}"))


async def _load(port: int, first: int, count: int, frames: int, round_trip: bool, barrier: Any) -> dict[str, Any]:
    """`count` devices connect and log in; after `barrier` (every client process ready) they send
    their frames.  Returns the frames acked, the frame phase's start and end (monotonic clock,
    shared by the processes) and this process's CPU seconds in it."""
    loop = asyncio.get_running_loop()
    devices = [_Device(first + i, frames, round_trip, loop) for i in range(count)]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def connect(device: _Device) -> None:
        async with gate:
            await loop.create_connection(lambda: device, "127.0.0.1", port)
            await device.logged_in

    try:
        try:
            await asyncio.wait_for(asyncio.gather(*(connect(d) for d in devices)), LOGIN_DEADLINE)
        except BaseException:
            barrier.abort()  # the other processes stop waiting
            raise
        barrier.wait(LOGIN_DEADLINE)  # blocks the loop: every connection is idle now
        cpu, start = time.process_time(), time.monotonic()
        for device in devices:
            device.go()
        done, _ = await asyncio.wait([d.finished for d in devices], timeout=LOAD_DEADLINE)
        cpu = time.process_time() - cpu
        ends = [f.result() for f in done if f.exception() is None]
        failed = [f.exception() for f in done if f.exception() is not None]
        error = "" if len(ends) == count else f"{count - len(ends)} of {count} devices unfinished"
        if failed:
            error += f" (first: {failed[0]})"
        return {
            "frames": len(ends) * frames,
            "start": start,
            "end": max(ends, default=start),
            "cpu": cpu,
            "error": error,
        }
    finally:
        for device in devices:
            if device.transport is not None:
                device.transport.close()


def _client(
    port: int, first: int, count: int, frames: int, round_trip: bool, loop: str, barrier: Any, out: Any
) -> None:
    """A load-generator process: runs `_load` on `loop`, puts its result (or its error) on `out`."""
    try:
        with asyncio.Runner(loop_factory=loops.loop_factory(loop)) as runner:
            result = runner.run(_load(port, first, count, frames, round_trip, barrier))
    except BaseException as exc:  # reported, never a silent hang of the parent
        with contextlib.suppress(Exception):
            barrier.abort()
        result = {"frames": 0, "start": 0.0, "end": 0.0, "cpu": 0.0, "error": f"{type(exc).__name__}: {exc}"}
    out.put(result)


@dataclass
class _Run:
    rate: float  # acked frames/s, every client process together
    client_cpu: float  # cores the load generator used in the frame phase
    server_cpu: float  # cores the server process used (from the clients' start to their results)
    broker_cpu: float  # ... and the broker (edge runs)
    error: str = ""


def _measure(
    server: int, broker: int | None, port: int, devices: int, frames: int, round_trip: bool, clients: int, loop: str
) -> _Run:
    """One run: `devices` GT06 units in `clients` processes against the server on `port`."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients + 1)  # the parent too: it reads the servers' CPU at the start
    out = ctx.Queue()
    shares = [devices // clients + (1 if i < devices % clients else 0) for i in range(clients)]
    firsts = [sum(shares[:i]) for i in range(clients)]
    procs = [
        ctx.Process(target=_client, args=(port, f, n, frames, round_trip, loop, barrier, out), daemon=True)
        for f, n in zip(firsts, shares, strict=True)
        if n
    ]
    pids = [server] + ([broker] if broker else [])
    try:
        for proc in procs:
            proc.start()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(LOGIN_DEADLINE + 30)
        wall, cpu = time.monotonic(), [cpu_seconds(pid) for pid in pids]
        results, errors = [], []
        for _ in procs:
            try:
                results.append(out.get(timeout=LOGIN_DEADLINE + LOAD_DEADLINE + 30))
            except queue.Empty:
                errors.append("a client process reported nothing")
                break
        wall = time.monotonic() - wall
        used = [max(0.0, cpu_seconds(pid) - c) / max(wall, 1e-9) for pid, c in zip(pids, cpu, strict=True)]
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    errors += [r["error"] for r in results if r["error"]]
    acked = sum(r["frames"] for r in results)
    span = max((r["end"] for r in results), default=0.0) - min((r["start"] for r in results), default=0.0)
    busy = sum(r["cpu"] for r in results)
    return _Run(
        acked / span if span > 0 else 0.0,
        busy / span if span > 0 else 0.0,
        used[0],
        used[1] if broker else 0.0,
        "; ".join(errors),
    )


def _spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=child_preexec
    )


def _start_edge(tmp: str, bootstrap: str, loop: str) -> tuple[subprocess.Popen, int]:
    """`trackpipe edge` on `loop`, publishing to the embedded broker; waits for its ready file."""
    ready = Path(tmp) / "run" / "edge.json"
    ready.unlink(missing_ok=True)
    port = free_port()
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TRACKPIPE_DATA_DIR=tmp,
        TRACKPIPE_LOG_LEVEL="warning",
        TRACKPIPE_LOOP=loop,
    )
    edge = _spawn([sys.executable, "-m", "trackpipe.cli", "edge", "--host", "127.0.0.1", "--port", str(port)], env)
    deadline = time.monotonic() + SERVER_DEADLINE
    while not ready.exists():
        if edge.poll() is not None or time.monotonic() > deadline:
            stop(edge, 5)
            raise RuntimeError(f"the edge on {loop} did not get ready (exit code {edge.poll()})")
        time.sleep(0.05)
    return edge, port


def _start_bare(loop: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    bare = _spawn(
        [sys.executable, "-m", "trackpipe.bench", "--bare-server", str(port)], dict(os.environ, TRACKPIPE_LOOP=loop)
    )
    try:
        wait_port("127.0.0.1", port, SERVER_DEADLINE)
    except BaseException:
        stop(bare, 5)
        raise
    return bare, port


@dataclass
class _Cell:
    loop: str
    traffic: str
    devices: int
    frames: int
    edge: list[_Run] = field(default_factory=list)
    bare: list[_Run] = field(default_factory=list)

    def name(self) -> str:
        return f"{self.loop:7s} {self.traffic:10s} {self.devices:5d} x {self.frames:<4d}"


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def edge_throughput(
    device_counts: list[int],
    traffics: list[str],
    loop_names: list[str],
    frames: int | None,
    rounds: int,
    clients: int = 1,
    cell_frames: int = CELL_FRAMES,
) -> None:
    """The edge (subprocess `trackpipe edge`, acking after Kafka acks=all) vs a bare server on the
    same loop (acks at once, same codec, stores nothing): frames/s of each and their ratio, for
    every loop x traffic x devices cell, paired per round (both servers up, runs alternate)."""
    if "uvloop" in loop_names and not loops.uvloop_available():
        print("  (uvloop is not installed: asyncio only)")
        loop_names = [n for n in loop_names if n != "uvloop"] or ["asyncio"]
    client_loop = "uvloop" if loops.uvloop_available() else "asyncio"
    cells = [
        _Cell(loop, traffic, n, frames or max(1, cell_frames // n))
        for loop in loop_names
        for traffic in traffics
        for n in device_counts
    ]
    print(
        f"== edge throughput: GT06 devices log in, then send F location frames each, pipelined (all at once) or "
        f"round-trip (each after the previous ack); the edge acks after Kafka (embedded, acks=all) confirmed a "
        f"frame, the bare server on the same loop acks at once; load: {clients} client process(es) on "
        f"{client_loop}; median of {rounds} paired rounds"
    )
    with tempfile.TemporaryDirectory() as tmp:
        broker, bootstrap = start_embedded(Path(tmp) / "kafka")
        try:
            settings = Settings.from_env(data_dir=tmp)
            asyncio.run(ensure_topics(settings, bootstrap))
            for r in range(rounds):
                for loop in loop_names:
                    edge, edge_port = _start_edge(tmp, bootstrap, loop)
                    try:
                        bare, bare_port = _start_bare(loop)
                        try:
                            for port, pid, brk in ((edge_port, edge.pid, broker.pid), (bare_port, bare.pid, None)):
                                _measure(pid, brk, port, 20, 5, False, 1, client_loop)  # warm-up, not counted
                            mine = [c for c in cells if c.loop == loop]
                            for i, cell in enumerate(mine):
                                runs = [("edge", edge_port, edge.pid, broker.pid), ("bare", bare_port, bare.pid, None)]
                                for kind, port, pid, brk in runs if (r + i) % 2 == 0 else runs[::-1]:
                                    got = _measure(
                                        pid,
                                        brk,
                                        port,
                                        cell.devices,
                                        cell.frames,
                                        cell.traffic == "round-trip",
                                        clients,
                                        client_loop,
                                    )
                                    getattr(cell, kind).append(got)
                                    if got.error:
                                        print(f"  {cell.name()} {kind}: {got.error}", flush=True)
                        finally:
                            stop(bare, 5)
                    finally:
                        stop(edge, 5)
                print(f"  round {r + 1}/{rounds} done", flush=True)
        finally:
            stop(broker, 5)
    _print_table(cells)


def _print_table(cells: list[_Cell]) -> None:
    print(
        f"  {'loop    traffic    devices x F':31s} {'edge f/s':>9s} {'bare f/s':>9s} {'ratio':>6s}   "
        "cpu (cores): client edge/bare, edge, broker, bare"
    )
    for cell in cells:
        edge, bare = _med([x.rate for x in cell.edge]), _med([x.rate for x in cell.bare])
        ratios = [e.rate / b.rate for e, b in zip(cell.edge, cell.bare, strict=False) if b.rate > 0]
        print(
            f"  {cell.name():31s} {edge:9,.0f} {bare:9,.0f} {_med(ratios):6.2f}   "
            f"{_med([x.client_cpu for x in cell.edge]):.2f}/{_med([x.client_cpu for x in cell.bare]):.2f}, "
            f"{_med([x.server_cpu for x in cell.edge]):.2f}, {_med([x.broker_cpu for x in cell.edge]):.2f}, "
            f"{_med([x.server_cpu for x in cell.bare]):.2f}"
            + ("  runs edge " + ", ".join(f"{x.rate:,.0f}" for x in cell.edge))
            + ("; bare " + ", ".join(f"{x.rate:,.0f}" for x in cell.bare))
        )
    print("  ratio: median of the rounds' paired edge/bare ratios")


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
    parser.add_argument("--devices", type=int, help="edge: only this many devices (default: 200 and 2,000)")
    parser.add_argument("--traffic", choices=TRAFFIC, help="edge: only this traffic (default: both)")
    parser.add_argument("--loop", choices=LOOPS, help="edge: only this event loop (default: both)")
    parser.add_argument("--frames", type=int, help=f"edge: frames per device (default: {CELL_FRAMES:,} / devices)")
    parser.add_argument("--cell-frames", type=int, default=CELL_FRAMES, help="edge: frames per run without --frames")
    parser.add_argument("--edge-rounds", type=int, help="edge: paired rounds (default: --rounds)")
    parser.add_argument("--clients", type=int, default=1, help="edge: load-generator processes")
    parser.add_argument("--edge-only", action="store_true", help="only the edge throughput cells")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-points", type=int, default=400)
    parser.add_argument("--latency-devices", type=int, default=20)
    parser.add_argument("--worker-frames", type=int, default=20000)
    parser.add_argument("--worker-devices", type=int, default=5000, help="worker: units the frames come from")
    parser.add_argument("--load-devices", type=int, default=500, help="latency bench: background GT06 units (0: skip)")
    parser.add_argument("--load-rate", type=float, default=10.0, help="latency bench: frames/s per background unit")
    parser.add_argument("--scale-seconds", type=float, default=45.0, help="scale-out run length (0: skip)")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--detection-only", action="store_true", help="only the detection + framing cost")
    args = parser.parse_args()
    if args.bare_server:  # the bench's child: on TRACKPIPE_LOOP, as the edge it is compared with
        loops.run(_bare_server(args.bare_server), "edge")
        return
    for name in ("devices", "frames", "cell_frames", "edge_rounds", "clients"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    def edge() -> None:
        edge_throughput(
            [args.devices] if args.devices else list(DEVICE_COUNTS),
            [args.traffic] if args.traffic else list(TRAFFIC),
            [args.loop] if args.loop else list(LOOPS),
            args.frames,
            args.edge_rounds or args.rounds,
            args.clients,
            args.cell_frames,
        )

    if args.edge_only:
        edge()
        return
    detection_cost(max(args.rounds, 5))
    if args.detection_only:
        return
    edge()
    if args.latency_points > 0:
        pipeline_figures(args.latency_points, args.latency_devices)
    if args.worker_frames > 0:
        bench_worker.pure_cost(args.worker_frames, args.rounds, bench_worker.DEFAULT_BATCH, args.worker_devices)
        bench_worker.throughput(args.worker_frames, args.rounds, devices=args.worker_devices)
    if args.load_devices > 0:
        from trackpipe import bench_latency

        print(f"== latency under load: {args.load_devices} devices x {args.load_rate:g}/s for 60 s")
        with tempfile.TemporaryDirectory() as tmp:
            bench_latency.run(args.load_devices, args.load_rate, 60.0, Path(tmp))
    if args.scale_seconds > 0:
        from trackpipe import scale

        print(f"== scale-out: a+b, c joins and leaves; 200 frames/s for {args.scale_seconds:.0f} s, 6 partitions")
        with tempfile.TemporaryDirectory() as tmp:
            scale.report(scale.run(200.0, args.scale_seconds, 40, 6, Path(tmp)))


if __name__ == "__main__":
    main()
