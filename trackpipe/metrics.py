"""The operator's view of one process: Prometheus metrics, `/health` and `/ready`.

Every metric of the edge and of the worker is defined here, each process in its own
`CollectorRegistry` (not prometheus_client's global one: a test makes as many fresh ones as it
likes, and nothing a library registers globally leaks into our output).

The edge counts on its hot path (~20k frames/s) with plain ints (`EdgeStats`, per-protocol
`Tally` lists, `LatencyHistogram`); `EdgeCollector` turns them into metric families only when
Prometheus scrapes.  The worker counts per batch, so it uses prometheus_client's own objects
(`WorkerMetrics`).

`serve_ops` is a small aiohttp server: `GET /metrics` (Prometheus text format), `GET /health`
(200 while the event loop runs) and `GET /ready` (200, or 503 with a JSON body saying why not).
Each part writes its URL into its run file (`<data-dir>/run/edge.json`, `worker.json`) as
`"metrics"`, which `trackpipe status` and the tests read.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from aiohttp import web

    from trackpipe.edge.publisher import Publisher
    from trackpipe.edge.server import Edge

log = logging.getLogger("trackpipe.metrics")
disable_created_metrics()  # no `_created` series beside every counter (process-wide; ours is the only use)

#: seconds: Kafka confirms in a few ms; the publish timeout (15 s) is the last bucket that matters
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
INSERT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
MAX_LABEL_VALUES = 64  # distinct values per label beyond which a label reads "other" (bounded series)
SCRAPE_REFRESH_TIMEOUT = 2.0  # s a scrape waits for values that must be fetched (consumer positions)


class LatencyHistogram:
    """A histogram kept as plain numbers: `observe` is one bisect and two additions."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Iterable[float] = PUBLISH_BUCKETS) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus buckets: (upper bound, observations at or below it), ending with +Inf."""
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((_float_label(bound), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


def _float_label(value: float) -> str:
    return repr(float(value))


class Tally(list):  # type: ignore[type-arg]
    """One protocol over one transport at the edge: [frames, frame bytes, acks written]."""

    FRAMES, BYTES, ACKS = 0, 1, 2

    def __init__(self) -> None:
        super().__init__((0, 0, 0))


def bounded(seen: set[str], value: str | None, limit: int = MAX_LABEL_VALUES) -> str:
    """`value` as a label value, or "other" once `limit` distinct values were seen (a label set
    that could grow without bound -- a free-text reason -- would grow Prometheus' memory)."""
    label = value or "none"
    if label in seen:
        return label
    if len(seen) >= limit:
        return "other"
    seen.add(label)
    return label


# -- edge ------------------------------------------------------------------------------------


class EdgeCollector(Collector):
    """Reads the edge's counters at scrape time (nothing but int increments on the hot path)."""

    def __init__(self, edge: Edge, publisher: Publisher) -> None:
        self.edge = edge
        self.publisher = publisher

    def collect(self) -> Iterator[Metric]:
        stats = self.edge.stats
        yield _gauge("trackpipe_edge_connections_open", "TCP connections open", [(("tcp",), stats.open_connections)])
        yield _counter("trackpipe_edge_connections", "TCP connections accepted", [(("tcp",), stats.connections)])
        closed = CounterMetricFamily(
            "trackpipe_edge_connections_closed", "TCP connections the edge closed, by reason", labels=["reason"]
        )
        for reason, n in sorted(stats.closed.items()):
            closed.add_metric([reason], n)
        yield closed
        tallies = sorted(stats.tallies.items())
        for name, doc, index in (
            ("trackpipe_edge_frames", "frames accepted and published to Kafka", Tally.FRAMES),
            ("trackpipe_edge_frame_bytes", "bytes of the frames accepted", Tally.BYTES),
            ("trackpipe_edge_acks", "replies written to devices (each after Kafka confirmed its frame)", Tally.ACKS),
        ):
            family = CounterMetricFamily(name, doc, labels=["protocol", "transport"])
            for (protocol, transport), tally in tallies:
                family.add_metric([protocol, transport], tally[index])
            yield family
        udp = stats.udp_bytes
        yield _counter(
            "trackpipe_edge_received_bytes",
            "bytes read from sockets (frames or not)",
            [(("tcp",), stats.bytes_in - udp), (("udp",), udp)],
        )
        yield _counter("trackpipe_edge_datagrams", "UDP datagrams received", [((), stats.datagrams)], labels=())
        yield _counter(
            "trackpipe_edge_datagrams_refused",
            "UDP datagrams dropped before decoding, by why",
            [(("overload",), stats.datagrams_dropped), (("source_rate",), stats.datagrams_shed)],
            labels=("why",),
        )
        dead = CounterMetricFamily(
            "trackpipe_edge_deadletters", "dead letters the edge published, by reason", labels=["reason"]
        )
        for reason, n in sorted(stats.deadletter_reasons.items()):
            dead.add_metric([reason], n)
        yield dead
        yield _counter(
            "trackpipe_edge_deadletters_suppressed",
            "dead letters over a bound: counted, not published",
            [((), stats.deadletters_suppressed)],
            labels=(),
        )
        hist = stats.publish_latency
        family = HistogramMetricFamily(
            "trackpipe_edge_publish_latency_seconds",
            "from a record's hand-off to the producer to Kafka's confirmation",
            buckets=hist.cumulative(),
            sum_value=hist.sum,
        )
        yield family
        yield _gauge(
            "trackpipe_edge_kafka_connected",
            "1 while the producer is connected and its last publish did not fail",
            [((), 1 if self.publisher.connected else 0)],
            labels=(),
        )
        spool = self.publisher.spool
        if spool is not None:
            doc = "confirmed bytes spooled until the worker stored them"
            yield _gauge("trackpipe_edge_spool_bytes", doc, [((), spool.bytes)], labels=())


def _counter(
    name: str, doc: str, values: list[tuple[tuple[str, ...], float]], labels: tuple[str, ...] = ("transport",)
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


def _gauge(
    name: str, doc: str, values: list[tuple[tuple[str, ...], float]], labels: tuple[str, ...] = ("transport",)
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family


def edge_registry(edge: Edge, publisher: Publisher) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EdgeCollector(edge, publisher))
    return registry


# -- worker ----------------------------------------------------------------------------------


class WorkerMetrics:
    """The worker's metrics in a registry of their own; the stream code calls these per batch."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.frames = Counter("trackpipe_worker_frames_consumed", "raw frames consumed from Kafka", registry=r)
        self.batch_size = Histogram(
            "trackpipe_worker_batch_frames", "raw frames per decode batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.decode_errors = Counter(
            "trackpipe_worker_decode_errors",
            "frames the worker could not decode (dead letters of stage decode), by protocol",
            ["protocol"],
            registry=r,
        )
        self.deadletters = Counter(
            "trackpipe_worker_deadletters",
            "dead letters the worker published, by stage and reason",
            ["stage", "reason"],
            registry=r,
        )
        self.insert_seconds = Histogram(
            "trackpipe_worker_insert_seconds", "one INSERT's duration", ["table"], buckets=INSERT_BUCKETS, registry=r
        )
        self.rows = Counter("trackpipe_worker_rows_inserted", "rows stored, by table", ["table"], registry=r)
        self.events = Counter("trackpipe_worker_events_published", "events published, by type", ["type"], registry=r)
        self.positions = Counter("trackpipe_worker_positions_published", "positions published", registry=r)
        self.lag = Gauge(
            "trackpipe_worker_consumer_lag",
            "records behind the partition's end (highwater - the consumer's position)",
            ["topic", "partition"],
            registry=r,
        )
        self.ready = Gauge("trackpipe_worker_ready", "1 while the worker is serving (assigned, recovered)", registry=r)
        self._seen: dict[str, set[str]] = {}

    def _label(self, what: str, value: Any) -> str:
        return bounded(self._seen.setdefault(what, set()), None if value is None else str(value))

    def batch(self, frames: int) -> None:
        self.frames.inc(frames)
        self.batch_size.observe(frames)

    def published(self, kind: str, records: Iterable[tuple[bytes, Mapping[str, Any]]]) -> None:
        """What `_publish` hands to Kafka: dead letters, events, positions."""
        if kind == "positions":
            self.positions.inc(sum(1 for _ in records))
        elif kind == "events":
            for _, row in records:
                self.events.labels(self._label("type", row.get("type"))).inc()
        elif kind == "deadletter":
            for _, row in records:
                stage = self._label("stage", row.get("stage"))
                self.deadletters.labels(stage, self._label("reason", row.get("reason"))).inc()
                if stage == "decode":
                    self.decode_errors.labels(self._label("protocol", row.get("protocol"))).inc()

    def inserted(self, table: str, rows: int, seconds: float) -> None:
        self.insert_seconds.labels(table).observe(seconds)
        self.rows.labels(table).inc(rows)

    async def refresh_lag(self, consumer: Any) -> None:
        """Consumer lag of every assigned partition (a Faust consumer: `position` is asynchronous)."""
        lags: dict[tuple[str, str], float] = {}
        for tp in sorted(consumer.assignment()):
            highwater = consumer.highwater(tp)
            position = await consumer.position(tp)
            if highwater is None or position is None:
                continue
            lags[(tp.topic, str(tp.partition))] = max(0, highwater - position)
        self.lag.clear()  # partitions revoked since the last scrape disappear
        for (topic, partition), lag in lags.items():
            self.lag.labels(topic, partition).set(lag)


def faust_readiness(app: Any, ready: bool) -> dict[str, Any]:
    """Why a Faust worker is (not) ready: assigned partitions, rebalancing, table recovery."""
    try:
        assigned = len(app.consumer.assignment())
    except Exception:
        assigned = 0
    rebalancing = bool(getattr(app, "rebalancing", False))
    try:
        recovered = app.tables.recovery.completed.is_set()
    except Exception:
        recovered = False
    body: dict[str, Any] = {"assigned_partitions": assigned, "rebalancing": rebalancing, "tables_recovered": recovered}
    if not ready:
        why = [
            *(["no partitions assigned"] if not assigned else []),
            *(["rebalancing"] if rebalancing else []),
            *(["tables recovering from their changelogs"] if not recovered else []),
        ]
        body["reason"] = ", ".join(why) or "starting"
    return body


# -- the ops server --------------------------------------------------------------------------


@dataclass
class OpsServer:
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return ops_url(self.host, self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()


def ops_url(host: str, port: int) -> str:
    """The address a local client uses (an any-address bind is reached on loopback)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve_ops(
    host: str,
    port: int,
    ready: Callable[[], bool],
    registry: CollectorRegistry,
    *,
    detail: Callable[[bool], Mapping[str, Any]] | None = None,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> OpsServer:
    """Serve /metrics, /health and /ready on host:port (0: a free port, in `.port`).

    `ready()` decides /ready; `detail(ready)` adds to its JSON body (a "reason" when not ready);
    `refresh()` is awaited (bounded) before each scrape for values that must be fetched."""
    from aiohttp import web

    async def metrics(request: web.Request) -> web.Response:
        if refresh is not None:
            try:
                async with asyncio.timeout(SCRAPE_REFRESH_TIMEOUT):
                    await refresh()
            except Exception as exc:  # a scrape still answers, with the last values
                log.debug("metrics refresh failed: %r", exc)
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readiness(request: web.Request) -> web.Response:
        try:
            ok = bool(ready())
            extra = dict(detail(ok)) if detail is not None else {}
        except Exception as exc:
            ok, extra = False, {"reason": f"readiness check failed: {exc!r}"}
        if not ok:
            extra.setdefault("reason", "not ready")
        return web.json_response({"ready": ok, **extra}, status=200 if ok else 503)

    web_app = web.Application()
    web_app.router.add_get("/metrics", metrics)
    web_app.router.add_get("/health", health)
    web_app.router.add_get("/ready", readiness)
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"metrics endpoint cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server = site._server
    bound = int(server.sockets[0].getsockname()[1]) if server is not None and server.sockets else port  # type: ignore[union-attr]
    log.info("metrics, health and readiness on %s", ops_url(host, bound))
    return OpsServer(runner, host, bound)


# -- run files -------------------------------------------------------------------------------


def update_run_file(path: Path, **fields: Any) -> None:
    """Merge `fields` into a part's run file (JSON), replacing it atomically: two tasks of one
    process (the worker's query endpoint and its ops server) each add what they know."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_bytes())
        if isinstance(loaded, dict) and loaded.get("pid") == os.getpid():
            current = loaded  # a file left by an earlier process of this part is not merged into
    current.update(fields, pid=os.getpid())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(current))
    tmp.replace(path)
