"""The worker reads a device's rule state back without parsing what it wrote itself, and parses
anything else (a recovered changelog, a value another worker wrote)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = r"""
from datetime import UTC, datetime
from trackpipe.streams import app
from trackpipe.streams.rules import DeviceState

state = DeviceState(device_id="D1", protocol="gt06", online=True, last_seen=datetime(2026, 1, 2, tzinfo=UTC))
records = []
app._state_writer(records)("D1", state)
assert records == [(b"D1", state.to_bytes())]
assert app._load_state("D1") is state  # what this worker wrote: not parsed again
app.rule_state.data[b"D1"] = bytes(bytearray(state.to_bytes()))  # the same state, recovered
again = app._load_state("D1")
assert again == state and again is not state
moved = DeviceState(device_id="D1", protocol="gt06", online=False)
app.rule_state.data[b"D1"] = moved.to_bytes()  # written elsewhere
assert app._load_state("D1") == moved
assert app._load_state("D2") is None
print("ok")
"""


def test_a_state_written_here_is_read_back_as_is_anything_else_parsed(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={"TRACKPIPE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
