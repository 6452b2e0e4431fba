"""`trackpipe status`: one screen for the running pipeline.

Reads `<data-dir>/run/*.json` (supervisor, broker, worker, edge: pids, addresses, metrics URLs) to
tell which parts are up (pid alive) and ready (their `/ready`), scrapes the edge's and the
worker's `/metrics` twice `interval` seconds apart for frames/s, open connections and consumer
lag, and asks the store (through the running worker, or CLICKHOUSE_URL) for the devices online
and the dead letters of the last hour.  Every HTTP call has a short timeout and the store
queries a bounded wait, so it never hangs.

Exit status: 0 every part up and ready, 1 nothing runs, 3 some part down or not ready.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .config import Settings

HTTP_TIMEOUT = 2.0  # s per HTTP call (metrics, readiness)
STORE_TIMEOUT = 15.0  # s for the store's answers
EXIT_OK, EXIT_NOTHING_RUNS, EXIT_DEGRADED = 0, 1, 3
PARTS = ("broker", "worker", "edge")

Samples = dict[str, list[tuple[dict[str, str], float]]]  # sample name -> [(labels, value)]


@dataclass
class PartStatus:
    name: str
    up: bool
    pid: int | None = None
    state: str = "down"  # running | restarting | stopped | down
    restarts: int | None = None
    ready: bool | None = None  # from /ready, when the part serves it
    reason: str | None = None  # why not ready
    metrics: str | None = None
    address: str | None = None

    def view(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "name"}


@dataclass
class Status:
    data_dir: str
    parts: dict[str, PartStatus] = field(default_factory=dict)
    frames_per_second: dict[str, float] = field(default_factory=dict)
    open_connections: float | None = None
    consumer_lag: float | None = None
    devices: dict[str, Any] | None = None
    deadletters_last_hour: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return any(p.up for p in self.parts.values())

    @property
    def exit_code(self) -> int:
        if not self.running:
            return EXIT_NOTHING_RUNS
        healthy = all(p.up and p.ready is not False for p in self.parts.values())
        return EXIT_OK if healthy else EXIT_DEGRADED

    def view(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir,
            "running": self.running,
            "parts": {name: part.view() for name, part in self.parts.items()},
            "frames_per_second": self.frames_per_second,
            "open_connections": self.open_connections,
            "consumer_lag": self.consumer_lag,
            "devices": self.devices,
            "deadletters_last_hour": self.deadletters_last_hour,
            "notes": self.notes,
        }


# -- reading what runs -----------------------------------------------------------------------


def pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except PermissionError:
        return True  # someone else's process: alive
    except (OSError, ValueError, TypeError, OverflowError):
        return False
    return True


def read_run_file(settings: Settings, name: str) -> dict[str, Any] | None:
    try:
        info = json.loads((settings.run_dir / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def parts_status(settings: Settings) -> dict[str, PartStatus]:
    """The supervisor (if `trackpipe run` started the parts) and every part it or a run file names."""
    out: dict[str, PartStatus] = {}
    supervisor = read_run_file(settings, "supervisor")
    supervised: dict[str, Any] = {}
    if supervisor is not None:
        up = pid_alive(supervisor.get("pid")) and supervisor.get("state") != "stopped"
        out["supervisor"] = PartStatus("supervisor", up, supervisor.get("pid"), "running" if up else "stopped")
        if up:
            supervised = supervisor.get("parts") or {}
    for name in PARTS:
        info = read_run_file(settings, name)
        entry = supervised.get(name) or {}
        if info is None and not entry and name == "broker":
            continue  # no embedded broker (an external Kafka), or never started
        pid = (info or {}).get("pid") or entry.get("pid")
        up = pid is not None and pid_alive(pid)
        part = PartStatus(name, up, pid if up else None)
        was = entry.get("state")
        part.state = "running" if up else was if was not in (None, "running") else "down"
        part.restarts = entry.get("restarts")
        if info is not None and up:
            part.metrics = info.get("metrics")
            if name == "broker":
                part.address = info.get("bootstrap")
            elif name == "edge" and info.get("port"):
                part.address = f"tcp+udp {info.get('host')}:{info.get('port')}"
        out[name] = part
    return out


def http_get(url: str, timeout: float = HTTP_TIMEOUT) -> tuple[int, bytes]:
    """(status, body) of a GET; an HTTP error status is an answer too; no answer raises OSError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def check_ready(part: PartStatus) -> None:
    if not part.up or not part.metrics:
        return
    try:
        code, body = http_get(part.metrics + "/ready")
    except OSError as exc:
        part.ready, part.reason = False, f"no answer from {part.metrics}: {exc}"
        return
    part.ready = code == 200
    if not part.ready:
        try:
            part.reason = str(json.loads(body).get("reason") or f"HTTP {code}")
        except (ValueError, AttributeError):
            part.reason = f"HTTP {code}"


def scrape(url: str) -> Samples:
    _, body = http_get(url + "/metrics")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def total(samples: Samples, name: str, **match: str) -> float | None:
    """The sum of a sample over the label sets matching `match`; None when it is absent."""
    rows = [v for labels, v in samples.get(name, []) if all(labels.get(k) == want for k, want in match.items())]
    return sum(rows) if rows else None


# -- the store ---------------------------------------------------------------------------


def bounded(work: Callable[[], Any], timeout: float) -> Any:
    """`work()` in a daemon thread, waited for at most `timeout` s (a stuck store cannot hang us)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="status-store")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the store did not answer within {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def store_figures(settings: Settings, status: Status, query: Callable[[str], list[list[Any]]]) -> None:
    window = int(settings.offline_after)
    rows = query(
        f"SELECT countIf(last_seen >= now64(3) - toIntervalSecond({window})) AS online, count() AS seen "
        "FROM device_status FINAL"
    )
    online, seen = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
    status.devices = {"online": online, "seen": seen, "online_window_s": window}
    rows = query(
        "SELECT reason, count() AS n FROM deadletter WHERE time >= now64(3) - toIntervalHour(1) "
        "GROUP BY reason ORDER BY n DESC, reason"
    )
    by_reason = {str(r[0]): int(r[1]) for r in rows}
    status.deadletters_last_hour = {"total": sum(by_reason.values()), "by_reason": by_reason}


def _store_query(settings: Settings) -> Callable[[str], list[list[Any]]] | None:
    """How to ask the store without opening chDB beside a worker that may come back (one
    process per chDB directory): CLICKHOUSE_URL, or the running worker's query endpoint."""
    from .cli import run_query

    worker = read_run_file(settings, "worker")
    if not settings.clickhouse_url and not (worker and worker.get("url") and pid_alive(worker.get("pid"))):
        return None
    return lambda sql: run_query(settings, sql, read_only=True)[1]


# -- putting it together -------------------------------------------------------------------


def collect(settings: Settings, interval: float = 1.0) -> Status:
    status = Status(str(settings.data_dir))
    status.parts = parts_status(settings)
    if not status.running:
        return status
    for part in status.parts.values():
        check_ready(part)
    first: dict[str, tuple[float, Samples]] = {}
    last: dict[str, tuple[float, Samples]] = {}
    for rounds, into in ((0, first), (1, last)):
        if rounds and (interval <= 0 or not first):
            break
        if rounds:
            time.sleep(interval)
        for name in ("edge", "worker"):
            part = status.parts.get(name)
            if part is None or not part.up or not part.metrics:
                continue
            try:
                into[name] = (time.monotonic(), scrape(part.metrics))
            except (OSError, ValueError) as exc:
                status.notes.append(f"{name} metrics: no answer from {part.metrics} ({exc})")
    counters = {"edge": "trackpipe_edge_frames_total", "worker": "trackpipe_worker_frames_consumed_total"}
    for name, (t1, samples) in last.items():
        t0, before = first[name]
        now, then = total(samples, counters[name]), total(before, counters[name])
        if t1 > t0:
            status.frames_per_second[name] = round(max(0.0, (now or 0.0) - (then or 0.0)) / (t1 - t0), 1)
    latest = {**first, **last}
    if "edge" in latest:
        status.open_connections = total(latest["edge"][1], "trackpipe_edge_connections_open")
    if "worker" in latest:
        status.consumer_lag = total(latest["worker"][1], "trackpipe_worker_consumer_lag", topic=settings.topic("raw"))
    query = _store_query(settings)
    if query is None:
        status.notes.append("store not asked: no running worker to ask it through (and no CLICKHOUSE_URL)")
        return status
    try:
        bounded(lambda: store_figures(settings, status, query), STORE_TIMEOUT)
    except Exception as exc:
        status.notes.append(f"store: {exc}")
    return status


def render(status: Status) -> list[str]:
    if not status.running:
        return [f"nothing runs on data dir {status.data_dir} (start it with `trackpipe run`)"]
    lines = [f"trackpipe on data dir {status.data_dir}"]
    for name, part in status.parts.items():
        words = ["up" if part.up else "DOWN", part.state if not part.up else ""]
        if part.pid:
            words.append(f"pid {part.pid}")
        if part.ready is not None:
            words.append("ready" if part.ready else f"NOT READY ({part.reason})")
        if part.address:
            words.append(part.address)
        if part.restarts:
            words.append(f"restarts {part.restarts}")
        if part.metrics:
            words.append(f"metrics {part.metrics}")
        lines.append(f"  {name:<11}" + "  ".join(w for w in words if w))
    rates = status.frames_per_second
    if rates:
        lines.append("  frames/s   " + "  ".join(f"{name} {rate:g}" for name, rate in rates.items()))
    if status.open_connections is not None:
        lines.append(f"  connections {status.open_connections:g} open")
    if status.consumer_lag is not None:
        lines.append(f"  lag        {status.consumer_lag:g} raw frames behind")
    if status.devices is not None:
        d = status.devices
        window = d["online_window_s"]
        lines.append(f"  devices    {d['online']} online of {d['seen']} seen (last frame within {window}s)")
    if status.deadletters_last_hour is not None:
        dl = status.deadletters_last_hour
        reasons = ", ".join(f"{reason} {n}" for reason, n in dl["by_reason"].items())
        lines.append(f"  deadletters {dl['total']} in the last hour" + (f" ({reasons})" if reasons else ""))
    lines.extend(f"  note: {note}" for note in status.notes)
    return lines
