"""`trackpipe` command line.

trackpipe run        the whole embedded pipeline (broker, edge, worker, store)
trackpipe edge       one edge (production: N pods behind an L4 balancer)
trackpipe worker     one Faust worker (production: up to one per partition)
trackpipe query      SQL against the pipeline's store
trackpipe replay     re-decode stored raw frames with today's decoders (fix a decoder, fix the past)
trackpipe devices    the device registry
trackpipe geofences  geofences (circles, polygons) for geofenceEnter/geofenceExit events
trackpipe simulate   simulated trackers speaking real protocols
trackpipe topics     create the topics on a Kafka cluster
trackpipe protocols  the supported protocols, one per line
trackpipe conformance FILE.jsonl   replay captured traffic as the edge and worker would
trackpipe status     the running pipeline on one screen (parts, frames/s, lag, devices, dead letters)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
from collections.abc import Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from . import replay_cli
from .config import Settings
from .devices import (
    DEFAULT_OFFLINE_AFTER,
    DEVICE_SCHEMA_V1,
    LIST_COLUMNS,
    RegistryError,
    all_views,
    decode_device,
    device_view,
    encode_device,
    list_row,
    read_registry,
    show_lines,
    store_status,
    write_record,
)
from .replay import ReplayError
from .sqlguard import (
    READ_STATEMENTS,
    READONLY_CLAUSE,
    READONLY_LEVEL,
    WRITE_STATEMENTS,
    Token,
    failure_message,
    read_only_problem,
    select_statement,
    server_message,
    split_statements,
    sql_tokens,
)

__all__ = [  # what other modules and tests import from here (the SQL and registry names re-exported)
    "DEFAULT_OFFLINE_AFTER",
    "DEVICE_SCHEMA_V1",
    "EXIT_BROKEN_PIPE",
    "LIST_COLUMNS",
    "READONLY_LEVEL",
    "READ_STATEMENTS",
    "WRITE_STATEMENTS",
    "CliError",
    "Token",
    "build_parser",
    "decode_device",
    "device_view",
    "list_row",
    "main",
    "positive_or_none",
    "read_only_problem",
    "read_registry",
    "result_columns",
    "run_query",
    "server_message",
    "split_statements",
    "sql_tokens",
    "updated_device",
]

T = TypeVar("T")


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return Settings.from_env(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=getattr(args, "data_dir", None),
        )
    except ValueError as exc:  # a malformed environment variable
        raise CliError(str(exc)) from None


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# -- run ------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .supervisor import Supervisor

    settings = _settings(args)
    _logging(settings.log_level)
    return Supervisor(settings).run()


# -- edge -------------------------------------------------------------------------------


def cmd_edge(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if getattr(args, "processes", None) is not None:
        settings = replace(settings, edge_processes=args.processes)
    _logging(settings.log_level)
    if not settings.kafka_bootstrap:
        raise CliError("KAFKA_BOOTSTRAP_SERVERS is not set (the edge publishes to Kafka; `trackpipe run` sets it)")
    if settings.edge_processes < 1:
        raise CliError(f"--processes / TRACKPIPE_EDGE_PROCESSES must be 1 or more, got {settings.edge_processes}")
    from . import loops

    if settings.edge_processes > 1 and settings.edge_slot < 0:  # the parent of N edge processes
        from trackpipe.edge.group import EdgeGroup

        return EdgeGroup(settings).run()

    try:
        loops.choose("edge")  # a bad TRACKPIPE_LOOP is one error line, before anything starts
    except ValueError as exc:
        raise CliError(str(exc)) from None
    loops.run(_edge_main(settings), "edge")
    return 0


async def _edge_main(settings: Settings) -> None:
    from trackpipe.edge.publisher import Publisher
    from trackpipe.edge.server import Edge
    from trackpipe.edge.spool import SpoolError

    registered = await _registered_ids(settings)
    publisher = Publisher.from_settings(settings)  # spools with the embedded broker
    edge = Edge(settings, publisher, registered=registered)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await publisher.start()
    except SpoolError as exc:  # the spool directory is locked by another edge on this data dir
        await publisher.stop()
        raise CliError(f"{exc} (stop it, or give this edge its own --data-dir)") from None
    await edge.start()
    ops = await _edge_ops(settings, edge, publisher, stop)
    ready = asyncio.create_task(publisher.wait_ready())
    done, _ = await asyncio.wait({ready, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    run_file = settings.run_dir / ("edge.json" if settings.edge_slot < 0 else f"edge-{settings.edge_slot}.json")
    if ready in done:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        run_file.write_bytes(
            orjson.dumps({"pid": os.getpid(), "host": settings.host, "port": edge.tcp_port, "metrics": ops and ops.url})
        )
        print(f"edge ready: tcp+udp {settings.host}:{edge.tcp_port}", flush=True)
        await stop.wait()
    logging.getLogger("trackpipe.edge").info("edge stopping: %s", edge.stats)
    await edge.stop()
    await publisher.stop()
    if ops is not None:
        await ops.stop()
    if registered is not None:
        await registered.stop()
    run_file.unlink(missing_ok=True)


async def _registered_ids(settings: Settings) -> Any:
    """TRACKPIPE_UNREGISTERED=reject: the registered ids, read whole before the edge listens."""
    if settings.unregistered != "reject":
        return None
    from trackpipe.edge.registry import RegisteredIds, RegistryUnavailable

    registered = RegisteredIds(settings.kafka_bootstrap, settings.topic("devices"))
    try:
        await registered.start()
    except RegistryUnavailable as exc:
        raise CliError(f"{exc} (TRACKPIPE_UNREGISTERED=reject needs it before the edge takes any device)") from None
    return registered


async def _edge_ops(settings: Settings, edge: Any, publisher: Any, stopping: asyncio.Event) -> Any:
    """The edge's /metrics, /health and /ready (ready: listening, not stopping, Kafka reachable)."""
    from . import metrics

    if settings.edge_metrics_port < 0:
        return None

    def ready() -> bool:
        return edge.tcp_port is not None and not stopping.is_set() and publisher.connected

    def detail(ok: bool) -> dict[str, Any]:
        body = {
            "listening": edge.tcp_port,
            "kafka": publisher.connected,
            "open_connections": edge.stats.open_connections,
        }
        if not ok:
            body["reason"] = (
                "stopping"
                if stopping.is_set()
                else publisher.last_error or f"kafka {publisher.bootstrap} not connected"
            )
        return body

    registry = metrics.edge_registry(edge, publisher)
    try:
        return await metrics.serve_ops(
            settings.metrics_host, settings.edge_metrics_port, ready, registry, detail=detail
        )
    except OSError as exc:
        await edge.stop()
        await publisher.stop()
        raise CliError(f"{exc} (TRACKPIPE_EDGE_METRICS_PORT: 0 = a free port, -1 = off)") from None


# -- worker -----------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.kafka_bootstrap:
        raise CliError("KAFKA_BOOTSTRAP_SERVERS is not set (`trackpipe run` sets it)")
    os.environ["TRACKPIPE_DATA_DIR"] = str(settings.data_dir)
    from . import loops

    try:
        if loops.choose("worker") == "uvloop":  # only when asked for: `auto` keeps the worker on asyncio
            import mode.loop

            mode.loop.use("uvloop")  # the event-loop policy Faust's worker creates its loop under
            logging.getLogger("trackpipe.loops").info("worker: event loop uvloop")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    from trackpipe.streams.app import app

    sys.argv = ["trackpipe-worker", "worker", "--without-web", "-l", settings.log_level]
    app.main()
    return 0


# -- topics -----------------------------------------------------------------------------


def cmd_topics(args: argparse.Namespace) -> int:
    from .broker import ensure_topics

    settings = _settings(args)
    if not settings.kafka_bootstrap:
        raise CliError("KAFKA_BOOTSTRAP_SERVERS is not set")
    asyncio.run(ensure_topics(settings, settings.kafka_bootstrap))
    print("topics ready")
    return 0


# -- query ------------------------------------------------------------------------------


def _running(settings: Settings, name: str) -> dict[str, Any] | None:
    """The run file of a live process of the pipeline using this data dir."""
    path = settings.run_dir / name
    try:
        info = orjson.loads(path.read_bytes())
        os.kill(int(info["pid"]), 0)
        return info
    except (OSError, ValueError, KeyError):
        return None


def _query_failed(sql: str, error: str) -> CliError:
    return CliError(failure_message(sql, error))


def run_query(settings: Settings, sql: str, *, read_only: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Rows from the store: a ClickHouse server, the running pipeline's endpoint, or chDB directly.
    `read_only`: the store itself refuses any write too (ClickHouse `readonly`); `sql` must be the
    one statement `read_only_problem` accepted."""
    from . import store

    query_settings = {"readonly": READONLY_LEVEL} if read_only else {}
    if read_only:
        sql = split_statements(sql)[0]  # no trailing ';' before the SETTINGS clause
    if settings.clickhouse_url:
        try:
            result = store.connect(settings).query(sql, settings=query_settings)
        except Exception as exc:
            raise _query_failed(sql, str(exc)) from exc
        return list(result.column_names), [list(r) for r in result.result_rows]
    worker = _running(settings, "worker.json")
    if worker is not None:
        import urllib.error
        import urllib.request

        # the endpoint runs the text as given (through chDB, where clickhouse-connect puts
        # settings in a SETTINGS clause too): read-only mode appends the same clause
        text = sql + READONLY_CLAUSE if read_only else sql
        request = urllib.request.Request(worker["url"] + "/query", data=text.encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error = str(orjson.loads(exc.read()).get("error"))
            except (ValueError, AttributeError, OSError):
                error = f"HTTP {exc.code} {exc.reason}"
            raise _query_failed(sql, error) from exc
        except OSError as exc:
            raise CliError(f"the pipeline at {worker['url']} did not answer: {exc}") from exc
        return body["columns"], body["rows"]
    if not settings.chdb_dir.exists():
        raise CliError(f"no store under {settings.data_dir} (start `trackpipe run --data-dir {settings.data_dir}`)")
    try:
        result = store.connect(settings).query(sql, settings=query_settings)
    except Exception as exc:
        raise _query_failed(sql, str(exc)) from exc
    return list(result.column_names), [list(r) for r in result.result_rows]


def result_columns(settings: Settings, sql: str) -> list[str]:
    """The column names a SELECT would have (ClickHouse sends none with an empty result):
    `DESCRIBE (query)` plans it without running it.  [] when that cannot be told."""
    statement = select_statement(sql)
    if statement is None:
        return []
    try:
        _, rows = run_query(settings, f"DESCRIBE (\n{statement}\n)", read_only=True)
    except CliError:
        return []
    return [str(row[0]) for row in rows]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, tuple | set):
        return list(value)
    return value


def print_json_lines(columns: list[str], rows: list[list[Any]]) -> None:
    out = sys.stdout.buffer
    for row in rows:
        out.write(orjson.dumps(dict(zip(columns, map(_cell, row), strict=True)), default=str) + b"\n")
    out.flush()


def print_table(columns: list[str], rows: list[list[Any]], *, count: bool = True) -> None:
    """Aligned columns under a header; `None` shows as `-`."""
    text = [["-" if v is None else str(_cell(v)) for v in row] for row in rows]
    if columns:
        widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        print("  ".join("-" * w for w in widths))
        for r in text:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    if count:
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def cmd_query(args: argparse.Namespace) -> int:
    settings = _settings(args)
    sql: str = args.sql
    if not args.write and (problem := read_only_problem(sql)):
        raise CliError(problem)
    columns, rows = run_query(settings, sql, read_only=not args.write)
    if args.json or args.format == "json":
        print_json_lines(columns, rows)
        return 0
    if not rows and not columns and not args.write:
        columns = result_columns(settings, sql)
    print_table(columns, rows)
    return 0


# -- devices ----------------------------------------------------------------------------


def kafka_bootstrap(settings: Settings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    broker = _running(settings, "broker.json")
    if broker is None:
        raise CliError(
            f"no Kafka: set KAFKA_BOOTSTRAP_SERVERS or start `trackpipe run --data-dir {settings.data_dir}` first"
        )
    return str(broker["bootstrap"])


def positive_or_none(text: str) -> float | None:
    """`--speed-limit` / `--offline-after`: a positive number, or `none` to clear the setting."""
    if text.strip().lower() in ("none", "off", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or `none` to clear it)") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number (or `none` to clear it)")
    return value


_UNSET: Any = object()  # an argument not given (None means "clear it")


def updated_device(
    device_id: str, existing: dict[str, Any] | None, args: argparse.Namespace, now: datetime
) -> dict[str, Any]:
    """The record `devices add` writes: the given fields over the registered ones (a new
    device needs --name); `--option KEY=` (empty value) drops that option."""
    from .options import OptionError, parse

    try:
        given_options = parse(args.option or (), need_protocol=False)
    except OptionError as exc:
        raise CliError(str(exc)) from None
    base = existing or {}
    name = base.get("name") if args.name is None else args.name.strip()
    if existing is None and args.name is None:
        raise CliError(f"{device_id} is not registered yet: --name is required")
    if not name:
        raise CliError("--name must not be empty")
    options = {**(base.get("options") or {}), **given_options}
    options = {k: v for k, v in options.items() if v != ""}
    return {
        "device_id": device_id,
        "name": name,
        "account": base.get("account", "") if args.account is None else args.account.strip(),
        "updated_at": now,
        "options": options,
        "speed_limit": base.get("speed_limit") if args.speed_limit is _UNSET else args.speed_limit,
        "offline_after": base.get("offline_after") if args.offline_after is _UNSET else args.offline_after,
    }


def _status_or_warn(settings: Settings, device_id: str | None = None) -> dict[str, dict[str, Any]]:
    try:
        return store_status(lambda sql: run_query(settings, sql, read_only=True), device_id)
    except CliError as exc:
        print(f"trackpipe: warning: no status from the store ({exc})", file=sys.stderr)
        return {}


def _device_id(args: argparse.Namespace) -> str:
    device_id = str(args.device_id).strip()
    if not device_id:
        raise CliError("device id must not be empty")
    return device_id


def _kafka(work: Coroutine[Any, Any, T]) -> T:
    """Run one registry read or write; Kafka's problems become the CLI's error."""
    try:
        return asyncio.run(work)
    except RegistryError as exc:
        raise CliError(str(exc)) from exc


def _print_view(view: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps({k: _cell(v) for k, v in view.items()}) + b"\n")


def print_show(view: dict[str, Any]) -> None:
    lines = show_lines(view)
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")


def cmd_devices(args: argparse.Namespace) -> int:
    settings = _settings(args)
    bootstrap = kafka_bootstrap(settings)
    topic = settings.topic("devices")
    registered = _kafka(read_registry(bootstrap, topic))
    now = datetime.now(UTC)
    if args.action == "list":
        views = all_views(registered, _status_or_warn(settings), now)
        if args.json:
            for view in views:
                _print_view(view)
            sys.stdout.flush()
        else:
            print_table(LIST_COLUMNS, [list_row(v) for v in views], count=False)
        return 0
    device_id = _device_id(args)
    existing = registered.get(device_id)
    if args.action == "show":
        found = _status_or_warn(settings, device_id).get(device_id)
        if existing is None and found is None:
            raise CliError(f"unknown device {device_id}: not registered and never seen")
        view = device_view(device_id, existing, found, now)
        if args.json:
            _print_view(view)
            sys.stdout.flush()
        else:
            print_show(view)
        return 0
    if args.action == "remove":
        if existing is None:
            raise CliError(f"device {device_id} is not registered: nothing removed")
        _kafka(write_record(bootstrap, topic, device_id.encode(), None))
        print(f"removed {device_id}")
        return 0
    record = updated_device(device_id, existing, args, now)
    _kafka(write_record(bootstrap, topic, device_id.encode(), encode_device(record)))
    if existing is None:
        print(f"registered {device_id}")
    else:
        changed = [k for k in record if k != "updated_at" and record[k] != existing.get(k)]
        print(f"updated {device_id} ({', '.join(changed) if changed else 'no change'})")
    return 0


# -- geofences ---------------------------------------------------------------------------


def cmd_geofences(args: argparse.Namespace) -> int:
    from trackpipe.streams.geofence import parse_circle, parse_polygon

    from . import geofences as fences

    settings = _settings(args)
    if args.action == "add":  # checked before Kafka is asked
        try:
            shape = parse_circle(args.circle) if args.circle is not None else parse_polygon(args.polygon)
            record = fences.new_record(args.name, shape, fences.parse_devices(args.devices), datetime.now(UTC))
        except ValueError as exc:
            raise CliError(str(exc)) from None
    bootstrap = kafka_bootstrap(settings)
    topic = settings.topic("geofences")
    known = _kafka(fences.read_geofences(bootstrap, topic))
    if args.action == "list":
        records = [known[name] for name in sorted(known)]
        if args.json:
            for one in records:
                sys.stdout.buffer.write(orjson.dumps(fences.json_view(one)) + b"\n")
            sys.stdout.flush()
        else:
            print_table(fences.LIST_COLUMNS, [fences.list_row(one) for one in records], count=False)
        return 0
    if args.action == "remove":
        name = args.name.strip()
        if name not in known:
            raise CliError(f"unknown geofence {name!r}: nothing removed (see `trackpipe geofences list`)")
        _kafka(write_record(bootstrap, topic, name.encode(), None))
        print(f"removed {name}")
        return 0
    name = record.fence.name
    _kafka(write_record(bootstrap, topic, name.encode(), fences.encode_record(record)))
    print(f"{'updated' if name in known else 'added'} {name}")
    return 0


# -- simulate ----------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        return replay_cli.cmd_replay(args, settings, lambda name: _running(settings, name))
    except ReplayError as exc:
        raise CliError(str(exc)) from None


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import PROGRESS_EVERY, SimulationError, simulate

    host = args.host or "127.0.0.1"
    port = args.port or Settings.from_env().port
    try:
        report = asyncio.run(
            simulate(
                protocol=args.protocol,
                devices=args.devices,
                rate=args.rate,
                transport=args.transport,
                duration=args.duration,
                host=host,
                port=port,
                batch=args.batch,
                progress=PROGRESS_EVERY if args.progress or sys.stderr.isatty() else None,
            )
        )
    except SimulationError as exc:
        raise CliError(str(exc)) from exc
    print(report.summary())
    return 0 if report.ok else 1


# -- protocols / conformance -------------------------------------------------------------


def cmd_protocols(args: argparse.Namespace) -> int:
    from trackpipe.protocols import registry

    for codec in sorted(registry.CODECS, key=lambda c: c.name):
        transports = ",".join(sorted(codec.transports))
        aliases = ",".join(codec.aliases) or "-"
        replies = "replies" if codec.replies else "no-replies"
        print(f"{codec.name}\t{transports}\taliases={aliases}\t{replies}")
    return 0


def cmd_conformance(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import conformance

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    try:
        lines = conformance.run(path, args.protocol, Path(args.json) if args.json else None, args.all, args.failures)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    print("\n".join(lines))
    return 0


# -- status ------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from . import status

    found = status.collect(_settings(args), interval=max(0.0, args.interval))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(found.view()) + b"\n")
    else:
        print("\n".join(status.render(found)))
    return found.exit_code


# -- main --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackpipe", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, listen: bool = False) -> None:
        p.add_argument("--data-dir", help="state directory (default ./var; env TRACKPIPE_DATA_DIR)")
        if listen:
            p.add_argument("--host", help="address devices connect to (default 0.0.0.0; env TRACKPIPE_HOST)")
            p.add_argument("--port", type=int, help="shared TCP+UDP port (default 8888; env TRACKPIPE_PORT)")

    p = sub.add_parser("run", help="run the whole embedded pipeline")
    common(p, listen=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("edge", help="run one edge (needs KAFKA_BOOTSTRAP_SERVERS)")
    common(p, listen=True)
    p.add_argument(
        "--processes",
        type=int,
        help="edge processes on the one port (SO_REUSEPORT; default TRACKPIPE_EDGE_PROCESSES or 1)",
    )
    p.set_defaults(func=cmd_edge)

    p = sub.add_parser("worker", help="run one Faust worker (needs KAFKA_BOOTSTRAP_SERVERS)")
    common(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("topics", help="create the topics (needs KAFKA_BOOTSTRAP_SERVERS)")
    common(p)
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("query", help="run SQL against the pipeline's store (read-only unless --write)")
    p.add_argument("sql", help="one statement: SELECT, WITH ... SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--json", action="store_true", help="JSON lines, one object per row (= --format json)")
    p.add_argument("--write", action="store_true", help="allow writes and DDL (INSERT, ALTER, DROP, OPTIMIZE ...)")
    common(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("devices", help="device registry: add (or update), remove, list, show")
    dsub = p.add_subparsers(dest="action", required=True)
    add = dsub.add_parser("add", help="register a device, or update a registered one (fields not given are kept)")
    add.add_argument("device_id")
    add.add_argument("--name", help="required for a new device; name and account enrich its data")
    add.add_argument("--account")
    add.add_argument(
        "--speed-limit", type=positive_or_none, default=_UNSET, metavar="KMH", help="overspeed above this (none: clear)"
    )
    add.add_argument(
        "--offline-after",
        type=positive_or_none,
        default=_UNSET,
        metavar="SECONDS",
        help=f"offline after this long without a frame (default {DEFAULT_OFFLINE_AFTER:g}; none: clear)",
    )
    add.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="decoder option for this device, e.g. jt808.model=JC371 or timezone=8 (repeatable; KEY= drops it)",
    )
    common(add)
    rm = dsub.add_parser("remove", help="unregister a device")
    rm.add_argument("device_id")
    common(rm)
    ls = dsub.add_parser("list", help="registered devices and devices seen unregistered, with their status")
    ls.add_argument("--json", action="store_true", help="JSON lines, one object per device")
    common(ls)
    show = dsub.add_parser("show", help="one device: registry settings, status, latest position")
    show.add_argument("device_id")
    show.add_argument("--json", action="store_true", help="one JSON object")
    common(show)
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("geofences", help="geofences for geofenceEnter/geofenceExit events: add, list, remove")
    gsub = p.add_subparsers(dest="action", required=True)
    gadd = gsub.add_parser("add", help="add a geofence, or replace the one of that name")
    gadd.add_argument("name")
    shape = gadd.add_mutually_exclusive_group(required=True)
    shape.add_argument("--circle", metavar="LAT,LON,METRES", help="centre and radius, e.g. 48.8584,2.2945,250")
    shape.add_argument("--polygon", metavar='"LAT LON, ..."', help='vertices, e.g. "48.1 2.1, 48.2 2.1, 48.2 2.3"')
    gadd.add_argument("--devices", metavar="ID,...", help="the devices it applies to (default: every device)")
    common(gadd)
    gls = gsub.add_parser("list", help="every geofence: name, shape, devices")
    gls.add_argument("--json", action="store_true", help="JSON lines, one object per geofence")
    common(gls)
    grm = gsub.add_parser("remove", help="remove a geofence (unknown name: an error)")
    grm.add_argument("name")
    common(grm)
    p.set_defaults(func=cmd_geofences)

    p = sub.add_parser("protocols", help="the supported protocols: name, transports, aliases, replies")
    p.set_defaults(func=cmd_protocols)

    p = sub.add_parser("conformance", help="replay captured device traffic (corpus JSONL) as the pipeline would")
    p.add_argument("file", help="JSON lines: protocol, kind, encoding, data, expected, decoder_config ...")
    p.add_argument("--protocol", help="skip detection: replay every record as this protocol")
    p.add_argument("--json", metavar="OUT", help="write one JSON object per input record to OUT")
    p.add_argument("--all", action="store_true", help="also list protocols we do not support")
    p.add_argument("--failures", action="store_true", help="one line per record that is not right, and why")
    p.set_defaults(func=cmd_conformance)

    p = sub.add_parser(
        "status",
        help="the running pipeline: parts up, frames/s, lag, devices online, dead letters in the last hour",
        description="Exit status: 0 every part up and ready, 1 nothing runs, 3 some part down or not ready.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between the two scrapes for frames/s")
    common(p)
    p.set_defaults(func=cmd_status)

    replay_cli.add_parser(sub, common)
    sub.choices["replay"].set_defaults(func=cmd_replay)

    p = sub.add_parser("simulate", help="simulated trackers speaking a real protocol")
    p.add_argument("--protocol", required=True, help="a protocol with a device side (see `trackpipe protocols`)")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--rate", type=float, default=1.0, help="live points per second per device")
    p.add_argument("--transport", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of live traffic")
    p.add_argument("--batch", type=int, default=5, help="buffered points uploaded late per device")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument(
        "--progress",
        action="store_true",
        help="a progress line on stderr every few seconds (the default when stderr is a terminal)",
    )
    p.set_defaults(func=cmd_simulate)
    return parser


#: exit status when the reader of our output went away (`trackpipe ... | head`): a tool killed by SIGPIPE
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except CliError as exc:
        print(f"trackpipe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader stopped reading: quietly, and without a second error when Python
        # flushes stdout at exit (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
