"""Configuration from the environment (12-factor); CLI flags override the common ones."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from . import options


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off", "")


@dataclass(frozen=True, slots=True)
class Settings:
    # where devices connect
    host: str = "0.0.0.0"
    port: int = 8888
    # storage
    data_dir: Path = Path("var")
    kafka_bootstrap: str = ""  # empty: start the embedded broker
    clickhouse_url: str = ""  # empty: embedded chDB under data_dir
    database: str = "trackpipe"
    # topics
    topic_prefix: str = "tracker."
    partitions: int = 4
    replication: int = 1
    # edge
    edge_id: str = field(default_factory=socket.gethostname)
    idle_timeout: float = 900.0  # s without a byte before a TCP connection is closed
    detect_timeout: float = 5.0  # s to see a decisive first frame
    detect_max_bytes: int = 1024  # bytes buffered while detecting
    max_frame: int = 65536  # hard cap over every protocol's own limit
    udp_id_ttl: float = 900.0  # s a UDP source keeps a learned device id
    publish_timeout: float = 15.0  # s to get Kafka's confirmation before giving up on a frame
    max_inflight: int = 512  # unconfirmed frames per connection before reading pauses
    deadletter_max_bytes: int = 4096  # raw bytes kept per dead letter
    # one edge as several processes on one port (SO_REUSEPORT: the kernel spreads connections and
    # UDP sources over them): more cores, and more connections than one process's fd limit allows.
    # `edge_slot` is set by the edge's parent for each of its processes (-1: a single-process edge)
    edge_processes: int = 1
    edge_slot: int = -1
    # edge abuse bounds
    frame_timeout: float = 30.0  # s from the first byte of a frame to its last (a trickle is closed)
    udp_rcvbuf: int = 4 * 1024 * 1024  # SO_RCVBUF of UDP sockets (the kernel caps it at net.core.rmem_max)
    udp_source_rate: float = 500.0  # datagrams/s per source host (burst 2x); 0 = unlimited
    deadletter_per_connection: int = 50  # dead letters one TCP connection may publish before it is closed
    deadletter_rate: float = 10.0  # dead letters/s per source host (burst 2x); beyond: counted, not published
    deadletter_rate_total: float = 200.0  # dead letters/s for the whole edge (burst 2x)
    # edge spool (edge/spool.py): confirmed records kept on disk until the worker stored them --
    # needed with the embedded broker (it confirms from memory); `trackpipe run` turns it on for it
    spool: bool = False
    spool_fsync: bool = False  # fsync each spool write (survive a power cut, not only a process kill)
    spool_max_bytes: int = 1 << 30  # spooled bytes beyond which frames are not acknowledged
    # embedded broker: trim non-compacted topics to this many records per partition (behind the
    # worker group's committed offset for the topics it consumes); 0 = keep everything
    broker_keep: int = 20000
    # ... and of tracker.raw / tracker.deadletter behind the worker's committed offset: those are
    # stored (raw_frames keeps every frame for `trackpipe replay`); the broker rewrites all it holds
    # every second or so, and at 5k frames/s the 20k kept raw records were ~45% of it
    broker_keep_stored: int = 2000
    broker_trim_interval: float = 10.0
    # segment.bytes of the compacted topics (the registries and the worker's table changelogs; 0:
    # the broker's default).  The embedded broker compacts only closed segments and its default
    # segment never closes: the rule-state changelog (one record per device per batch) would grow
    # without end.  `trackpipe run` sets it for the embedded broker.
    compact_segment_bytes: int = 0
    # streams
    sink_batch: int = 5000
    sink_interval: float = 1.0  # s: rows are stored (and frames acked) in batches of sink_batch or this old
    publish_interval: float = 0.0  # s: decode gathers what arrives within this (0: what is there, at once)
    late_after: float = 600.0  # s: a point older than this on arrival is stored as archive
    # derived events (streams/rules.py): deployment defaults; a device's registry entry
    # (`devices add --speed-limit --offline-after`) wins for those two
    offline_after: float = 600.0  # s without a frame: deviceOffline (Traccar status.timeout)
    speed_limit: float = 0.0  # km/h above which deviceOverspeed (0: no limit)
    overspeed_duration: float = 0.0  # s above the limit before deviceOverspeed
    motion_speed: float = 0.01 * 1.852  # km/h above which a fix is moving (Traccar: 0.01 kn)
    trip_distance: float = 500.0  # m of travel that confirms deviceMoving
    trip_duration: float = 300.0  # s of motion that confirms deviceMoving
    parking_duration: float = 300.0  # s standing still that confirms deviceStopped
    rules_tick: float = 5.0  # s between offline checks of every local device (the timer)
    # devices not in the registry: "store" their data as any other (registered = false), "flag" them
    # as well (a deviceUnknown event when they come online), or "reject" them at the edge (no ack,
    # the connection closed, a dead letter "unregistered device")
    unregistered: str = "store"
    # position quality (Traccar's filter.*): refused fixes become dead letters (stage "filter")
    filter_zero: bool = True  # refuse (0, 0)
    filter_invalid: bool = False  # refuse fixes the device marks invalid
    filter_earliest: str = "2000-01-01"  # refuse fix times before this (empty: no bound)
    filter_future: float = 86400.0  # s a fix time may be ahead of its receipt (0: no bound)
    filter_past: float = 0.0  # s a fix time may be behind its receipt (0: no bound)
    # retention in days (0: keep forever), applied to the ClickHouse tables at start
    ttl_positions: int = 0
    ttl_events: int = 0
    ttl_device_status: int = 0
    ttl_deadletter: int = 30
    ttl_raw_frames: int = 365  # the frames `trackpipe replay` re-decodes
    # `trackpipe run` supervision
    restart_backoff: float = 0.5  # s before the first restart of a part that died
    restart_backoff_max: float = 10.0  # s: cap of the doubling restart delay
    restart_stable: float = 30.0  # s a part must run for its restart delay to start over
    log_level: str = "info"
    # operator endpoints (/metrics, /health, /ready; trackpipe/metrics.py): 0 = a free port (written
    # to the part's run file), -1 = off; the image binds all interfaces on 9108 (edge) / 9109 (worker)
    metrics_host: str = "127.0.0.1"
    edge_metrics_port: int = 0
    worker_metrics_port: int = 0
    app_id: str = "trackpipe"  # the worker's Faust app id = its Kafka consumer group
    pinned_ports: dict[int, str] = field(default_factory=dict)  # port -> protocol (TRACKPIPE_PORTS)
    decoder_options: dict[str, str] = field(default_factory=dict)  # protocol.key -> value (TRACKPIPE_DECODER_OPTIONS)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        d = cls()  # defaults (slots: class attributes are descriptors, not values)
        env = {
            "host": _env("TRACKPIPE_HOST", d.host),
            "port": int(_env("TRACKPIPE_PORT", str(d.port))),
            "data_dir": Path(_env("TRACKPIPE_DATA_DIR", str(d.data_dir))),
            "kafka_bootstrap": _env("KAFKA_BOOTSTRAP_SERVERS", ""),
            "clickhouse_url": _env("CLICKHOUSE_URL", ""),
            "database": _env("TRACKPIPE_DATABASE", d.database),
            "topic_prefix": _env("TRACKPIPE_TOPIC_PREFIX", d.topic_prefix),
            "partitions": int(_env("TRACKPIPE_PARTITIONS", str(d.partitions))),
            "replication": int(_env("TRACKPIPE_REPLICATION", str(d.replication))),
            "edge_id": _env("TRACKPIPE_EDGE_ID", socket.gethostname()),
            "log_level": _env("TRACKPIPE_LOG_LEVEL", d.log_level),
            "metrics_host": _env("TRACKPIPE_METRICS_HOST", d.metrics_host),
            "app_id": _env("TRACKPIPE_APP_ID", d.app_id),
            "spool": _flag("TRACKPIPE_SPOOL", d.spool),
            "spool_fsync": _flag("TRACKPIPE_SPOOL_FSYNC", d.spool_fsync),
            "decoder_options": options.parse_env(_env(options.ENV, "")),
            "pinned_ports": parse_ports(_env("TRACKPIPE_PORTS", "")),
            "filter_zero": _flag("TRACKPIPE_FILTER_ZERO", d.filter_zero),
            "filter_invalid": _flag("TRACKPIPE_FILTER_INVALID", d.filter_invalid),
            "filter_earliest": _env("TRACKPIPE_FILTER_EARLIEST", d.filter_earliest),
            "unregistered": _env("TRACKPIPE_UNREGISTERED", d.unregistered).strip().lower(),
        }
        numeric = {
            "idle_timeout": "TRACKPIPE_IDLE_TIMEOUT",
            "detect_timeout": "TRACKPIPE_DETECT_TIMEOUT",
            "detect_max_bytes": "TRACKPIPE_DETECT_MAX_BYTES",
            "max_frame": "TRACKPIPE_MAX_FRAME",
            "udp_id_ttl": "TRACKPIPE_UDP_ID_TTL",
            "publish_timeout": "TRACKPIPE_PUBLISH_TIMEOUT",
            "max_inflight": "TRACKPIPE_MAX_INFLIGHT",
            "deadletter_max_bytes": "TRACKPIPE_DEADLETTER_MAX_BYTES",
            "edge_processes": "TRACKPIPE_EDGE_PROCESSES",
            "edge_slot": "TRACKPIPE_EDGE_SLOT",
            "frame_timeout": "TRACKPIPE_FRAME_TIMEOUT",
            "udp_rcvbuf": "TRACKPIPE_UDP_RCVBUF",
            "udp_source_rate": "TRACKPIPE_UDP_SOURCE_RATE",
            "deadletter_per_connection": "TRACKPIPE_DEADLETTER_PER_CONNECTION",
            "deadletter_rate": "TRACKPIPE_DEADLETTER_RATE",
            "deadletter_rate_total": "TRACKPIPE_DEADLETTER_RATE_TOTAL",
            "spool_max_bytes": "TRACKPIPE_SPOOL_MAX_BYTES",
            "broker_keep": "TRACKPIPE_BROKER_KEEP",
            "broker_keep_stored": "TRACKPIPE_BROKER_KEEP_STORED",
            "broker_trim_interval": "TRACKPIPE_BROKER_TRIM_INTERVAL",
            "compact_segment_bytes": "TRACKPIPE_COMPACT_SEGMENT_BYTES",
            "sink_batch": "TRACKPIPE_SINK_BATCH",
            "sink_interval": "TRACKPIPE_SINK_INTERVAL",
            "publish_interval": "TRACKPIPE_PUBLISH_INTERVAL",
            "late_after": "TRACKPIPE_LATE_AFTER",
            "offline_after": "TRACKPIPE_OFFLINE_AFTER",
            "speed_limit": "TRACKPIPE_SPEED_LIMIT",
            "overspeed_duration": "TRACKPIPE_OVERSPEED_DURATION",
            "motion_speed": "TRACKPIPE_MOTION_SPEED",
            "trip_distance": "TRACKPIPE_TRIP_DISTANCE",
            "trip_duration": "TRACKPIPE_TRIP_DURATION",
            "parking_duration": "TRACKPIPE_PARKING_DURATION",
            "rules_tick": "TRACKPIPE_RULES_TICK",
            "filter_future": "TRACKPIPE_FILTER_FUTURE",
            "filter_past": "TRACKPIPE_FILTER_PAST",
            "ttl_positions": "TRACKPIPE_TTL_POSITIONS",
            "ttl_events": "TRACKPIPE_TTL_EVENTS",
            "ttl_device_status": "TRACKPIPE_TTL_DEVICE_STATUS",
            "ttl_deadletter": "TRACKPIPE_TTL_DEADLETTER",
            "ttl_raw_frames": "TRACKPIPE_TTL_RAW_FRAMES",
            "restart_backoff": "TRACKPIPE_RESTART_BACKOFF",
            "restart_backoff_max": "TRACKPIPE_RESTART_BACKOFF_MAX",
            "restart_stable": "TRACKPIPE_RESTART_STABLE",
            "edge_metrics_port": "TRACKPIPE_EDGE_METRICS_PORT",
            "worker_metrics_port": "TRACKPIPE_WORKER_METRICS_PORT",
        }
        types = {f.name: f.type for f in fields(cls)}
        for key, var in numeric.items():
            if var in os.environ:
                env[key] = (int if types[key] in ("int", int) else float)(os.environ[var])
        if env["unregistered"] not in UNREGISTERED_POLICIES:
            raise ValueError(
                f"TRACKPIPE_UNREGISTERED: {env['unregistered']!r} is not one of {', '.join(UNREGISTERED_POLICIES)}"
            )
        settings = cls(**env)  # type: ignore[arg-type]
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "data_dir" in clean:
            clean["data_dir"] = Path(clean["data_dir"])  # type: ignore[arg-type]
        return replace(settings, **clean)  # type: ignore[arg-type]

    def topic(self, name: str) -> str:
        """Full topic name: raw, devices, positions, events, deadletter."""
        return f"{self.topic_prefix}{name}"

    def changelog(self, table: str) -> str:
        """The changelog topic Faust keeps for the worker's table `table` (one of TABLES)."""
        return f"{self.app_id}-{table}-changelog"

    def topic_configs(self, policy: str) -> dict[str, str]:
        """The configs a topic of cleanup `policy` is created with (and, for compacted ones when
        `compact_segment_bytes` is set, brought to)."""
        configs = {"cleanup.policy": policy}
        if policy == "compact" and self.compact_segment_bytes > 0:
            configs["segment.bytes"] = str(self.compact_segment_bytes)
        return configs

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def chdb_dir(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def spool_dir(self) -> Path:
        """`spool` for a single-process edge, `spool-<slot>` for each process of a multi-process one."""
        return self.data_dir / ("spool" if self.edge_slot < 0 else f"spool-{self.edge_slot}")

    def orphan_spools(self) -> list[Path]:
        """Spool directories no process of this edge owns (an earlier run had more processes, or
        ran as one) that this process takes over: it publishes their records again at start, like
        its own.  Slot k's orphans are the `spool-<j>` with j >= edge_processes and j % n == k, and
        for slot 0 the single-process `spool`; a single-process edge takes every `spool-<j>`."""
        found = sorted(p for p in self.data_dir.glob("spool-*") if p.is_dir() and p.name[6:].isdigit())
        if self.edge_slot < 0:
            return found
        n = max(self.edge_processes, 1)
        mine = [p for p in found if int(p.name[6:]) >= n and int(p.name[6:]) % n == self.edge_slot]
        single = self.data_dir / "spool"
        return ([single] if self.edge_slot == 0 and single.is_dir() else []) + mine


def parse_ports(text: str) -> dict[int, str]:
    """`5023:gt06,5027:teltonika` -> {5023: "gt06", 5027: "teltonika"} (protocol names checked)."""
    from trackpipe.protocols import registry

    out: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        port, sep, name = item.partition(":")
        if not sep or not port.strip().isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"TRACKPIPE_PORTS: {item!r} is not PORT:PROTOCOL")
        if not registry.supported(name.strip()):
            raise ValueError(f"TRACKPIPE_PORTS: unknown protocol {name.strip()!r} (see `trackpipe protocols`)")
        out[int(port)] = registry.get(name.strip()).name
    return out


UNREGISTERED_POLICIES = ("store", "flag", "reject")

#: topic -> cleanup policy; every topic gets `partitions` partitions (co-partitioned by device id)
TOPICS = {
    "raw": "delete",
    "devices": "compact",
    "positions": "delete",
    "events": "delete",
    "deadletter": "delete",
    "geofences": "compact",
}
#: the worker's Faust tables: each has a compacted changelog topic "<app_id>-<table>-changelog"
TABLES = ("devices", "geofences", "rule_state")
