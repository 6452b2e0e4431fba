"""`trackpipe replay`: where the replay runs, its progress bar and its summary (the work: trackpipe/replay.py).

- embedded store (chDB): in the running worker (`POST /replay` on its loopback endpoint), which
  holds the store and interleaves the replay with its live INSERTs; progress comes back as lines;
- a ClickHouse server (`CLICKHOUSE_URL`): here, with the registry read from Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import orjson

from .config import Settings
from .replay import Decoder, ReplayError, Selection, Summary, parse_time, run_replay

PROGRESS_EVERY = 5.0  # s between progress lines when stderr is not a terminal


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "replay",
        help="re-decode stored raw frames with today's decoders and replace the rows they produced",
        description=(
            "Re-decode the frames kept in the raw_frames table with today's decoders, registry and "
            "filters, and replace the positions, alarm events and dead letters they produced: rows "
            "the new decode also makes are replaced, new ones added, ones it no longer makes removed "
            "(--keep-removed leaves them). Derived events and device_status are left as they are. "
            "Times select by receive time: ISO 8601 (UTC unless a zone is given) or a span ago (6h, 2d)."
        ),
    )
    common(p)
    p.add_argument("--from", dest="start", metavar="TIME", help="first receive time (inclusive)")
    p.add_argument("--to", dest="end", metavar="TIME", help="last receive time (exclusive; default: now)")
    p.add_argument("--device", metavar="ID", help="only this device's frames")
    p.add_argument("--protocol", metavar="NAME", help="only frames of this protocol")
    p.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    p.add_argument("--keep-removed", action="store_true", help="leave rows the new decode no longer produces")
    p.add_argument("--json", action="store_true", help="the summary as one JSON object")
    p.add_argument("--progress", action="store_true", help="progress lines even when stderr is not a terminal")


def selection_of(args: argparse.Namespace) -> Selection:
    from trackpipe.protocols import registry

    if args.protocol is not None and not registry.supported(args.protocol):
        raise ReplayError(f"unknown protocol {args.protocol!r} (see `trackpipe protocols`)")
    start = parse_time(args.start) if args.start else None
    end = parse_time(args.end) if args.end else datetime.now(UTC)
    if start is not None and start >= end:
        raise ReplayError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    protocol = registry.get(args.protocol).name if args.protocol else None
    return Selection(start, end, args.device, protocol)


class Bar:
    """A progress bar on a terminal (redrawn in place), else a line every PROGRESS_EVERY seconds."""

    def __init__(self, out: TextIO, live: bool, lines: bool) -> None:
        self.out, self.live, self.lines = out, live, lines
        self.last = 0.0
        self.started = time.monotonic()

    @staticmethod
    def text(done: int, total: int, elapsed: float, width: int = 30) -> str:
        share = done / total if total else 1.0
        filled = min(width, int(share * width))
        rate = done / elapsed if elapsed > 0 else 0.0
        return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%} {done:,}/{total:,} frames  {rate:,.0f}/s"

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        try:
            if self.live:
                end = "\n" if done >= total else ""
                print("\r" + self.text(done, total, now - self.started), end=end, file=self.out, flush=True)
            elif self.lines and (now - self.last >= PROGRESS_EVERY or done >= total):
                self.last = now
                print(self.text(done, total, now - self.started), file=self.out, flush=True)
        except (OSError, ValueError):  # stderr gone: the replay goes on
            pass


def cmd_replay(args: argparse.Namespace, settings: Settings, running: Callable[[str], dict | None]) -> int:
    selection = selection_of(args)
    progress = Bar(sys.stderr, sys.stderr.isatty(), args.progress)
    options = {"dry_run": args.dry_run, "keep_removed": args.keep_removed}
    if settings.clickhouse_url:
        summary = asyncio.run(_here(settings, selection, progress, **options))
    else:
        worker = running("worker.json")
        if worker is None:
            raise ReplayError(
                f"the pipeline is not running on {settings.data_dir}: start it (`trackpipe run`); "
                "with the embedded store the replay runs in its worker"
            )
        summary = in_worker(worker["url"], selection, progress, **options)
    if args.json:
        print(orjson.dumps(summary.to_json()).decode())
    else:
        print(f"replay of {selection.describe()}" + (" (dry run: nothing written)" if summary.dry_run else ""))
        print("\n".join(summary.lines()))
    return 0


async def _here(settings: Settings, selection: Selection, progress: Any, **options: Any) -> Summary:
    from trackpipe import store
    from trackpipe.devices import RegistryError, read_registry
    from trackpipe.streams.quality import filters_of

    if not settings.kafka_bootstrap:
        raise ReplayError("KAFKA_BOOTSTRAP_SERVERS is not set: the replay enriches rows from the device registry")
    try:
        devices = await read_registry(settings.kafka_bootstrap, settings.topic("devices"))
    except RegistryError as exc:
        raise ReplayError(str(exc)) from None
    client = store.connect(settings)

    async def call(fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, client, *args)

    late_after = timedelta(seconds=settings.late_after)
    decoder = Decoder(devices.get, settings.decoder_options, filters_of(settings), late_after)
    try:
        return await run_replay(call, selection, decoder, progress=progress, **options)
    finally:
        client.close()


def in_worker(url: str, selection: Selection, progress: Any, **options: Any) -> Summary:
    """Ask the running worker to replay; its lines: {"progress": [done, total]} ..., then
    {"summary": {...}} or {"error": "..."}."""
    body = orjson.dumps({"selection": selection.to_json(), **options})
    request = urllib.request.Request(url + "/replay", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            for line in response:
                message = orjson.loads(line)
                if "progress" in message:
                    progress(*message["progress"])
                elif "error" in message:
                    raise ReplayError(f"replay failed in the worker: {message['error']}")
                elif "summary" in message:
                    return summary_of(message["summary"])
    except urllib.error.HTTPError as exc:
        raise ReplayError(f"the worker refused the replay: {exc.read().decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ReplayError(f"the worker at {url} did not answer: {exc}") from None
    raise ReplayError("the worker stopped before the replay finished (it may have restarted): run it again")


def summary_of(data: dict[str, Any]) -> Summary:
    from .replay import Changes

    tables = {name: Changes(**data[name]) for name in ("positions", "events", "deadletters")}
    plain = {k: v for k, v in data.items() if k not in tables and k != "rows_changed"}
    return Summary(**plain, **tables)
