"""The operator's view, unit level: the edge's scrape-time collector, the worker's metrics, the ops
server's three endpoints, run files, and `trackpipe status` when nothing runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import TopicPartition as TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from trackpipe.edge.server import Edge, TcpConnection, UdpEndpoint
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from tests.edge.test_limits import _Transport  # the same fake transport as the edge's own tests
from trackpipe import metrics, status
from trackpipe.bench_edge import NullPublisher
from trackpipe.config import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(registry: CollectorRegistry) -> Samples:
    """Every sample of a scrape, parsed back from the Prometheus text format."""
    text = generate_latest(registry).decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


class _Publisher(NullPublisher):
    connected = True
    spool = None


class _Datagrams(asyncio.DatagramTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5023) if name == "sockname" else default

    def sendto(self, data: bytes, addr: Any = None) -> None:  # type: ignore[override]
        self.sent.append(bytes(data))


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_latency_histogram_buckets_are_cumulative() -> None:
    hist = metrics.LatencyHistogram((0.01, 0.1, 1.0))
    for v in (0.005, 0.01, 0.05, 0.5, 3.0):
        hist.observe(v)
    assert hist.cumulative() == [("0.01", 2.0), ("0.1", 3.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert hist.count == 5 and abs(hist.sum - 3.565) < 1e-9


def test_edge_counters_move_with_frames_acks_dead_letters_and_closes() -> None:
    async def scenario() -> tuple[Samples, Samples, _Transport]:
        edge = Edge(Settings(), _Publisher())  # type: ignore[arg-type]
        registry = metrics.edge_registry(edge, edge.publisher)
        before = samples(registry)
        device = Gt06Device("359000000000011", "tcp")
        conn = TcpConnection(edge)
        transport = _Transport()
        conn.connection_made(transport)
        frames = [*device.login(), device.heartbeat(), device.heartbeat(), device.heartbeat()]
        broken = bytearray(device.heartbeat())
        broken[-3] ^= 0xFF  # CRC no longer matches: a dead letter, no ack
        conn.data_received(b"".join(frames) + bytes(broken))
        await _settle()
        udp = UdpEndpoint(edge)
        udp.connection_made(_Datagrams())
        udp_device = Gt06Device("359000000000012", "udp")
        udp.datagram_received(udp_device.login()[0], ("192.0.2.8", 41000))
        await _settle()
        after_open = samples(registry)
        conn.close("idle timeout: idle for 901s")
        conn.connection_lost(None)
        return before, after_open | {k: v for k, v in samples(registry).items() if "closed" in k[0]}, transport

    before, after, transport = asyncio.run(scenario())
    assert value(before, "trackpipe_edge_frames_total", protocol="gt06", transport="tcp") == 0
    assert value(after, "trackpipe_edge_frames_total", protocol="gt06", transport="tcp") == 4
    assert value(after, "trackpipe_edge_frames_total", protocol="gt06", transport="udp") == 1
    assert value(after, "trackpipe_edge_acks_total", protocol="gt06", transport="tcp") == 4
    assert value(after, "trackpipe_edge_acks_total", protocol="gt06", transport="udp") == 1
    assert len(transport.written) == 4 * 10  # four 10-byte GT06 acks, none for the broken frame
    frame_bytes = value(after, "trackpipe_edge_frame_bytes_total", protocol="gt06", transport="tcp")
    assert frame_bytes == len(b"".join([*Gt06Device("359000000000011").login()])) + 3 * 15
    assert value(after, "trackpipe_edge_connections_total", transport="tcp") == 1
    assert value(after, "trackpipe_edge_connections_open", transport="tcp") == 1
    dead = {k[1]: v for k, v in after.items() if k[0] == "trackpipe_edge_deadletters_total"}
    assert sum(dead.values()) == 1, dead
    assert value(after, "trackpipe_edge_connections_closed_total", reason="idle timeout") == 1
    assert value(after, "trackpipe_edge_publish_latency_seconds_count") == 4 + 1 + 1  # frames and the dead letter
    assert value(after, "trackpipe_edge_received_bytes_total", transport="udp") == 18
    assert value(after, "trackpipe_edge_kafka_connected") == 1


def test_worker_metrics_count_what_is_published_and_stored() -> None:
    w = metrics.WorkerMetrics()
    w.batch(3)
    w.published("positions", [(b"a", {}), (b"b", {})])
    w.published("events", [(b"a", {"type": "alarm"}), (b"a", {"type": "deviceOnline"}), (b"b", {"type": "alarm"})])
    w.published(
        "deadletter",
        [
            (b"", {"stage": "decode", "reason": "bad checksum", "protocol": "gt06"}),
            (b"", {"stage": "filter", "reason": "zero position", "protocol": "gt06"}),
        ],
    )
    w.inserted("positions", 2, 0.02)
    found = samples(w.registry)
    assert value(found, "trackpipe_worker_frames_consumed_total") == 3
    assert value(found, "trackpipe_worker_batch_frames_count") == 1
    assert value(found, "trackpipe_worker_positions_published_total") == 2
    assert value(found, "trackpipe_worker_events_published_total", type="alarm") == 2
    assert value(found, "trackpipe_worker_events_published_total", type="deviceOnline") == 1
    assert value(found, "trackpipe_worker_decode_errors_total", protocol="gt06") == 1  # the filter's is not one
    assert value(found, "trackpipe_worker_deadletters_total", stage="filter", reason="zero position") == 1
    assert value(found, "trackpipe_worker_rows_inserted_total", table="positions") == 2
    assert value(found, "trackpipe_worker_insert_seconds_bucket", table="positions", le="0.025") == 1
    assert value(found, "trackpipe_worker_insert_seconds_bucket", table="positions", le="0.01") == 0


def test_worker_lag_is_highwater_minus_position_per_assigned_partition() -> None:
    class Consumer:
        def __init__(self, assigned: dict[Any, tuple[int, int]]) -> None:
            self.assigned = assigned

        def assignment(self) -> set[Any]:
            return set(self.assigned)

        def highwater(self, tp: Any) -> int:
            return self.assigned[tp][0]

        async def position(self, tp: Any) -> int:
            return self.assigned[tp][1]

    w = metrics.WorkerMetrics()
    asyncio.run(w.refresh_lag(Consumer({TP("raw", 0): (120, 100), TP("raw", 1): (7, 7)})))
    found = samples(w.registry)
    assert value(found, "trackpipe_worker_consumer_lag", topic="raw", partition="0") == 20
    assert value(found, "trackpipe_worker_consumer_lag", topic="raw", partition="1") == 0
    asyncio.run(w.refresh_lag(Consumer({TP("raw", 1): (9, 4)})))  # partition 0 revoked
    found = samples(w.registry)
    assert ("trackpipe_worker_consumer_lag", (("partition", "0"), ("topic", "raw"))) not in found
    assert value(found, "trackpipe_worker_consumer_lag", topic="raw", partition="1") == 5


def test_label_values_are_bounded() -> None:
    seen: set[str] = set()
    labels = [metrics.bounded(seen, f"reason {i}", limit=3) for i in range(5)]
    assert labels == ["reason 0", "reason 1", "reason 2", "other", "other"]
    assert metrics.bounded(seen, "reason 1", limit=3) == "reason 1" and metrics.bounded(seen, None) == "none"


def test_ops_server_health_ready_and_metrics() -> None:
    async def scenario() -> list[tuple[int, Any]]:
        w = metrics.WorkerMetrics()
        w.batch(5)
        state = {"ready": False}
        ops = await metrics.serve_ops(
            "127.0.0.1",
            0,
            lambda: state["ready"],
            w.registry,
            detail=lambda ok: {} if ok else {"reason": "tables recovering"},
        )
        got: list[tuple[int, Any]] = []
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                for path in ("/health", "/ready", "/ready", "/metrics"):
                    if len(got) == 2:
                        state["ready"] = True
                    async with http.get(ops.url + path) as response:
                        body = await response.text()
                        got.append((response.status, body if path == "/metrics" else json.loads(body)))
        finally:
            await ops.stop()
        assert ops.port > 0 and ops.url == f"http://127.0.0.1:{ops.port}"
        return got

    got = asyncio.run(scenario())
    assert got[0] == (200, {"alive": True})
    assert got[1] == (503, {"ready": False, "reason": "tables recovering"})
    assert got[2] == (200, {"ready": True})
    status_code, text = got[3]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert status_code == 200 and families["trackpipe_worker_frames_consumed"].samples[0].value == 5


def test_ops_server_on_a_taken_port_is_a_clear_error() -> None:
    async def scenario() -> str:
        first = await metrics.serve_ops("127.0.0.1", 0, lambda: True, CollectorRegistry())
        try:
            await metrics.serve_ops("127.0.0.1", first.port, lambda: True, CollectorRegistry())
        except OSError as exc:
            return str(exc)
        finally:
            await first.stop()
        return "no error"

    assert "metrics endpoint cannot listen on 127.0.0.1:" in asyncio.run(scenario())


def test_run_file_fields_merge_and_a_stale_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "run" / "worker.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"pid": 999999999, "url": "http://127.0.0.1:1"}))  # an earlier process's
    metrics.update_run_file(path, metrics="http://127.0.0.1:2")
    assert json.loads(path.read_text()) == {"pid": os.getpid(), "metrics": "http://127.0.0.1:2"}
    metrics.update_run_file(path, url="http://127.0.0.1:3")
    assert json.loads(path.read_text()) == {
        "pid": os.getpid(),
        "metrics": "http://127.0.0.1:2",
        "url": "http://127.0.0.1:3",
    }
    assert [p.name for p in path.parent.iterdir()] == ["worker.json"]  # no temporary file left


def test_status_says_nothing_runs(tmp_path: Path) -> None:
    settings = Settings.from_env(data_dir=tmp_path)
    assert status.collect(settings, interval=0).exit_code == status.EXIT_NOTHING_RUNS
    settings.run_dir.mkdir()
    dead = {"pid": 999999999, "state": "running", "parts": {"edge": {"pid": 999999998, "state": "running"}}}
    (settings.run_dir / "supervisor.json").write_text(json.dumps(dead))
    (settings.run_dir / "edge.json").write_text(json.dumps({"pid": 999999998, "metrics": "http://127.0.0.1:9"}))
    found = status.collect(settings, interval=0)
    assert found.exit_code == status.EXIT_NOTHING_RUNS and not found.parts["edge"].up
    assert "nothing runs" in status.render(found)[0]


def test_status_scrapes_a_live_edge(tmp_path: Path) -> None:
    """A live process (this one) advertising an ops server: up, ready, its counters read."""

    async def scenario() -> status.Status:
        edge = Edge(Settings(), _Publisher())  # type: ignore[arg-type]
        edge.stats.open_connections = 3
        edge.stats.tally("gt06", "tcp")[0] = 10
        ops = await metrics.serve_ops("127.0.0.1", 0, lambda: True, metrics.edge_registry(edge, edge.publisher))
        settings = Settings.from_env(data_dir=tmp_path)
        metrics.update_run_file(settings.run_dir / "edge.json", metrics=ops.url, host="127.0.0.1", port=5023)

        async def traffic() -> None:
            await asyncio.sleep(0.1)
            edge.stats.tally("gt06", "tcp")[0] += 5

        try:
            task = asyncio.create_task(traffic())
            found = await asyncio.to_thread(status.collect, settings, 0.4)
            await task
        finally:
            with contextlib.suppress(Exception):
                await ops.stop()
        return found

    found = asyncio.run(scenario())
    edge = found.parts["edge"]
    assert edge.up and edge.ready and edge.address == "tcp+udp 127.0.0.1:5023"
    assert found.open_connections == 3
    assert 5 / 0.4 * 0.5 < found.frames_per_second["edge"] <= 5 / 0.4 * 1.05
    assert not found.parts["worker"].up and found.exit_code == status.EXIT_DEGRADED
