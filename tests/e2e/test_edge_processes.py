"""One edge as two processes on one port (`TRACKPIPE_EDGE_PROCESSES=2`) inside `trackpipe run`:
the kernel spreads the devices over both (their rows carry both edge ids); a slot killed with
SIGKILL under load is restarted by the edge's parent (not by the supervisor: the edge as a whole
never went down); every acknowledged frame is stored exactly once; the stop leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from trackpipe.chaos import REPLY_TIMEOUT, Load, settle, supervisor_state, wait
from trackpipe.launcher import STOP_LIMIT, start_pipeline, stop_pipeline
from trackpipe.procs import pid_alive

pytestmark = pytest.mark.e2e


def _edge_file(data_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((data_dir / "run" / "edge.json").read_text())
    except (OSError, ValueError):
        return {}


def test_two_edge_processes_share_the_port_and_heal(tmp_path: Path) -> None:
    p = start_pipeline(tmp_path / "run", extra_env={"TRACKPIPE_EDGE_PROCESSES": "2"})
    load = Load(devices=40, rate=25.0)
    thread = load.start(p)
    slot_pids: list[int] = []
    try:
        first = _edge_file(p.data_dir)
        slot_pids = [s["pid"] for s in first["slots"]]
        assert len(slot_pids) == 2 and all(slot_pids) and first["port"] == p.port, first
        wait("frames acknowledged before the kill", lambda: len(load.acked) >= 2000, detail=load.summary)
        killed_at = time.monotonic()
        os.kill(slot_pids[0], signal.SIGKILL)

        def replaced() -> bool:
            slots = _edge_file(p.data_dir).get("slots") or [{}]
            return slots[0].get("pid") not in (None, slot_pids[0])

        wait("slot 0 restarted by the edge", replaced)
        restarted_at = time.monotonic()
        slot_pids = [s["pid"] for s in _edge_file(p.data_dir)["slots"]]
        time.sleep(5.0)
    except BaseException:
        stop_pipeline(p)
        raise
    finally:
        load.stop.set()
        thread.join(REPLY_TIMEOUT + 5)
    try:
        stored = settle(p, load)
        after = load.acked_after(restarted_at)
        edges = p.query("SELECT edge_id, count() AS n FROM positions FINAL GROUP BY edge_id ORDER BY edge_id")
        per_edge = [(r["edge_id"], r["n"]) for r in edges]
        print(
            f"2 edge processes, slot 0 killed: acked {len(load.acked)}, stored {stored[0]}, rows FINAL {stored[1]} "
            f"(distinct {stored[2]}), acked after its restart {after} (restart {restarted_at - killed_at:.1f}s), "
            f"connects {load.connects}, dropped {load.dropped}; rows per edge id {per_edge}"
        )
        assert stored[0] == len(load.acked), "acknowledged frames missing from positions"
        assert stored[1] == stored[2], "a frame is stored more than once"
        assert after > 0, "no frame was acknowledged after the slot's restart"
        ids = {r["edge_id"] for r in edges}
        assert len(ids) == 2 and all(i.endswith((".0", ".1")) for i in ids), ids
        assert supervisor_state(p)["parts"]["edge"]["restarts"] == 0, "the supervisor restarted the whole edge"
        edge_log = (p.data_dir / "logs" / "edge.log").read_text()
        assert "edge slot 0 exited with signal SIGKILL" in edge_log
    finally:
        took, code, alive = stop_pipeline(p)
    assert code == 0 and not alive and took < STOP_LIMIT, (took, code, alive)
    wait("edge processes gone", lambda: not [pid for pid in slot_pids if pid_alive(pid)], 10)
