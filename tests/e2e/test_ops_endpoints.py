"""End to end: the operator's view of a real `trackpipe run` -- /metrics, /health, /ready on the
edge and the worker, scraped and parsed after real frames went through, and `trackpipe status`
while it runs and after it stopped."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from trackpipe.protocols import gt06
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from .conftest import Pipeline, start_pipeline, stop_pipeline

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _scrape(base: str) -> Samples:
    code, body = _get(base + "/metrics")
    assert code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def _sum(found: Samples, name: str) -> float:
    return sum(v for (n, _), v in found.items() if n == name)


def _run_file(p: Pipeline, name: str, key: str, timeout: float = 20.0) -> dict[str, Any]:
    path = p.data_dir / "run" / f"{name}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = json.loads(path.read_text())
            if info.get(key):
                return info
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} has no {key!r} after {timeout:g}s")


def _wait(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout:g}s (last: {last!r})")


def _send_tcp(port: int, device: Gt06Device) -> tuple[int, int, int]:
    """Login, 3 heartbeats, 4 positions, then one frame with a broken CRC (a dead letter, never
    acked); returns (frames the edge should count, acks the codec says they get, acks read)."""
    now = datetime.now(UTC)
    fixes = [Fix(now - timedelta(seconds=10 - i), 48.85 + i / 1000, 2.35, speed=20.0) for i in range(4)]
    good = [*device.login(), device.heartbeat(), device.heartbeat(), device.heartbeat()]
    good += [device.position(fix) for fix in fixes]
    expected = [reply for f in good if (reply := gt06.CODEC.inspect(f, "tcp").reply)]
    broken = bytearray(device.heartbeat())
    broken[-3] ^= 0xFF
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join([*good, bytes(broken)]))
        replies = b""
        while len(replies) < sum(map(len, expected)):
            chunk = sock.recv(4096)
            if not chunk:
                break
            replies += chunk
    assert replies == b"".join(expected)  # every ack, in frame order
    return len(good), len(expected), len(replies) // 10


def _send_udp(port: int, device: Gt06Device) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(device.login()[0], ("127.0.0.1", port))
        return sock.recvfrom(4096)[0]


def test_metrics_health_ready_and_status_of_a_running_pipeline(tmp_path: Path) -> None:
    p = start_pipeline(tmp_path / "ops")
    stopped = False
    try:
        edge = _run_file(p, "edge", "metrics")["metrics"]
        worker = _run_file(p, "worker", "metrics")["metrics"]
        assert edge.startswith("http://127.0.0.1:") and worker.startswith("http://127.0.0.1:") and edge != worker
        for base in (edge, worker):
            code, body = _get(base + "/health")
            assert (code, json.loads(body)) == (200, {"alive": True})
            _wait(lambda base=base: _get(base + "/ready")[0] == 200, f"{base}/ready 200")
        assert json.loads(_get(worker + "/ready")[1])["tables_recovered"] is True

        tcp_device, udp_device = Gt06Device("359000000000401", "tcp"), Gt06Device("359000000000402", "udp")
        frames, acks, read = _send_tcp(p.port, tcp_device)
        assert frames == 8 and read == acks >= 4
        assert len(_send_udp(p.port, udp_device)) == 10  # the login's ack

        def edge_done() -> Samples | None:
            s = _scrape(edge)
            return s if _sum(s, "trackpipe_edge_deadletters_total") >= 1 else None

        found = _wait(edge_done, "the edge's dead letter counted")
        assert _value(found, "trackpipe_edge_frames_total", protocol="gt06", transport="tcp") == frames
        assert _value(found, "trackpipe_edge_frames_total", protocol="gt06", transport="udp") == 1
        assert _value(found, "trackpipe_edge_acks_total", protocol="gt06", transport="tcp") == acks
        assert _value(found, "trackpipe_edge_acks_total", protocol="gt06", transport="udp") == 1
        assert _value(found, "trackpipe_edge_connections_total", transport="tcp") == 1
        assert _sum(found, "trackpipe_edge_deadletters_total") == 1
        assert _value(found, "trackpipe_edge_publish_latency_seconds_count") == frames + 1 + 1  # + udp + dead letter
        assert _value(found, "trackpipe_edge_kafka_connected") == 1

        def worker_done() -> Samples | None:
            s = _scrape(worker)
            # a batch's tables are inserted one after another: a scrape may fall between them
            stored = all(
                _value(s, "trackpipe_worker_rows_inserted_total", table=table) >= least
                for table, least in (("positions", 4), ("device_status", 2), ("deadletter", 1))
            )
            return s if stored else None

        found = _wait(worker_done, "the worker's rows")
        assert _value(found, "trackpipe_worker_frames_consumed_total") == frames + 1  # every frame published
        assert _value(found, "trackpipe_worker_rows_inserted_total", table="positions") == 4
        assert _value(found, "trackpipe_worker_rows_inserted_total", table="device_status") >= 2
        assert _value(found, "trackpipe_worker_positions_published_total") == 4
        assert _value(found, "trackpipe_worker_insert_seconds_count", table="positions") >= 1
        assert _value(found, "trackpipe_worker_ready") == 1
        lags = {labels: v for (n, labels), v in found.items() if n == "trackpipe_worker_consumer_lag"}
        assert any(dict(labels)["topic"] == "tracker.raw" for labels in lags), lags

        result = p.cli("status", "--json", "--interval", "0.5", timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        view = json.loads(result.stdout)
        assert view["running"] is True
        for name in ("supervisor", "broker", "worker", "edge"):
            assert view["parts"][name]["up"] is True, view["parts"]
        assert view["parts"]["edge"]["ready"] is True and view["parts"]["worker"]["ready"] is True
        online = p.query(
            "SELECT count() AS n FROM device_status FINAL WHERE last_seen >= now64(3) - toIntervalSecond(600)"
        )[0]["n"]
        assert view["devices"]["online"] == online >= 2
        assert view["deadletters_last_hour"]["total"] >= 1
        assert set(view["frames_per_second"]) == {"edge", "worker"}
        text = p.cli("status", "--interval", "0", timeout=60)
        assert text.returncode == 0 and "edge" in text.stdout and "online" in text.stdout, text.stdout

        _, code, alive = stop_pipeline(p)
        stopped = True
        assert code == 0 and not alive
        after = p.cli("status", timeout=30)
        assert after.returncode == 1 and "nothing runs" in after.stdout, after.stdout + after.stderr
    finally:
        if not stopped:
            stop_pipeline(p)
