"""`trackpipe` command line.

trackpipe run        the whole embedded pipeline (broker, edge, worker, store)
trackpipe edge       one edge (production: N pods behind an L4 balancer)
trackpipe worker     one Faust worker (production: up to one per partition)
trackpipe query      SQL against the pipeline's store
trackpipe devices    the device registry
trackpipe simulate   simulated trackers speaking real protocols
trackpipe topics     create the topics on a Kafka cluster
trackpipe protocols  the supported protocols, one per line
trackpipe conformance FILE.jsonl   replay captured traffic as the edge and worker would
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from .config import Settings


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
    _logging(settings.log_level)
    if not settings.kafka_bootstrap:
        raise CliError("KAFKA_BOOTSTRAP_SERVERS is not set (the edge publishes to Kafka; `trackpipe run` sets it)")
    asyncio.run(_edge_main(settings))
    return 0


async def _edge_main(settings: Settings) -> None:
    from trackpipe.edge.publisher import Publisher
    from trackpipe.edge.server import Edge

    publisher = Publisher.from_settings(settings)  # spools with the embedded broker
    edge = Edge(settings, publisher)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await publisher.start()
    await edge.start()
    ready = asyncio.create_task(publisher.wait_ready())
    done, _ = await asyncio.wait({ready, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if ready in done:
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        (settings.run_dir / "edge.json").write_bytes(
            orjson.dumps({"pid": os.getpid(), "host": settings.host, "port": edge.tcp_port})
        )
        print(f"edge ready: tcp+udp {settings.host}:{edge.tcp_port}", flush=True)
        await stop.wait()
    logging.getLogger("trackpipe.edge").info("edge stopping: %s", edge.stats)
    await edge.stop()
    await publisher.stop()
    (settings.run_dir / "edge.json").unlink(missing_ok=True)


# -- worker -----------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.kafka_bootstrap:
        raise CliError("KAFKA_BOOTSTRAP_SERVERS is not set (`trackpipe run` sets it)")
    os.environ["TRACKPIPE_DATA_DIR"] = str(settings.data_dir)
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


def run_query(settings: Settings, sql: str) -> tuple[list[str], list[list[Any]]]:
    """Rows from the store: a ClickHouse server, the running pipeline's endpoint, or chDB directly."""
    from . import store

    if settings.clickhouse_url:
        try:
            result = store.connect(settings).query(sql)
        except Exception as exc:
            raise CliError(f"query failed: {exc}") from exc
        return list(result.column_names), [list(r) for r in result.result_rows]
    worker = _running(settings, "worker.json")
    if worker is not None:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(worker["url"] + "/query", data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                body = orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise CliError(f"query failed: {orjson.loads(exc.read()).get('error')}") from exc
        except OSError as exc:
            raise CliError(f"the pipeline at {worker['url']} did not answer: {exc}") from exc
        return body["columns"], body["rows"]
    if not settings.chdb_dir.exists():
        raise CliError(f"no store under {settings.data_dir} (start `trackpipe run --data-dir {settings.data_dir}`)")
    try:
        result = store.connect(settings).query(sql)
    except Exception as exc:
        raise CliError(f"query failed: {exc}") from exc
    return list(result.column_names), [list(r) for r in result.result_rows]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, tuple | set):
        return list(value)
    return value


def cmd_query(args: argparse.Namespace) -> int:
    settings = _settings(args)
    columns, rows = run_query(settings, args.sql)
    if args.format == "json":
        out = sys.stdout.buffer
        for row in rows:
            out.write(orjson.dumps(dict(zip(columns, map(_cell, row), strict=True)), default=str) + b"\n")
        out.flush()
        return 0
    text = [[str(_cell(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in text:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
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


def cmd_devices(args: argparse.Namespace) -> int:
    from trackpipe import schemas

    settings = _settings(args)
    bootstrap = kafka_bootstrap(settings)
    device_id = args.device_id.strip()
    if not device_id:
        raise CliError("device id must not be empty")
    if args.action == "add":
        from .options import OptionError, parse

        try:
            device_options = parse(args.option or (), need_protocol=False)
        except OptionError as exc:
            raise CliError(str(exc)) from None
        value: bytes | None = schemas.encode(
            "devices",
            {
                "device_id": device_id,
                "name": args.name,
                "account": args.account or "",
                "updated_at": datetime.now(UTC),
                "options": device_options,
            },
        )
    else:
        value = None  # tombstone
    asyncio.run(_produce(bootstrap, settings.topic("devices"), device_id.encode(), value))
    print(f"{'registered' if value else 'removed'} {device_id}")
    return 0


async def _produce(bootstrap: str, topic: str, key: bytes, value: bytes | None) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000)
    try:
        await asyncio.wait_for(producer.start(), 20)
    except Exception as exc:
        await producer.stop()
        raise CliError(f"kafka {bootstrap} not reachable: {exc}") from exc
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


# -- simulate ----------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import SimulationError, simulate

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
            )
        )
    except SimulationError as exc:
        raise CliError(str(exc)) from exc
    print(report.summary())
    return 0 if report.ok else 1


# -- main --------------------------------------------------------------------------------


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
    p.set_defaults(func=cmd_edge)

    p = sub.add_parser("worker", help="run one Faust worker (needs KAFKA_BOOTSTRAP_SERVERS)")
    common(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("topics", help="create the topics (needs KAFKA_BOOTSTRAP_SERVERS)")
    common(p)
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("query", help="run SQL against the pipeline's store")
    p.add_argument("sql")
    p.add_argument("--format", choices=("table", "json"), default="table")
    common(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("devices", help="device registry")
    dsub = p.add_subparsers(dest="action", required=True)
    add = dsub.add_parser("add", help="register a device (name and account enrich its data)")
    add.add_argument("device_id")
    add.add_argument("--name", required=True)
    add.add_argument("--account", default="")
    add.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="decoder option for this device, e.g. jt808.model=JC371 or timezone=8 (repeatable)",
    )
    common(add)
    rm = dsub.add_parser("remove", help="unregister a device")
    rm.add_argument("device_id")
    common(rm)
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("protocols", help="the supported protocols: name, transports, aliases, replies")
    p.set_defaults(func=cmd_protocols)

    p = sub.add_parser("conformance", help="replay captured device traffic (corpus JSONL) as the pipeline would")
    p.add_argument("file", help="JSON lines: protocol, kind, encoding, data, expected, decoder_config ...")
    p.add_argument("--protocol", help="skip detection: replay every record as this protocol")
    p.add_argument("--json", metavar="OUT", help="write one JSON object per input record to OUT")
    p.add_argument("--all", action="store_true", help="also list protocols we do not support")
    p.add_argument("--failures", action="store_true", help="one line per record that is not right, and why")
    p.set_defaults(func=cmd_conformance)

    p = sub.add_parser("simulate", help="simulated trackers speaking a real protocol")
    p.add_argument("--protocol", required=True, help="a protocol with a device side (see `trackpipe protocols`)")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--rate", type=float, default=1.0, help="live points per second per device")
    p.add_argument("--transport", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of live traffic")
    p.add_argument("--batch", type=int, default=5, help="buffered points uploaded late per device")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"trackpipe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
