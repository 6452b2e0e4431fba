"""`trackpipe run`: the embedded pipeline as a small, self-healing process tree.

    trackpipe run ─┬─ noida-db           Kafka protocol on 127.0.0.1 (unless KAFKA_BOOTSTRAP_SERVERS)
                   ├─ trackpipe worker   Faust agents + ClickHouse sinks (chDB under <data-dir>/clickhouse)
                   └─ trackpipe edge     TCP+UDP on <host>:<port>

Start order: broker, topics, worker (until it is assigned its partitions and the
store is open), edge (until it listens and Kafka is connected) — then one line
`ready: tcp+udp <host>:<port>`.  A part that fails during start-up stops the
whole pipeline (exit 1, naming it).  Once ready, a part that dies is restarted
in place after a backoff (TRACKPIPE_RESTART_BACKOFF doubling up to
TRACKPIPE_RESTART_BACKOFF_MAX, back to the start once a part ran
TRACKPIPE_RESTART_STABLE seconds): logged with its exit status and counted in
<data-dir>/run/supervisor.json.  The embedded broker comes back on the same
port, so the edge and the worker reconnect to it by themselves; devices see at
most a reconnect.  SIGINT/SIGTERM stop the edge first (no new data), then the
worker, then the broker, all within 10 s.

The embedded broker confirms from memory and loses its last second or so when killed, so with it:
the edge spools what it got confirmed (edge/spool.py) and publishes it again when the broker comes
back with less; the worker is killed when the broker dies (its consumer positions may be past the
log the broker comes back with, and a commit there would skip what the edge publishes again) and
restarted once the broker is back, from the committed offsets the broker kept; and a trimmer
deletes the records of the delete-policy topics the worker is done with (keeping the newest
`broker_keep` per partition), so the broker's memory stays flat.
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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .broker import Trimmer, ensure_topics, evict_group_members, free_port, spawn_embedded, wait_port
from .config import Settings
from .procs import child_preexec, stop

log = logging.getLogger("trackpipe.run")

START_TIMEOUT = 120.0
EVICT_TIMEOUT = 3.0
STOP_ORDER = ("edge", "worker", "broker")
STOP_BUDGET = {"edge": 2.5, "worker": 4.0, "broker": 3.0}  # sums to < 10 s
RUN_FILES = {"edge": "edge.json", "worker": "worker.json", "broker": "broker.json"}


class StartupError(Exception):
    pass


@dataclass
class Backoff:
    """Delay before the next restart: `first`, doubling up to `cap`; back to `first` after a
    run of at least `stable` seconds (a part that crashes once a day is not a crash loop)."""

    first: float = 0.5
    cap: float = 10.0
    stable: float = 30.0
    _next: float = field(default=-1.0, repr=False)

    def delay(self, ran_for: float) -> float:
        if self._next < 0 or ran_for >= self.stable:
            self._next = self.first
        current = self._next
        self._next = min(self._next * 2, self.cap)
        return current


@dataclass
class Part:
    """One supervised child: how to (re)start it, and its restart record."""

    name: str
    spawn: Callable[[], subprocess.Popen]
    backoff: Backoff
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    restart_at: float | None = None  # monotonic time of the pending restart

    def snapshot(self) -> dict[str, object]:
        running = self.proc is not None and self.proc.poll() is None
        return {
            "pid": self.proc.pid if running and self.proc else None,
            "state": "running" if running else "restarting" if self.restart_at is not None else "stopped",
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


def describe_exit(code: int) -> str:
    """`status 1` / `signal SIGKILL` (Popen gives a killed child's status as -signum)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


#: segment.bytes of compacted topics on the embedded broker (it compacts closed segments only):
#: a rule-state changelog segment closes every few thousand records, so it stays near one record
#: per device instead of growing by one per device per batch
EMBEDDED_COMPACT_SEGMENT = 1 << 20


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        if not settings.kafka_bootstrap and not settings.compact_segment_bytes:
            settings = replace(settings, compact_segment_bytes=EMBEDDED_COMPACT_SEGMENT)
        self.settings = settings
        self.parts: dict[str, Part] = {}
        self._stop_requested = False
        self._broker_port = 0
        self.trimmer: Trimmer | None = None
        self._trim_rounds_written = 0

    @property
    def children(self) -> dict[str, subprocess.Popen]:
        return {name: part.proc for name, part in self.parts.items() if part.proc is not None}

    def _backoff(self) -> Backoff:
        s = self.settings
        return Backoff(s.restart_backoff, s.restart_backoff_max, s.restart_stable)

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
        if not s.kafka_bootstrap:  # the embedded broker confirms from memory: the edge spools
            env.setdefault("TRACKPIPE_SPOOL", "1")
        if s.compact_segment_bytes:  # a changelog the worker makes itself gets it too
            env.setdefault("TRACKPIPE_COMPACT_SEGMENT_BYTES", str(s.compact_segment_bytes))
        return env

    def _log_path(self, name: str) -> Path:
        return self.settings.data_dir / "logs" / f"{name}.log"

    def _spawn_child(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log_path = self._log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=child_preexec,
            )
        finally:
            out.close()
        log.info("started %s (pid %d, log %s)", name, proc.pid, log_path)
        return proc

    def _spawn_broker(self) -> subprocess.Popen:
        """noida-db on the same port every time, so clients reconnect to the same address."""
        s = self.settings
        proc = spawn_embedded(s.broker_dir, self._broker_port, log_file=self._log_path("broker"))
        bootstrap = f"127.0.0.1:{self._broker_port}"
        (s.run_dir / "broker.json").write_text(json.dumps({"pid": proc.pid, "bootstrap": bootstrap}))
        log.info("started broker (noida-db, pid %d) on %s", proc.pid, bootstrap)
        return proc

    def _add(self, name: str, spawn: Callable[[], subprocess.Popen]) -> Part:
        part = Part(name, spawn, self._backoff())
        part.proc = spawn()
        part.started_at = time.monotonic()
        self.parts[name] = part
        self._write_state()
        return part

    # -- start-up ---------------------------------------------------------------------

    def _wait_for(self, what: str, check: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
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
                raise StartupError(f"{name} exited with {describe_exit(code)} (see {self._log_path(name)})")

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
        for stale in (*RUN_FILES.values(), "supervisor.json"):
            (s.run_dir / stale).unlink(missing_ok=True)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        code = 0
        try:
            self._start()
            print(f"ready: tcp+udp {s.host}:{s.port}", flush=True)
            self._supervise()
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
            self._broker_port = free_port()
            bootstrap = f"127.0.0.1:{self._broker_port}"
            try:
                self._add("broker", self._spawn_broker)
            except OSError as exc:
                raise StartupError(f"embedded broker: {exc}") from exc
            if not wait_port("127.0.0.1", self._broker_port, 30):
                raise StartupError(f"embedded broker did not listen on {bootstrap} (see {self._log_path('broker')})")
            self._check_children()
        try:
            asyncio.run(ensure_topics(s, bootstrap))
        except RuntimeError as exc:
            raise StartupError(str(exc)) from exc
        env = self._child_env(bootstrap)
        worker = [*me, "worker", "--data-dir", str(s.data_dir)]
        self._add("worker", lambda: self._spawn_child("worker", worker, env))
        self._wait_for("worker", self._worker_ready)
        edge = [*me, "edge", "--data-dir", str(s.data_dir), "--host", s.host, "--port", str(s.port)]
        self._add("edge", lambda: self._spawn_child("edge", edge, env))
        self._wait_for("edge", self._edge_ready)
        if not s.kafka_bootstrap and s.broker_keep > 0:
            self.trimmer = Trimmer(s, bootstrap)
            self.trimmer.start()

    # -- supervision ------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stop_requested:
            now = time.monotonic()
            for part in self.parts.values():
                if part.proc is not None and (code := part.proc.poll()) is not None:
                    self._died(part, code, now)
                if part.proc is None and part.restart_at is not None and now >= part.restart_at:
                    self._restart(part)
            if self.trimmer is not None and self.trimmer.rounds != self._trim_rounds_written:
                self._write_state()
            time.sleep(0.1)

    def _died(self, part: Part, code: int, now: float) -> None:
        ran_for = now - part.started_at
        delay = part.backoff.delay(ran_for)
        part.proc, part.last_exit, part.restart_at = None, code, now + delay
        if part.name == "broker":
            self._stop_worker_with_broker(now)
        if part.name in ("edge", "worker"):  # its run file points at a dead process
            (self.settings.run_dir / RUN_FILES[part.name]).unlink(missing_ok=True)
        log.warning(
            "%s exited with %s after %.1fs; restart %d in %.1fs (see %s)",
            part.name,
            describe_exit(code),
            ran_for,
            part.restarts + 1,
            delay,
            self._log_path(part.name),
        )
        self._write_state()

    def _stop_worker_with_broker(self, now: float) -> None:
        """The embedded broker died: it comes back with the state it last wrote, maybe short of
        offsets the worker consumed and committed.  The worker is killed now (a kill -9 loses
        nothing: it acks only what it stored) and restarts after the broker, from what it kept."""
        worker = self.parts.get("worker")
        if worker is None or worker.proc is None or worker.proc.poll() is not None:
            return
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.proc.wait(5)
        worker.proc, worker.last_exit, worker.restart_at = None, worker.proc.returncode, now
        (self.settings.run_dir / RUN_FILES["worker"]).unlink(missing_ok=True)
        log.warning("worker stopped with the broker; it restarts once the broker is back")

    def _broker_up(self) -> bool:
        broker = self.parts.get("broker")
        if broker is None:
            return True  # an external Kafka: not ours to wait for
        return broker.proc is not None and broker.proc.poll() is None and wait_port("127.0.0.1", self._broker_port, 0)

    def _restart(self, part: Part) -> None:
        if part.name == "worker" and not self._broker_up():
            part.restart_at = time.monotonic() + 0.2  # after the broker
            return
        part.restarts += 1
        part.restart_at = None
        if part.name == "worker" and not self.settings.kafka_bootstrap:
            self._evict_dead_worker()
        try:
            part.proc = part.spawn()
        except OSError as exc:
            delay = part.backoff.delay(0.0)
            part.restart_at = time.monotonic() + delay
            log.error("%s could not be restarted (%s); next try in %.1fs", part.name, exc, delay)
        else:
            part.started_at = time.monotonic()
            log.warning("restarted %s (pid %d), restart count %d", part.name, part.proc.pid, part.restarts)
        self._write_state()

    def _evict_dead_worker(self) -> None:
        """The embedded broker never expires a member that vanished (kill -9) and keeps it as the
        group's leader: remove it, or the new worker waits for a rebalance that never ends.
        (A real Kafka expires it after the session timeout; this runs for the embedded one only.)"""
        import asyncio

        group = self.settings.app_id
        try:
            evicted = asyncio.run(evict_group_members(f"127.0.0.1:{self._broker_port}", group, EVICT_TIMEOUT))
        except Exception as exc:  # broker down too: its restart forgets the group anyway
            log.warning("could not evict the dead worker from group %s: %r", group, exc)
            return
        if evicted:
            log.info("evicted %d dead member(s) from consumer group %s", len(evicted), group)

    def _write_state(self, state: str = "running") -> None:
        """<data-dir>/run/supervisor.json: every part's pid, state and restart count."""
        path = self.settings.run_dir / "supervisor.json"
        body = {
            "pid": os.getpid(),
            "state": state,
            "parts": {name: part.snapshot() for name, part in self.parts.items()},
        }
        if self.trimmer is not None:
            body["trimmed"] = self.trimmer.trimmed
            self._trim_rounds_written = self.trimmer.rounds
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(path)

    # -- shutdown ---------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Edge first (no new data), then the worker (commits), then the broker: within 10 s."""
        if self.trimmer is not None:
            self.trimmer.stop()
        for name in STOP_ORDER:
            part = self.parts.get(name)
            if part is not None and part.proc is not None:
                code = stop(part.proc, STOP_BUDGET[name])
                log.info("%s stopped (status %s)", name, code)
            if part is not None:
                part.restart_at = None
        for stale in RUN_FILES.values():
            (self.settings.run_dir / stale).unlink(missing_ok=True)
        if self.parts:
            self._write_state("stopped")
