"""The restart policy of `trackpipe run` (the restarts themselves: tests/e2e/test_self_healing.py)."""

from __future__ import annotations

import signal
import subprocess
import sys

from trackpipe.config import Settings
from trackpipe.supervisor import Backoff, Part, describe_exit


def test_backoff_doubles_to_cap_and_resets_after_stable_run() -> None:
    b = Backoff(first=0.5, cap=4.0, stable=30.0)
    assert [b.delay(ran_for=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.delay(ran_for=30.0) == 0.5  # ran long enough: a fresh crash, not a crash loop
    assert b.delay(ran_for=0.1) == 1.0


def test_exit_described_by_status_or_signal() -> None:
    assert describe_exit(1) == "status 1"
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"
    assert describe_exit(-200) == "signal 200"


def test_part_snapshot_states() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    part = Part("worker", lambda: proc, Backoff(), proc=proc)
    proc.wait()
    assert part.snapshot() == {"pid": None, "state": "stopped", "restarts": 0, "last_exit": None}
    part.restart_at, part.restarts, part.last_exit = 1.0, 2, -9
    assert part.snapshot() == {"pid": None, "state": "restarting", "restarts": 2, "last_exit": -9}


def test_restart_settings_from_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRACKPIPE_RESTART_BACKOFF", "0.25")
    monkeypatch.setenv("TRACKPIPE_RESTART_BACKOFF_MAX", "8")
    monkeypatch.setenv("TRACKPIPE_RESTART_STABLE", "60")
    s = Settings.from_env()
    assert (s.restart_backoff, s.restart_backoff_max, s.restart_stable) == (0.25, 8.0, 60.0)
