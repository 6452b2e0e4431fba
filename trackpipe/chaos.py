"""Counted fault injection against `trackpipe run` (`make chaos`): simulated GT06 devices, each
with one frame in flight, send positions; a fault is injected under load; then every frame a
device got an ack for is looked up in `positions FINAL`.  Prints one table row per fault:

    fault | acked | stored | lost | stored twice | acked/s before the fault | restarts | notes

Faults: `none`; `worker`, `edge`, `broker` (kill -9 of that part; `trackpipe run` restarts it);
`broker-late` (kill -9 of the broker, back only after 20 s); `supervisor` (kill -9 of `trackpipe
run` itself -- its children die with it -- then `trackpipe run` started again on the same data
directory, as systemd would); `poison` (one device whose clock spans 101 months among the others).

    python -m trackpipe.chaos [--faults broker,worker] [--devices 80] [--rate 25] [--before 4000]
    python -m trackpipe.chaos --soak 60 --devices 40     # 1k frames/s for an hour: memory figures
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .launcher import Pipeline, start_pipeline, stop_pipeline
from .protocols import gt06
from .protocols.base import Fix
from .protocols.devices.gt06 import Device as Gt06Device
from .simulate import track

REPLY_TIMEOUT = 20.0  # longer than the edge's publish timeout: no reply means the edge gave up
FAULTS = ("none", "worker", "edge", "broker", "broker-late", "supervisor", "poison")
POISON_ID = "869999999999999"


@dataclass
class Load:
    """What the devices saw: every (device, fix time) acknowledged, and the monotonic time of each ack."""

    devices: int = 40
    rate: float = 25.0  # frames/s per device
    poison: bool = False  # add a device whose fix times span 101 months
    acked: dict[tuple[str, datetime], float] = field(default_factory=dict)
    sent: int = 0
    connects: int = 0
    dropped: int = 0  # connections that ended under a device (closed, refused, reply timed out)
    stop: threading.Event = field(default_factory=threading.Event)
    target: Pipeline | None = None  # where the devices connect (replaced when `trackpipe run` restarts)

    def summary(self) -> str:
        return f"(sent {self.sent}, acked {len(self.acked)}, connects {self.connects}, dropped {self.dropped})"

    def acked_after(self, when: float) -> int:
        return sum(1 for at in self.acked.values() if at > when)

    def start(self, p: Pipeline) -> threading.Thread:
        self.target = p
        base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

        async def main() -> None:
            devices = [self._device(f"86{i:013d}", self._live(i, base)) for i in range(self.devices)]
            if self.poison:
                devices.append(self._device(POISON_ID, _months_apart(base)))
            await asyncio.gather(*devices)

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        return thread

    @staticmethod
    def _live(index: int, base: datetime) -> Callable[[int], Fix]:
        return lambda step: track(index, step, base + timedelta(seconds=step))

    async def _device(self, device_id: str, fix_at: Callable[[int], Fix]) -> None:
        loop = asyncio.get_running_loop()
        device = Gt06Device(device_id, "tcp")
        step = 0
        while not self.stop.is_set():
            link: Link | None = None
            try:
                assert self.target is not None
                target = self.target
                _, link = await asyncio.wait_for(loop.create_connection(Link, target.host, target.port), 3)
                self.connects += 1
                for frame in device.login():
                    await link.exchange(frame)
                while not self.stop.is_set():
                    fix = fix_at(step)
                    step += 1
                    self.sent += 1
                    if await link.exchange(device.position(fix)):
                        self.acked[(device.device_id, fix.time)] = time.monotonic()
                    await asyncio.sleep(1 / self.rate)
            except (OSError, EOFError, TimeoutError):  # closed, refused or no reply: reconnect
                self.dropped += 1
                await asyncio.sleep(0.2)
            finally:
                if link is not None:
                    link.close()


class Link(asyncio.Protocol):
    """A device's connection on a bare protocol (a load generator on streams, `wait_for` and
    `drain` per frame cost ~3x the CPU, and it shares the cores with what it loads): `exchange`
    writes a frame and waits for as many reply bytes as its reply has."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.want = 0
        self.waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.waiter is not None and not self.waiter.done() and len(self.received) >= self.want:
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or EOFError("connection closed")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(EOFError(f"connection closed: {exc}"))

    async def exchange(self, frame: bytes) -> bool:
        """Write `frame`; True once its reply came and is the one the protocol gives it."""
        if self.lost is not None or self.transport is None:
            raise EOFError(f"connection closed: {self.lost}")
        expected = gt06.CODEC.inspect(frame, "tcp").reply or b""
        self.transport.write(frame)
        if len(self.received) < len(expected):
            loop = asyncio.get_running_loop()
            self.want, self.waiter = len(expected), loop.create_future()
            timer = loop.call_later(REPLY_TIMEOUT, _time_out, self.waiter)
            try:
                await self.waiter
            finally:
                timer.cancel()
                self.waiter = None
        reply = bytes(self.received[: len(expected)])
        del self.received[: len(expected)]
        return reply == expected

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no reply within {REPLY_TIMEOUT:.0f}s"))


def _months_apart(base: datetime) -> Callable[[int], Fix]:
    """Fix times stepping back a month (31 days) at a time over 101 months, then again, a second
    later each round: one device's clock spanning 101 month partitions in every batch."""

    def fix_at(step: int) -> Fix:
        months, rounds = step % 101, step // 101
        return dataclasses.replace(
            track(999, step, base), time=base - timedelta(days=31 * months) + timedelta(seconds=rounds)
        )

    return fix_at


# -- the pipeline under test ------------------------------------------------------------


def supervisor_state(p: Pipeline) -> dict[str, Any]:
    return json.loads((p.data_dir / "run" / "supervisor.json").read_text())


def wait(what: str, check: Callable[[], bool], timeout: float = 90.0, detail: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f}s {detail()}")


def worker_ready(p: Pipeline) -> bool:
    import urllib.request

    try:
        info = json.loads((p.data_dir / "run" / "worker.json").read_text())
        with urllib.request.urlopen(info["url"] + "/ready", timeout=2) as response:
            return response.status == 200
    except (OSError, ValueError, KeyError):
        return False


def kill_part(p: Pipeline, part: str) -> None:
    """SIGKILL one supervised part and wait until `trackpipe run` restarted it."""
    before = supervisor_state(p)["parts"][part]
    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> bool:
        now = supervisor_state(p)["parts"][part]
        return now["state"] == "running" and now["pid"] != before["pid"]

    wait(f"{part} restarted", restarted)


def stored(p: Pipeline, load: Load) -> tuple[int, int, int]:
    """(acked frames stored, rows in positions FINAL, distinct (device, fix time) keys) of the load's devices."""
    ids = sorted({d for d, _ in load.acked})
    if not ids:
        return 0, 0, 0
    where = "device_id IN (" + ",".join(f"'{d}'" for d in ids) + ")"
    rows = p.query(f"SELECT device_id, toUnixTimestamp(fix_time) AS t FROM positions FINAL WHERE {where}")
    keys = {(r["device_id"], int(r["t"])) for r in rows}
    acked = {(d, int(t.timestamp())) for d, t in load.acked}
    return len(acked & keys), len(rows), len(keys)


def settle(p: Pipeline, load: Load, timeout: float = 90.0) -> tuple[int, int, int]:
    """Wait (up to `timeout`) until every acked frame is a row; the counts reached."""
    deadline = time.monotonic() + timeout
    counts = stored(p, load)
    while counts[0] < len(load.acked) and time.monotonic() < deadline:
        time.sleep(0.5)
        counts = stored(p, load)
    return counts


@dataclass
class Outcome:
    fault: str
    acked: int
    stored: int
    rows: int
    distinct: int
    seconds: float
    restarts: dict[str, int]
    notes: str = ""
    steady: float = 0.0  # acked frames/s before the fault

    @property
    def lost(self) -> int:
        return self.acked - self.stored

    def row(self) -> str:
        restarts = ", ".join(f"{k} {v}" for k, v in self.restarts.items() if v) or "-"
        return (
            f"| {self.fault} | {self.acked:,} | {self.stored:,} | {self.lost:,} | {self.rows - self.distinct:,} "
            f"| {self.steady:,.0f} | {restarts} | {self.notes} |"
        )


def run_fault(fault: str, root: Path, *, devices: int, rate: float, before: int, after: float) -> Outcome:
    """One row of the table: start a pipeline, load it, inject `fault` once `before` frames were
    acked, keep the load on `after` seconds more (after the worker is ready again), count."""
    env = {"TRACKPIPE_RESTART_BACKOFF": "20" if fault == "broker-late" else "0.5"}
    p = start_pipeline(root / fault, extra_env=env)
    load = Load(devices=devices, rate=rate, poison=fault == "poison")
    started = time.monotonic()
    thread = load.start(p)
    notes = ""
    try:
        wait("frames acknowledged before the fault", lambda: len(load.acked) >= before, 300, load.summary)
        faulted = time.monotonic()
        steady = len(load.acked) / (faulted - started)
        if fault in ("worker", "edge", "broker", "broker-late"):
            kill_part(p, fault.removesuffix("-late"))
        elif fault == "supervisor":
            os.kill(p.proc.pid, signal.SIGKILL)
            p.proc.wait(10)
            wait("children gone with the supervisor", lambda: not _alive(p), 30)
            p = start_pipeline(p.data_dir, port=p.port, extra_env=env)
            load.target = p
        if fault != "none":
            wait("worker ready after the fault", lambda: worker_ready(p), 120)
            notes = f"serving again {time.monotonic() - faulted:.1f}s after the fault"
        time.sleep(after)
    except BaseException:
        if p.proc.poll() is None:
            stop_pipeline(p)  # a failed wait must not leave the pipeline running
        raise
    finally:
        load.stop.set()
        thread.join(REPLY_TIMEOUT + 5)
    seconds = time.monotonic() - started
    try:
        counts = settle(p, load)
        restarts = {name: part["restarts"] for name, part in supervisor_state(p)["parts"].items()}
    finally:
        took, code, alive = stop_pipeline(p)
    notes += f"; stop {took:.1f}s, status {code}" + (f", LEFT {alive}" if alive else "")
    outcome = Outcome(fault, len(load.acked), counts[0], counts[1], counts[2], seconds, restarts, notes.lstrip("; "))
    outcome.steady = steady
    return outcome


def rss_mb(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def soak(root: Path, minutes: float, *, devices: int, rate: float, every: float = 60.0) -> int:
    """Issue 6 item 6: the pipeline under steady load for `minutes`; every `every` seconds one
    line of memory figures (RSS of broker, edge, worker; the broker's state file; the spool),
    then acked vs stored.  With the trimmer the broker's memory must stay flat."""
    p = start_pipeline(root / "soak")
    load = Load(devices=devices, rate=rate)
    started = time.monotonic()
    thread = load.start(p)
    state_file = p.data_dir / "kafka" / "kafka.json"
    print("minute | acked | acked/s | broker MB | kafka.json MB | edge MB | worker MB | spool MB | trimmed")
    last_acked, last_at = 0, started
    try:
        while time.monotonic() - started < minutes * 60:
            time.sleep(min(every, max(0.0, minutes * 60 - (time.monotonic() - started))))
            parts = supervisor_state(p)
            pids = {name: part["pid"] for name, part in parts["parts"].items()}
            now, acked = time.monotonic(), len(load.acked)
            state_mb = state_file.stat().st_size / 2**20 if state_file.exists() else 0.0
            spool_mb = sum(f.stat().st_size for f in (p.data_dir / "spool").glob("*.spool")) / 2**20
            print(
                f"{(now - started) / 60:6.1f} | {acked:,} | {(acked - last_acked) / (now - last_at):,.0f} "
                f"| {rss_mb(pids.get('broker')):.0f} | {state_mb:.1f} | {rss_mb(pids.get('edge')):.0f} "
                f"| {rss_mb(pids.get('worker')):.0f} | {spool_mb:.1f} | {parts.get('trimmed', 0):,}",
                flush=True,
            )
            last_acked, last_at = acked, now
    finally:
        load.stop.set()
        thread.join(REPLY_TIMEOUT + 5)
    try:
        counts = settle(p, load, timeout=180)
    finally:
        took, code, alive = stop_pipeline(p)
    left = f", LEFT {alive}" if alive else ""
    lost = len(load.acked) - counts[0]
    print(
        f"soak {minutes:g} min: acked {len(load.acked):,}, stored {counts[0]:,}, lost {lost:,}, "
        f"stored twice {counts[1] - counts[2]:,}; stop {took:.1f}s, status {code}{left}"
    )
    return 1 if lost or counts[1] != counts[2] else 0


def _alive(p: Pipeline) -> list[int]:
    out = []
    for name in ("worker", "edge", "broker"):
        pid = (supervisor_state(p)["parts"].get(name) or {}).get("pid")
        if pid:
            try:
                os.kill(pid, 0)
                out.append(pid)
            except ProcessLookupError:
                pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trackpipe.chaos", description=__doc__.split("\n\n")[0])
    ap.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of: {', '.join(FAULTS)}")
    ap.add_argument("--devices", type=int, default=80, help="simulated GT06 devices (default 80)")
    ap.add_argument("--rate", type=float, default=25.0, help="frames/s per device, one in flight (default 25)")
    ap.add_argument("--before", type=int, default=4000, help="acked frames before the fault (default 4000)")
    ap.add_argument("--after", type=float, default=8.0, help="seconds of load after recovery (default 8)")
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the pipelines' data here (default: a temp dir)")
    ap.add_argument("--soak", type=float, default=0.0, metavar="MINUTES", help="instead: a soak of MINUTES")
    ap.add_argument("--every", type=float, default=60.0, help="seconds between soak figures (default 60)")
    args = ap.parse_args(argv)
    if args.soak:
        with tempfile.TemporaryDirectory(prefix="trackpipe-soak-") as tmp:
            return soak(args.data_dir or Path(tmp), args.soak, devices=args.devices, rate=args.rate, every=args.every)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        ap.error(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
    with tempfile.TemporaryDirectory(prefix="trackpipe-chaos-") as tmp:
        root = args.data_dir or Path(tmp)
        print(f"{args.devices} GT06 devices x {args.rate:g} frames/s, fault after {args.before} acked frames")
        print("| fault | acked | stored | lost | stored twice | acked/s before the fault | restarts | notes |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        worst = 0
        for fault in faults:
            before = 100_000 if fault == "none" else args.before
            try:
                outcome = run_fault(fault, root, devices=args.devices, rate=args.rate, before=before, after=args.after)
            except (AssertionError, RuntimeError) as exc:
                print(f"| {fault} | failed: {exc} |", flush=True)
                worst = 1
                continue
            print(outcome.row(), flush=True)
            if outcome.lost or outcome.rows != outcome.distinct:
                worst = 1
    return worst


if __name__ == "__main__":
    sys.exit(main())
