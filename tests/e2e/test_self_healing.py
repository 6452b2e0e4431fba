"""Self-healing `trackpipe run`: a part killed with SIGKILL under load from simulated GT06
devices is restarted (logged, counted in <data-dir>/run/supervisor.json); devices see at most
a reconnect; every acknowledged frame is stored exactly once; the stop stays clean."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from trackpipe.protocols import gt06
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from trackpipe.launcher import STOP_LIMIT, Pipeline, start_pipeline, stop_pipeline
from trackpipe.simulate import track

pytestmark = pytest.mark.e2e

DEVICES = 40
RATE = 25.0  # frames/s per device, one frame in flight: ~1000 acked frames/s in all
REPLY_TIMEOUT = 20.0  # longer than the edge's publish timeout: no reply means the edge gave up


@dataclass
class Load:
    """What the devices saw: every (device, fix time) acknowledged, and the monotonic time of each ack."""

    acked: dict[tuple[str, datetime], float] = field(default_factory=dict)
    sent: int = 0
    connects: int = 0
    dropped: int = 0  # connections that ended under a device (closed, refused, reply timed out)
    stop: threading.Event = field(default_factory=threading.Event)

    def summary(self) -> str:
        return f"(sent {self.sent}, acked {len(self.acked)}, connects {self.connects}, dropped {self.dropped})"

    def acked_after(self, when: float) -> int:
        return sum(1 for at in self.acked.values() if at > when)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frame: bytes) -> bool:
    writer.write(frame)
    await writer.drain()
    expected = gt06.CODEC.inspect(frame, "tcp").reply
    reply = await asyncio.wait_for(reader.readexactly(len(expected)), REPLY_TIMEOUT)
    return reply == expected


async def _device(index: int, p: Pipeline, load: Load, base: datetime) -> None:
    device = Gt06Device(f"86{index:013d}", "tcp")
    step = 0
    while not load.stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(p.host, p.port), 3)
            load.connects += 1
            for frame in device.login():
                await _exchange(reader, writer, frame)
            while not load.stop.is_set():
                fix = track(index, step, base + timedelta(seconds=step))
                step += 1
                load.sent += 1
                if await _exchange(reader, writer, device.position(fix)):
                    load.acked[(device.device_id, fix.time)] = time.monotonic()
                await asyncio.sleep(1 / RATE)
        except (OSError, EOFError, TimeoutError):  # closed, refused or no reply: reconnect
            load.dropped += 1
            await asyncio.sleep(0.2)
        finally:
            if writer is not None:
                writer.close()


def _run_load(p: Pipeline, load: Load) -> threading.Thread:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    async def main() -> None:
        await asyncio.gather(*(_device(i, p, load, base) for i in range(DEVICES)))

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    return thread


def _supervisor(p: Pipeline) -> dict[str, Any]:
    return json.loads((p.data_dir / "run" / "supervisor.json").read_text())


def _wait(what: str, check: Any, timeout: float = 90.0, detail: Any = str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f}s {detail()}")


def _worker_ready(p: Pipeline) -> bool:
    try:
        info = json.loads((p.data_dir / "run" / "worker.json").read_text())
        with urllib.request.urlopen(info["url"] + "/ready", timeout=2) as response:
            return response.status == 200
    except (OSError, ValueError, KeyError):
        return False


def _kill(p: Pipeline, part: str) -> int:
    before = _supervisor(p)["parts"][part]
    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> bool:
        now = _supervisor(p)["parts"][part]
        return now["state"] == "running" and now["pid"] != before["pid"]

    _wait(f"{part} restarted", restarted)
    return _supervisor(p)["parts"][part]["restarts"]


def _stored(p: Pipeline, load: Load) -> tuple[int, int, int]:
    """(acked frames stored, rows in positions FINAL, distinct (device, fix time) keys) of the load's devices."""
    ids = sorted({d for d, _ in load.acked})
    where = "device_id IN (" + ",".join(f"'{d}'" for d in ids) + ")"
    rows = p.query(f"SELECT device_id, toUnixTimestamp(fix_time) AS t FROM positions FINAL WHERE {where}")
    keys = {(r["device_id"], int(r["t"])) for r in rows}
    acked = {(d, int(t.timestamp())) for d, t in load.acked}
    return len(acked & keys), len(rows), len(keys)


def _settle(p: Pipeline, load: Load, timeout: float = 90.0) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout
    counts = _stored(p, load)
    while counts[0] < len(load.acked) and time.monotonic() < deadline:
        time.sleep(0.5)
        counts = _stored(p, load)
    return counts


def _chaos(tmp_path: Path, part: str, after_restart: float = 6.0) -> tuple[Pipeline, Load, int, float]:
    """Start a pipeline and the load; SIGKILL `part` once frames flow; keep the load on until
    `after_restart` seconds after the worker is ready again; returns the restart count too."""
    p = start_pipeline(tmp_path / part, extra_env={"TRACKPIPE_RESTART_BACKOFF": "0.5"})
    load = Load()
    thread = _run_load(p, load)
    try:
        _wait("frames acknowledged before the kill", lambda: len(load.acked) >= 2000, detail=load.summary)
        killed_at = time.monotonic()
        restarts = _kill(p, part)
        restarted_at = time.monotonic()
        _wait("worker ready after the restart", lambda: _worker_ready(p))
        print(
            f"kill -9 {part}: restarted after {restarted_at - killed_at:.1f}s, "
            f"worker ready {time.monotonic() - killed_at:.1f}s after the kill"
        )
        time.sleep(after_restart)
    finally:
        load.stop.set()
        thread.join(REPLY_TIMEOUT + 5)
    return p, load, restarts, restarted_at


def _assert_clean_stop(p: Pipeline) -> None:
    took, code, alive = stop_pipeline(p)
    print(f"stop: {took:.1f}s, status {code}, left {alive}")
    assert not alive, f"processes left behind: {alive}"
    assert code == 0, f"trackpipe run exited with status {code}"
    assert took < STOP_LIMIT, f"pipeline took {took:.1f}s to stop"


def _report(part: str, load: Load, stored: tuple[int, int, int], restarts: int, after: int) -> None:
    print(
        f"kill -9 {part}: sent {load.sent}, acked {len(load.acked)}, acked stored {stored[0]}, "
        f"lost {len(load.acked) - stored[0]}, rows FINAL {stored[1]} (distinct {stored[2]}), "
        f"connects {load.connects}, dropped {load.dropped}, acked after restart {after}, restarts {restarts}"
    )


@pytest.mark.parametrize("part", ["worker", "edge"])
def test_killed_part_restarted_and_acked_frames_stored_once(tmp_path: Path, part: str) -> None:
    p, load, restarts, restarted_at = _chaos(tmp_path, part)
    try:
        after = load.acked_after(restarted_at)
        stored = _settle(p, load)
        _report(part, load, stored, restarts, after)
        assert restarts == 1
        assert any(f"{part} exited with signal SIGKILL" in line for line in p.output), p.output[-20:]
        assert any(f"restarted {part}" in line and "restart count 1" in line for line in p.output)
        assert after > 0, "no frame was acknowledged after the restart"
        assert stored[0] == len(load.acked), "acknowledged frames missing from positions"
        assert stored[1] == stored[2], "a frame is stored more than once"
        if part == "edge":
            assert load.dropped >= DEVICES, "the devices' connections survived a killed edge?"
    finally:
        _assert_clean_stop(p)


def test_killed_broker_restarted_and_pipeline_serves_again(tmp_path: Path) -> None:
    """The embedded broker keeps its port, and edge and worker reconnect to it.  Frames it
    confirmed but had not written to disk are lost with it (another part of issue 6): the
    counts are printed, not asserted."""
    p, load, restarts, restarted_at = _chaos(tmp_path, "broker", after_restart=8.0)
    try:
        after = load.acked_after(restarted_at)
        stored = _settle(p, load, timeout=30.0)
        _report("broker", load, stored, restarts, after)
        assert restarts == 1
        assert _supervisor(p)["parts"]["worker"]["restarts"] == 0, "the worker had to be restarted"
        assert _supervisor(p)["parts"]["edge"]["restarts"] == 0, "the edge had to be restarted"
        assert after > 0, "no frame was acknowledged after the broker came back"
        assert stored[1] == stored[2], "a frame is stored more than once"
    finally:
        _assert_clean_stop(p)
