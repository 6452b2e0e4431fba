"""`trackpipe run`: the embedded pipeline as a small process tree.

    trackpipe run ─┬─ noida-db           Kafka protocol on 127.0.0.1 (unless KAFKA_BOOTSTRAP_SERVERS)
                   ├─ trackpipe worker   Faust agents + ClickHouse sinks (chDB under <data-dir>/clickhouse)
                   └─ trackpipe edge     TCP+UDP on <host>:<port>

Start order: broker, topics, worker (until it is assigned its partitions and the
store is open), edge (until it listens and Kafka is connected) — then one line
`ready: tcp+udp <host>:<port>`.  SIGINT/SIGTERM stop the edge first (no new data),
then the worker, then the broker, all within 10 s; a child that dies takes the
whole pipeline down with a message naming it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request

from .broker import ensure_topics, start_embedded
from .config import Settings
from .procs import child_preexec, stop

log = logging.getLogger("trackpipe.run")

START_TIMEOUT = 120.0


class StartupError(Exception):
    pass


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: dict[str, subprocess.Popen] = {}
        self._stop_requested = False

    def _child_env(self, bootstrap: str) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            TRACKPIPE_DATA_DIR=str(s.data_dir.resolve()),
            TRACKPIPE_HOST=s.host,
            TRACKPIPE_PORT=str(s.port),
            TRACKPIPE_PARTITIONS=str(s.partitions),
        )
        env.setdefault("TRACKPIPE_SESSION_TIMEOUT", "10")
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log_path = self.settings.data_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=child_preexec
        )
        out.close()
        self.children[name] = proc
        log.info("started %s (pid %d, log %s)", name, proc.pid, log_path)
        return proc

    def _wait_for(self, what: str, check, timeout: float = START_TIMEOUT) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stop_requested:
                raise StartupError("stopped during start-up")
            self._check_children()
            if check():
                return
            time.sleep(0.1)
        raise StartupError(f"{what} not ready after {timeout:.0f}s (logs in {self.settings.data_dir / 'logs'})")

    def _check_children(self) -> None:
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None:
                raise StartupError(
                    f"{name} exited with status {code} (see {self.settings.data_dir / 'logs' / (name + '.log')})"
                )

    def _worker_ready(self) -> bool:
        try:
            info = json.loads((self.settings.run_dir / "worker.json").read_text())
            with urllib.request.urlopen(info["url"] + "/ready", timeout=2) as response:
                return response.status == 200
        except (OSError, ValueError, KeyError):
            return False

    def _edge_ready(self) -> bool:
        return (self.settings.run_dir / "edge.json").exists()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop_requested = True

    def run(self) -> int:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        s.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("edge.json", "worker.json", "broker.json"):
            (s.run_dir / stale).unlink(missing_ok=True)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        code = 0
        try:
            self._start()
            print(f"ready: tcp+udp {s.host}:{s.port}", flush=True)
            while not self._stop_requested:
                self._check_children()
                time.sleep(0.2)
        except StartupError as exc:
            print(f"trackpipe: error: {exc}", file=sys.stderr, flush=True)
            code = 1
        finally:
            self._shutdown()
        return code

    def _start(self) -> None:
        import asyncio

        s = self.settings
        me = [sys.executable, "-m", "trackpipe.cli"]
        bootstrap = s.kafka_bootstrap
        if not bootstrap:
            try:
                proc, bootstrap = start_embedded(s.broker_dir, log_file=s.data_dir / "logs" / "broker.log")
            except (OSError, RuntimeError) as exc:
                raise StartupError(f"embedded broker: {exc}") from exc
            self.children["broker"] = proc
            (s.run_dir / "broker.json").write_text(json.dumps({"pid": proc.pid, "bootstrap": bootstrap}))
            log.info("embedded broker (noida-db) on %s", bootstrap)
        try:
            asyncio.run(ensure_topics(s, bootstrap))
        except RuntimeError as exc:
            raise StartupError(str(exc)) from exc
        env = self._child_env(bootstrap)
        self._spawn("worker", [*me, "worker", "--data-dir", str(s.data_dir)], env)
        self._wait_for("worker", self._worker_ready)
        self._spawn("edge", [*me, "edge", "--data-dir", str(s.data_dir), "--host", s.host, "--port", str(s.port)], env)
        self._wait_for("edge", self._edge_ready)

    def _shutdown(self) -> None:
        """Edge first (no new data), then the worker (commits), then the broker: within 10 s."""
        budget = {"edge": 2.5, "worker": 4.0, "broker": 3.0}
        for name in ("edge", "worker", "broker"):
            proc = self.children.get(name)
            if proc is not None:
                code = stop(proc, budget[name])
                log.info("%s stopped (status %s)", name, code)
        for stale in ("edge.json", "worker.json", "broker.json"):
            (self.settings.run_dir / stale).unlink(missing_ok=True)
