"""One edge as several processes on one port: `trackpipe edge --processes N`.

A Python edge is one event loop on one core, and one process holds at most as many connections
as its file-descriptor limit allows.  With N > 1 the `trackpipe edge` process is a small parent:
it starts N edge processes (slots 0..N-1) that all listen on the same TCP and UDP port with
SO_REUSEPORT, so the kernel spreads new connections (and UDP sources, by their address) over
them, and restarts one that died after a backoff (logged, counted).  Each slot is a whole edge
of its own: its edge id `<edge id>.<slot>`, its spool `<data-dir>/spool-<slot>` (spools of slots
an earlier run had and this one has not are taken over: `Settings.orphan_spools`), its metrics
endpoint (`TRACKPIPE_EDGE_METRICS_PORT` + slot when that is fixed), its run file
`run/edge-<slot>.json`.  Once every slot listens, the parent writes `run/edge.json` (its own pid,
the port, and each slot's pid and metrics URL) and prints `edge ready`.

The parent holds no connection: killing it (even with -9) takes its slots with it (they die with
their parent), and a supervisor starts the whole edge again.  A slot that dies loses nothing it
acknowledged (its spool, as for a single edge); its devices reconnect to the slots still
listening.  A UDP source may move to another slot when the set of slots changes (as behind a
balancer when a pod restarts): a protocol whose datagrams carry no device id re-learns it from
the device's next login.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from trackpipe.config import Settings
from trackpipe.procs import child_preexec, stop
from trackpipe.supervisor import Backoff, describe_exit

log = logging.getLogger("trackpipe.edge.group")

START_TIMEOUT = 60.0
STOP_TIMEOUT = 2.0  # s each slot gets to stop (all at once), then SIGKILL


@dataclass
class Slot:
    index: int
    backoff: Backoff = field(default_factory=Backoff)
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None


def reserve_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound (not listening) with SO_REUSEPORT to `port` (0: a free one), held while
    the slots bind the same port, so that a free port chosen here is not taken meanwhile."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class EdgeGroup:
    def __init__(self, settings: Settings) -> None:
        if settings.edge_processes < 2:
            raise ValueError(f"an edge group needs 2 or more processes, got {settings.edge_processes}")
        self.settings = settings
        self.slots = [Slot(i) for i in range(settings.edge_processes)]
        self.port = settings.port
        self._stopping = False

    def run_file(self, slot: int | None = None) -> Path:
        return self.settings.run_dir / ("edge.json" if slot is None else f"edge-{slot}.json")

    def _env(self, slot: int) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            TRACKPIPE_EDGE_SLOT=str(slot),
            TRACKPIPE_EDGE_PROCESSES=str(s.edge_processes),
            TRACKPIPE_EDGE_ID=f"{s.edge_id}.{slot}",
            TRACKPIPE_DATA_DIR=str(s.data_dir.resolve()),
            TRACKPIPE_HOST=s.host,
            TRACKPIPE_PORT=str(self.port),
        )
        if s.edge_metrics_port > 0:
            env["TRACKPIPE_EDGE_METRICS_PORT"] = str(s.edge_metrics_port + slot)
        return env

    def _spawn(self, slot: Slot) -> None:
        self.run_file(slot.index).unlink(missing_ok=True)
        argv = [sys.executable, "-m", "trackpipe.cli", "edge"]
        slot.proc = subprocess.Popen(
            argv, env=self._env(slot.index), stdin=subprocess.DEVNULL, preexec_fn=child_preexec
        )
        slot.started_at, slot.restart_at = time.monotonic(), None
        log.info("edge slot %d started (pid %d)", slot.index, slot.proc.pid)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            reserved = reserve_port(self.settings.host, self.settings.port)
        except OSError as exc:
            log.error("edge: cannot bind %s:%s: %s", self.settings.host, self.settings.port, exc)
            return 1
        try:
            self.port = reserved.getsockname()[1]
            for slot in self.slots:
                self._spawn(slot)
            if not self._wait_ready():
                return 1
        finally:
            reserved.close()
        self._write_run_file()
        print(f"edge ready: tcp+udp {self.settings.host}:{self.port} ({len(self.slots)} processes)", flush=True)
        try:
            self._supervise()
        finally:
            self._stop_all()
        return 0

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and not self._stopping:
            for slot in self.slots:
                if slot.proc is not None and (code := slot.proc.poll()) is not None:
                    log.error("edge slot %d exited with %s while starting", slot.index, describe_exit(code))
                    self._stop_all()
                    return False
            if all(self.run_file(slot.index).exists() for slot in self.slots):
                return True
            time.sleep(0.05)
        log.error("edge: not every slot was ready within %.0fs", START_TIMEOUT)
        self._stop_all()
        return False

    def _write_run_file(self) -> None:
        slots = []
        for slot in self.slots:
            try:
                own = orjson.loads(self.run_file(slot.index).read_bytes())
            except (OSError, orjson.JSONDecodeError):
                own = {}
            slots.append(
                {
                    "slot": slot.index,
                    "pid": slot.proc.pid if slot.proc is not None and slot.proc.poll() is None else None,
                    "metrics": own.get("metrics"),
                    "restarts": slot.restarts,
                }
            )
        body = {"pid": os.getpid(), "host": self.settings.host, "port": self.port, "metrics": None, "slots": slots}
        body["metrics"] = next((s["metrics"] for s in slots if s["metrics"]), None)
        tmp = self.run_file().with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(body))
        tmp.replace(self.run_file())

    def _supervise(self) -> None:
        pending_file = False
        while not self._stopping:
            now = time.monotonic()
            for slot in self.slots:
                if slot.proc is not None and (code := slot.proc.poll()) is not None:
                    delay = slot.backoff.delay(now - slot.started_at)
                    slot.proc, slot.restart_at = None, now + delay
                    log.warning(
                        "edge slot %d exited with %s after %.1fs; restart %d in %.1fs",
                        slot.index,
                        describe_exit(code),
                        now - slot.started_at,
                        slot.restarts + 1,
                        delay,
                    )
                if slot.proc is None and slot.restart_at is not None and now >= slot.restart_at:
                    slot.restarts += 1
                    self._spawn(slot)
                    pending_file = True
            if pending_file and all(self.run_file(s.index).exists() for s in self.slots if s.proc is not None):
                self._write_run_file()
                pending_file = False
            time.sleep(0.1)

    def _stop_all(self) -> None:
        running = [slot.proc for slot in self.slots if slot.proc is not None and slot.proc.poll() is None]
        for proc in running:  # all at once: each slot's own stop (spool closed) runs in parallel
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in running:
            stop(proc, STOP_TIMEOUT)
        for slot in self.slots:
            slot.proc = None
        self.run_file().unlink(missing_ok=True)
