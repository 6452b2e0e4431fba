"""Start and stop a whole `trackpipe run` as a child process, exactly as a user does:
used by the end-to-end tests and the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .broker import free_port
from .cli import run_query
from .config import Settings

STARTUP_TIMEOUT = 180.0
STOP_LIMIT = 10.0  # the promise: every part stopped within 10 s

#: quick limits so tests of bad input finish fast
TEST_ENV = {
    "TRACKPIPE_DETECT_TIMEOUT": "2",
    "TRACKPIPE_IDLE_TIMEOUT": "30",
    "TRACKPIPE_MAX_FRAME": "8192",
    "TRACKPIPE_SINK_INTERVAL": "0.3",
    "TRACKPIPE_PUBLISH_TIMEOUT": "10",
}


@dataclass
class Pipeline:
    proc: subprocess.Popen
    host: str
    port: int
    data_dir: Path
    output: list[str]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(data_dir=self.data_dir, host=self.host, port=self.port)

    def query(self, sql: str) -> list[dict[str, Any]]:
        columns, rows = run_query(self.settings, sql)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def wait_rows(
        self, sql: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.query(sql)
            if done(rows):
                return rows
            time.sleep(0.3)
        return rows

    def cli(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        """`trackpipe ARGS --data-dir <this pipeline's>` as a user runs it: output captured."""
        return subprocess.run(
            [sys.executable, "-m", "trackpipe.cli", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def bootstrap(self) -> str:
        import json

        return json.loads((self.data_dir / "run" / "broker.json").read_text())["bootstrap"]

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


def _pump_output(proc: subprocess.Popen, sink: list[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line.rstrip("\n"))
        if line.startswith("ready: "):
            ready.set()


def start_pipeline(data_dir: Path, port: int | None = None, extra_env: dict[str, str] | None = None) -> Pipeline:
    port = port or free_port()
    env = dict(os.environ) | TEST_ENV | (extra_env or {})
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("CLICKHOUSE_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trackpipe.cli",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    output: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_pump_output, args=(proc, output, ready), daemon=True).start()
    if not ready.wait(STARTUP_TIMEOUT) or proc.poll() is not None:
        proc.kill()
        logs = "\n".join(output[-40:])
        raise RuntimeError(f"trackpipe run did not become ready:\n{logs}")
    return Pipeline(proc, "127.0.0.1", port, data_dir, output)


def stop_pipeline(p: Pipeline) -> tuple[float, int | None, list[int]]:
    """SIGTERM; returns (seconds to exit, exit status, child pids still alive)."""
    children = p.children()
    started = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    try:
        code = p.proc.wait(STOP_LIMIT + 5)
    except subprocess.TimeoutExpired:
        p.proc.kill()
        code = p.proc.wait(5)
    took = time.monotonic() - started
    alive = []
    for pid in children:
        try:
            os.kill(pid, 0)
            alive.append(pid)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return took, code, alive
