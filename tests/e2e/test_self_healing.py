"""Self-healing `trackpipe run`: a part killed with SIGKILL under load from simulated GT06
devices is restarted (logged, counted in <data-dir>/run/supervisor.json); devices see at most
a reconnect; every acknowledged frame is stored exactly once; the stop stays clean.  The load,
the kill and the counting are `trackpipe.chaos`'s (`make chaos` prints the same counts)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from trackpipe.chaos import REPLY_TIMEOUT, Load, kill_part, settle, supervisor_state, wait, worker_ready
from trackpipe.launcher import STOP_LIMIT, Pipeline, start_pipeline, stop_pipeline
from trackpipe.procs import pid_alive

pytestmark = pytest.mark.e2e

DEVICES = 40
RATE = 25.0  # frames/s per device, one frame in flight: ~1000 acked frames/s in all


def _chaos(tmp_path: Path, part: str, after_restart: float = 6.0) -> tuple[Pipeline, Load, int, float]:
    """Start a pipeline and the load; SIGKILL `part` once frames flow; keep the load on until
    `after_restart` seconds after the worker is ready again; returns the restart count too."""
    p = start_pipeline(tmp_path / part, extra_env={"TRACKPIPE_RESTART_BACKOFF": "0.5"})
    load = Load(devices=DEVICES, rate=RATE)
    thread = load.start(p)
    try:
        wait("frames acknowledged before the kill", lambda: len(load.acked) >= 2000, detail=load.summary)
        killed_at = time.monotonic()
        kill_part(p, part)
        restarted_at = time.monotonic()
        wait("worker ready after the restart", lambda: worker_ready(p))
        print(
            f"kill -9 {part}: restarted after {restarted_at - killed_at:.1f}s, "
            f"worker ready {time.monotonic() - killed_at:.1f}s after the kill"
        )
        time.sleep(after_restart)
    except BaseException:
        stop_pipeline(p)  # a failed wait must not leave the pipeline running
        raise
    finally:
        load.stop.set()
        thread.join(REPLY_TIMEOUT + 5)
    return p, load, supervisor_state(p)["parts"][part]["restarts"], restarted_at


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
        stored = settle(p, load)
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


def test_killed_broker_restarted_and_every_acked_frame_stored(tmp_path: Path) -> None:
    """The embedded broker keeps its port and comes back with the state it last wrote (short of
    what it confirmed in its last second): the edge publishes its spool again, the worker is
    restarted behind the broker from the offsets the broker kept -- no acknowledged frame lost."""
    p, load, restarts, restarted_at = _chaos(tmp_path, "broker", after_restart=8.0)
    try:
        after = load.acked_after(restarted_at)
        stored = settle(p, load)
        _report("broker", load, stored, restarts, after)
        parts = supervisor_state(p)["parts"]
        assert restarts == 1
        assert parts["worker"]["restarts"] == 1, "the worker was not restarted with the broker"
        assert parts["edge"]["restarts"] == 0, "the edge had to be restarted"
        assert after > 0, "no frame was acknowledged after the broker came back"
        assert stored[0] == len(load.acked), "acknowledged frames missing from positions"
        assert stored[1] == stored[2], "a frame is stored more than once"
        edge_log = (p.data_dir / "logs" / "edge.log").read_text()
        assert "lost records it had confirmed" in edge_log or "published again" not in edge_log
    finally:
        _assert_clean_stop(p)


def test_killed_supervisor_restarted_loses_no_acked_frame(tmp_path: Path) -> None:
    """kill -9 of `trackpipe run` itself: its children die with it (the broker unflushed); started
    again on the same data directory (as systemd would), the edge publishes the spool an earlier
    run left, and every frame a device got an ack for is stored once."""
    p = start_pipeline(tmp_path / "run")
    load = Load(devices=DEVICES, rate=RATE)
    thread = load.start(p)
    try:
        wait("frames acknowledged before the kill", lambda: len(load.acked) >= 2000, detail=load.summary)
        children = p.children()
        os.kill(p.proc.pid, signal.SIGKILL)
        p.proc.wait(10)
        wait("children gone with the supervisor", lambda: not [c for c in children if pid_alive(c)], 30)
        acked_while_down = len(load.acked)
        p = start_pipeline(p.data_dir, port=p.port)
        load.target = p
        restarted_at = time.monotonic()
        time.sleep(6.0)
    except BaseException:
        if p.proc.poll() is None:
            stop_pipeline(p)
        raise
    finally:
        load.stop.set()
        thread.join(REPLY_TIMEOUT + 5)
    try:
        stored = settle(p, load)
        after = load.acked_after(restarted_at)
        _report("supervisor", load, stored, 1, after)
        assert after > 0, "no frame was acknowledged after the restart"
        assert acked_while_down >= 2000
        assert stored[0] == len(load.acked), "acknowledged frames missing from positions"
        assert stored[1] == stored[2], "a frame is stored more than once"
        assert "earlier run" in (p.data_dir / "logs" / "edge.log").read_text(), "no spool left to publish?"
    finally:
        _assert_clean_stop(p)
