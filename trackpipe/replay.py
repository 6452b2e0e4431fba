"""`trackpipe replay`: re-decode stored raw frames with today's decoders, and replace what they produced.

Every frame the worker consumes is kept in `raw_frames` (trackpipe/sql/schema.sql).  A replay reads
the selected frames in chunks, runs each through the same `process` as the worker (today's decoders,
today's registry and options, today's position filters), and compares what comes out with what the
store holds from that frame:

- rows of a frame are found by the frame's identity: positions and alarm events by (device, receive
  time = `server_time`), dead letters of stages decode/filter by (connection, receive time);
- a row the new decode also produces (same sorting key) is unchanged, or changed: the new row is
  inserted and replaces the old one (ReplacingMergeTree: same version, the later insert wins);
- a row only the new decode produces is added; a row only the old decode produced is **removed**
  (lightweight DELETE), after the new rows are in, so a reader never sees the frame's rows missing;
  `keep_removed` leaves them instead;
- a frame whose rows now go to another device (a fixed id decoding) has its `raw_frames` row moved,
  and the connection's later id-less frames follow it;
- `latest_positions` is rebuilt from `positions` for every device whose positions changed or went.

Derived events (deviceOnline, geofenceEnter ...) and `device_status` are not rewritten: they follow the
live stream's order and state, which a replay of the past does not have.  A replay is idempotent: run
twice, the second changes nothing.

The core is storage-agnostic: `run_replay(call, ...)` does every store access through `call(fn, *args)`
(`fn(client, *args)`), so the worker can interleave a replay with its live INSERTs (one chDB thread)
and the CLI can run it against a ClickHouse server directly.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from trackpipe import store
from trackpipe.devices import quote
from trackpipe.streams.process import Lookup, frame_device, process
from trackpipe.streams.quality import Filters

Call = Callable[..., Awaitable[Any]]  # call(fn, *args) -> fn(client, *args), run where the store is
Progress = Callable[[int, int], Awaitable[None] | None]  # (frames done, frames selected)

FRAME_COLUMNS = store.COLUMNS["raw_frames"]
CHUNK = 2000  # frames per chunk: one read of old rows per table, one INSERT and one DELETE per table
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: dead letters a replay owns: those `process` makes (edge letters never came from a stored frame)
REPLAYED_STAGES = ("decode", "filter")
#: sorting key of each replaced table (rows with the same key replace each other)
KEYS = {
    "positions": ("device_id", "fix_time"),
    "events": ("device_id", "time", "type", "alarm", "key"),
    "deadletter": ("connection_id", "time", "stage", "reason", "detail"),
}


class ReplayError(Exception):
    """A selection or store problem told to the user in one line."""


# -- the selection ---------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (`2026-11-30`, `2026-11-30T08:00`, `...+02:00`; no zone: UTC) or a span ago
    (`90m`, `6h`, `2d`, `1w`)."""
    value = text.strip()
    match = _RELATIVE.match(value.lower())
    if match:
        return (now or datetime.now(UTC)) - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"{text!r} is not a time: give ISO 8601 (2026-11-30T08:00, UTC unless a zone) or 6h / 2d ago"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which stored frames to replay: receive time in [start, end), device, protocol."""

    start: datetime | None = None
    end: datetime | None = None
    device: str | None = None
    protocol: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        conditions, params = ["1"], {}
        if self.start is not None:
            conditions.append("received_at >= {start:DateTime64(3, 'UTC')}")
            params["start"] = self.start
        if self.end is not None:
            conditions.append("received_at < {end:DateTime64(3, 'UTC')}")
            params["end"] = self.end
        if self.device is not None:
            conditions.append("device_id = {device:String}")
            params["device"] = self.device
        if self.protocol is not None:
            conditions.append("protocol = {protocol:String}")
            params["protocol"] = self.protocol
        return " AND ".join(conditions), params

    def describe(self) -> str:
        """`frames received 2026-11-30T00:00:00Z .. 2026-12-02T08:00:00Z of device X, protocol P`."""

        def when(moment: datetime) -> str:
            return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

        if self.start and self.end:
            span = f"received {when(self.start)} .. {when(self.end)}"
        elif self.start:
            span = f"received since {when(self.start)}"
        elif self.end:
            span = f"received before {when(self.end)}"
        else:
            span = "ever received"
        whose = [f"device {self.device}" if self.device else "", f"protocol {self.protocol}" if self.protocol else ""]
        return f"frames {span}" + (" of " + ", ".join(w for w in whose if w) if any(whose) else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "device": self.device,
            "protocol": self.protocol,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        def when(key: str) -> datetime | None:
            return parse_time(data[key]) if data.get(key) else None

        return cls(when("start"), when("end"), data.get("device") or None, data.get("protocol") or None)


# -- the outcome --------------------------------------------------------------------------------


@dataclass(slots=True)
class Changes:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def rows_changed(self) -> int:
        return self.added + self.changed + self.removed


@dataclass(slots=True)
class Summary:
    selected: int = 0  # frames the selection matched
    frames: int = 0  # frames re-decoded
    frames_changed: int = 0  # frames whose rows differ from the stored ones
    devices_moved: int = 0  # frames whose rows now go to another device id
    positions: Changes = field(default_factory=Changes)
    events: Changes = field(default_factory=Changes)  # device-reported alarms
    deadletters: Changes = field(default_factory=Changes)
    kept_removed: bool = False  # rows only the old decode produced were left in place
    dry_run: bool = False

    @property
    def rows_changed(self) -> int:
        return self.positions.rows_changed + self.events.rows_changed + self.deadletters.rows_changed

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"rows_changed": self.rows_changed}

    def lines(self) -> list[str]:
        verb = "would change" if self.dry_run else "changed"
        out = [
            f"frames: {self.frames:,} re-decoded of {self.selected:,} selected; "
            f"{self.frames_changed:,} decode differently, {self.devices_moved:,} to another device id",
            f"rows {verb}: {self.rows_changed:,}",
        ]
        for name in ("positions", "events", "deadletters"):
            c: Changes = getattr(self, name)
            removed = f"{c.removed:,} " + ("only in the old decode, kept" if self.kept_removed else "removed")
            label = "alarm events" if name == "events" else "dead letters" if name == "deadletters" else name
            out.append(f"  {label:13s} {c.added:,} added, {c.changed:,} changed, {removed}, {c.unchanged:,} unchanged")
        return out


# -- comparing rows -------------------------------------------------------------------------------


def _ms(value: datetime) -> int:
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def _canon(value: Any) -> Any:
    """A stored or freshly decoded value in one comparable form (the store keeps milliseconds)."""
    if isinstance(value, datetime):
        return _ms(value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_canon(v) for v in value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return value


def canonical(table: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    text = store.NOT_NULL_TEXT
    return tuple(
        _canon(row.get(name) or "" if (table, name) in text else row.get(name)) for name in store.COLUMNS[table]
    )


def row_key(table: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(_canon(row.get(name) or "" if name == "key" else row.get(name)) for name in KEYS[table])


def diff(table: str, old: list[dict[str, Any]], new: list[dict[str, Any]], changes: Changes) -> tuple[list, list]:
    """(rows to insert, old rows to remove) so that the table holds `new` in place of `old`."""
    before = {row_key(table, r): canonical(table, r) for r in old}
    after: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in new:
        after[row_key(table, row)] = row  # the same key twice in one decode: the later wins, as in the store
    inserts = []
    for key, row in after.items():
        if key not in before:
            changes.added += 1
            inserts.append(row)
        elif before[key] != canonical(table, row):
            changes.changed += 1
            inserts.append(row)
        else:
            changes.unchanged += 1
    removals = [r for r in old if row_key(table, r) not in after]
    changes.removed += len(removals)
    return inserts, removals


# -- store access (each runs as fn(client, ...), where the store is) --------------------------


def count_frames(client: Any, selection: Selection) -> int:
    where, params = selection.where()
    return int(client.command(f"SELECT count() FROM raw_frames FINAL WHERE {where}", parameters=params))


def read_frames(client: Any, selection: Selection, after: tuple[str, datetime] | None, limit: int) -> list[dict]:
    """The next frames in (device, receive time, connection, seq) order after the group `after`."""
    where, params = selection.where()
    if after is not None:
        where += " AND (device_id, received_at) > ({after_device:String}, {after_time:DateTime64(3, 'UTC')})"
        params |= {"after_device": after[0], "after_time": after[1]}
    result = client.query(
        f"SELECT {', '.join(FRAME_COLUMNS)} FROM raw_frames FINAL WHERE {where} "
        f"ORDER BY device_id, received_at, connection_id, seq LIMIT {int(limit)}",
        parameters=params,
        column_formats={"frame": "bytes"},
    )
    return [_utc(dict(zip(FRAME_COLUMNS, row, strict=True))) for row in result.result_rows]


def read_group(client: Any, selection: Selection, device: str, moment: datetime) -> list[dict]:
    """Every frame of one (device, receive time) group (a chunk never splits one)."""
    where, params = selection.where()
    result = client.query(
        f"SELECT {', '.join(FRAME_COLUMNS)} FROM raw_frames FINAL WHERE {where} "
        "AND device_id = {g_device:String} AND received_at = {g_time:DateTime64(3, 'UTC')} "
        "ORDER BY connection_id, seq",
        parameters=params | {"g_device": device, "g_time": moment},
        column_formats={"frame": "bytes"},
    )
    return [_utc(dict(zip(FRAME_COLUMNS, row, strict=True))) for row in result.result_rows]


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    for name, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[name] = value.replace(tzinfo=UTC)
    return row


def _span(times: Iterable[datetime]) -> tuple[datetime, datetime]:
    ordered = sorted(times)
    return ordered[0], ordered[-1]


def read_old(client: Any, frames: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The stored rows the frames produced: positions and alarm events by (device, receive time),
    dead letters of the replayed stages by (connection, receive time)."""
    groups = {(f["device_id"], _ms(f["received_at"])) for f in frames}
    conns = {(f["connection_id"], _ms(f["received_at"])) for f in frames}
    lo, hi = _span(f["received_at"] for f in frames)
    params = {
        "devices": sorted({f["device_id"] for f in frames}),
        "conns": sorted({f["connection_id"] for f in frames}),
        "lo": lo,
        "hi": hi,
    }
    window = "server_time BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')}"
    queries = {
        "positions": f"FROM positions FINAL WHERE device_id IN {{devices:Array(String)}} AND {window}",
        "events": f"FROM events FINAL WHERE type = 'alarm' AND device_id IN {{devices:Array(String)}} AND {window}",
        "deadletter": (
            "FROM deadletter WHERE stage IN ('decode', 'filter') AND connection_id IN {conns:Array(String)} "
            "AND time BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')}"
        ),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for table, source in queries.items():
        columns = store.COLUMNS[table]
        formats = {"raw": "bytes"} if table == "deadletter" else None
        result = client.query(f"SELECT {', '.join(columns)} {source}", parameters=params, column_formats=formats)
        rows = [_utc(dict(zip(columns, row, strict=True))) for row in result.result_rows]
        if table == "deadletter":
            out[table] = [r for r in rows if (r["connection_id"], _ms(r["time"])) in conns]
        else:
            out[table] = [r for r in rows if (r["device_id"], _ms(r["server_time"])) in groups]
    return out


def _tuples(rows: list[dict[str, Any]], names: tuple[str, ...]) -> str:
    """`[(...), ...]` literals of `names` per row (times as epoch milliseconds)."""

    def literal(value: Any) -> str:
        if isinstance(value, datetime):
            return str(_ms(value))
        if isinstance(value, str):
            return quote(value)
        return repr(int(value))

    return "[" + ", ".join("(" + ", ".join(literal(r[n]) for n in names) + ")" for r in rows) + "]"


def _match(names: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"toUnixTimestamp64Milli({n})" if n in _TIMES else n for n in names) + ")"


_TIMES = {"fix_time", "server_time", "time", "received_at"}
#: what identifies one stored row exactly (its key and its version / origin)
_EXACT = {
    "positions": ("device_id", "fix_time", "server_time"),
    "events": ("device_id", "time", "type", "alarm", "key", "server_time"),
    "deadletter": ("connection_id", "time", "stage", "reason", "detail"),
    "raw_frames": ("device_id", "received_at", "connection_id", "seq"),
}


def write(client: Any, inserts: Mapping[str, list[dict]], removals: Mapping[str, list[dict]]) -> None:
    """New rows first, then the old ones the new decode no longer makes: never a moment without them."""
    for table, rows in inserts.items():
        if rows:
            store.insert(client, table, rows)
    for table, rows in removals.items():
        for lo in range(0, len(rows), 500):
            names = _EXACT[table]
            client.command(f"DELETE FROM {table} WHERE {_match(names)} IN {_tuples(rows[lo : lo + 500], names)}")


def rebuild_latest(client: Any, devices: list[str]) -> None:
    """`latest_positions` of these devices from `positions` as it is now (a removed or replaced
    position must not stay their latest), with the same SELECT as the view that feeds it."""
    db = client.database
    select = str(
        client.command(
            "SELECT as_select FROM system.tables WHERE database = {db:String} AND name = 'latest_positions_mv_v2'",
            parameters={"db": db},
        )
    )
    source = f"FROM {db}.positions GROUP BY"
    if source not in select:
        raise ReplayError(f"latest_positions_mv_v2 is not the view this version made: {select[:200]}")
    current = "FROM (SELECT * FROM {db}.positions FINAL WHERE device_id IN {{devices:Array(String)}}) GROUP BY"
    select = select.replace(source, current.format(db=db))
    for lo in range(0, len(devices), 1000):
        chunk = {"devices": devices[lo : lo + 1000]}
        client.command(
            "DELETE FROM latest_positions_state WHERE device_id IN {devices:Array(String)}", parameters=chunk
        )
        client.command(f"INSERT INTO latest_positions_state {select}", parameters=chunk)


# -- the replay ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Decoder:
    """What `process` needs, as the worker has it."""

    lookup: Lookup
    options: Mapping[str, str] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    late_after: timedelta = timedelta(minutes=10)


@dataclass(slots=True)
class Redecoded:
    rows: dict[str, list[dict[str, Any]]]  # table -> the new rows of the frames
    origin: dict[int, int]  # id(row) -> index of the frame it came from
    moved_in: list[dict[str, Any]]  # raw_frames rows with their new device id
    moved_out: list[dict[str, Any]]  # ... and as they were stored


def redecode(
    frames: list[dict[str, Any]], decoder: Decoder, moved: dict[tuple[str, str], str], summary: Summary
) -> Redecoded:
    """The frames through today's `process`.  `moved`: (connection, old device) -> new device, so a
    connection's id-less frames follow its login to the new id."""
    out_rows: dict[str, list[dict[str, Any]]] = {"positions": [], "events": [], "deadletter": []}
    result = Redecoded(out_rows, {}, [], [])
    for index, frame in enumerate(frames):
        stored_device = frame["device_id"]
        context = moved.get((frame["connection_id"], stored_device), stored_device)
        raw = frame | {"device_id": context or None}
        out = process(
            raw, decoder.lookup, late_after=decoder.late_after, options=decoder.options, filters=decoder.filters
        )
        made = {"positions": out.positions, "events": [e | {"key": ""} for e in out.events]}
        made["deadletter"] = out.deadletters
        for table, rows in made.items():
            out_rows[table] += rows
            result.origin.update((id(row), index) for row in rows)
        device = frame_device(raw, out)
        if device != stored_device:
            summary.devices_moved += 1
            if stored_device:
                moved[(frame["connection_id"], stored_device)] = device
            result.moved_out.append(frame)
            result.moved_in.append(frame | {"device_id": device})
            result.origin[id(result.moved_in[-1])] = index
    return result


async def run_replay(
    call: Call,
    selection: Selection,
    decoder: Decoder,
    *,
    dry_run: bool = False,
    keep_removed: bool = False,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> Summary:
    summary = Summary(kept_removed=keep_removed, dry_run=dry_run)
    summary.selected = await call(count_frames, selection)
    await _report(progress, 0, summary.selected)
    moved: dict[tuple[str, str], str] = {}
    touched: set[str] = set()
    after: tuple[str, datetime] | None = None
    while True:
        frames = await call(read_frames, selection, after, chunk)
        if not frames:
            break
        if len(frames) == chunk:  # the last group may go on past the chunk: take it whole
            last = (frames[-1]["device_id"], frames[-1]["received_at"])
            head = [f for f in frames if (f["device_id"], f["received_at"]) != last]
            frames = head + await call(read_group, selection, *last)
        after = (frames[-1]["device_id"], frames[-1]["received_at"])
        await _replay_chunk(call, frames, decoder, moved, touched, summary, dry_run=dry_run, keep_removed=keep_removed)
        summary.frames += len(frames)
        await _report(progress, summary.frames, summary.selected)
    if touched and not dry_run:
        await call(rebuild_latest, sorted(touched))
    return summary


async def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None and (pending := progress(done, total)) is not None:
        await pending


async def _replay_chunk(
    call: Call,
    frames: list[dict[str, Any]],
    decoder: Decoder,
    moved: dict[tuple[str, str], str],
    touched: set[str],
    summary: Summary,
    *,
    dry_run: bool,
    keep_removed: bool,
) -> None:
    old = await call(read_old, frames)
    new = redecode(frames, decoder, moved, summary)
    inserts: dict[str, list[dict]] = {"raw_frames": new.moved_in}
    removals: dict[str, list[dict]] = {"raw_frames": new.moved_out}
    counters = {"positions": summary.positions, "events": summary.events, "deadletter": summary.deadletters}
    changed = {new.origin[id(row)] for row in new.moved_in}  # frames whose rows differ
    gone: set[tuple[str, int]] = set()  # frame groups that lost a row (a removed row names no one frame)
    for table in ("positions", "events", "deadletter"):
        add, remove = diff(table, old[table], new.rows[table], counters[table])
        inserts[table] = add
        removals[table] = [] if keep_removed else remove
        changed |= {new.origin[id(row)] for row in add}
        origin, ident = ("time", "connection_id") if table == "deadletter" else ("server_time", "device_id")
        gone |= {(row[ident], _ms(row[origin])) for row in remove}
        if table == "positions":
            touched |= {row["device_id"] for row in add + remove}
    if gone:  # one frame per group, unless a frame of that group is counted already
        groups: dict[tuple[str, int], list[int]] = {}
        for i, f in enumerate(frames):
            moment = _ms(f["received_at"])
            groups.setdefault((f["device_id"], moment), []).append(i)
            groups.setdefault((f["connection_id"], moment), []).append(i)
        for key in gone:
            group = groups.get(key, [])
            if group and not changed.intersection(group):
                changed.add(group[0])
    summary.frames_changed += len(changed)
    if not dry_run:
        await call(write, inserts, removals)
